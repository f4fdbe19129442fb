"""Keras callbacks that report what sparsity training does.

- `SparsityMetrics` (every backend): the sparsity layers' statistics in the logs of ``fit`` and ``evaluate``.
- `SparsityTensorBoard` (TensorFlow's summary writer): per-layer curves, steps and MAC counts in TensorBoard.

Usable in any ``model.fit``; the training script of the package uses them as they are.
"""

from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np

from delta_keras.layers import DeltaActivation
from delta_keras.layers.base import statistics_of
from delta_keras.models.distiller import deployed_model
# The sparsity layers' statistics of a model live in models/walk.py; these names stay importable from here.
from delta_keras.models.walk import read_statistics, reset_statistics, sparsity_layers  # noqa: F401

MAC_POLICIES = ("zero_activation", "zero_delta")


def mac_scalars(model: keras.Model, clips, policies: Sequence[str] = MAC_POLICIES) -> dict[str, float]:
    """Effective-MAC fraction and reduction of ``model`` on ``clips`` under each policy, from the simulator.

    Returns:
        ``{"<policy>_fraction": effective / dense MACs, "<policy>_reduction": dense / effective}`` for
        each policy.
    """
    from delta_keras import sim  # noqa: PLC0415 (keeps importing callbacks light)

    report = sim.count_macs(model, clips, policies=("dense", *policies))
    return mac_summary(report, policies)


def mac_summary(report, policies: Sequence[str] = MAC_POLICIES) -> dict[str, float]:
    """``<policy>_fraction`` (effective / dense MACs) and ``<policy>_reduction`` of a `delta_keras.sim.MacReport`."""
    scalars = {}
    for policy in policies:
        reduction = report.reduction(policy)
        scalars[f"{policy}_fraction"] = 1.0 / reduction if reduction else float("inf")
        scalars[f"{policy}_reduction"] = reduction
    return scalars


def read_scalars(log_dir: str | os.PathLike) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Reads back the scalars of a TensorBoard folder, e.g. to plot or check them without TensorBoard.

    Args:
        log_dir: a folder whose subfolders (``train``, ``validation``...) hold event files.

    Returns:
        ``{subfolder: {tag: [(step, value), ...]}}``, steps in the order written.
    """
    import tensorflow as tf  # noqa: PLC0415 (event files: TensorFlow only, loaded where used)

    curves: dict[str, dict[str, list]] = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(os.fspath(log_dir), "*", "events.out.tfevents.*"))):
        run = os.path.basename(os.path.dirname(path))
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                # TF2 summaries store scalars as rank-0 tensors; histograms have rank >= 1.
                array = tf.make_ndarray(value.tensor) if value.HasField("tensor") else np.float32(value.simple_value)
                if np.ndim(array) == 0:
                    curves.setdefault(run, {}).setdefault(value.tag, []).append((event.step, float(array)))
    return curves


def _difference(now: dict[str, float], since: dict[str, float] | None) -> dict[str, float]:
    return {key: value - (since or {}).get(key, 0.0) for key, value in now.items()}


class SparsityMetrics(keras.callbacks.Callback):
    """Adds the sparsity layers' statistics to ``fit``'s epoch logs (and keeps ``evaluate``'s), on every backend.

    Keys: ``delta_density`` (nonzero temporal deltas / deltas, frames t >= 1) and ``activation_density``
    (nonzero activations / activations) of the whole model, summed over the neurons and frames of every
    sparsity layer (neuron counts, not MACs: `delta_keras.sim.count_macs` counts MACs); with
    ``per_layer=True`` also ``<layer>/delta_density`` and ``<layer>/activation_density``. In ``fit`` the
    figures without prefix cover the epoch's training batches and the ``val_`` ones its validation pass.
    Being epoch logs, they reach the progress bar, ``History``, ``CSVLogger``, Keras' ``TensorBoard`` and
    every callback listed after this one that monitors a value (e.g.
    ``EarlyStopping(monitor="val_delta_density")``). Keras hands ``on_test_end`` a copy of the logs, so
    ``evaluate``'s returned figures cannot be extended by a callback: after ``evaluate(...,
    callbacks=[metrics])``, ``metrics.evaluation`` holds the figures of its batches. ``epoch_statistics``
    holds the last epoch's per-layer `SparsityLayer.statistics` under ``"train"`` and ``"validation"``.

    It zeroes the layers' statistics at the start of each epoch (their sums are float32, exact to about
    1e-7 of an epoch's counts) and otherwise reads differences of their running counts
    (`SparsityLayer.counts`), so validation and ``evaluate`` inside an epoch disturb nothing and several
    readers coexist. (The figures are not ``keras.metrics.Metric`` objects of the layers because a metric
    updated in a layer's forward pass fails in ``fit`` on JAX, keras-team/keras#21639; the counts are
    non-trainable weights, which every backend carries through a training step and sums over replicas.)

    Args:
        per_layer: also log each layer's figures.

    Example:

    >>> history = model.fit(train, validation_data=test, epochs=5,  # doctest: +SKIP
    ...                     callbacks=[SparsityMetrics()])
    >>> history.history["val_delta_density"]  # doctest: +SKIP
    """

    def __init__(self, per_layer: bool = False):
        super().__init__()
        self.per_layer = per_layer
        self._since: dict[str, dict] = {}
        self._train: dict[str, dict] | None = None
        self._validation: dict[str, float] = {}
        self._in_epoch = False
        self.epoch_statistics: dict[str, dict[str, dict]] = {}
        self.evaluation: dict[str, float] = {}

    def _counts(self) -> dict[str, dict[str, float]]:
        return {layer.name: layer.counts() for layer in sparsity_layers(self.model)}

    def _period(self) -> dict[str, dict[str, float]]:
        """Each layer's counts since the period began (the epoch's training, or an evaluation)."""
        return {name: _difference(counts, self._since.get(name)) for name, counts in self._counts().items()}

    def figures(self, period: dict[str, dict[str, float]]) -> dict[str, float]:
        """The log entries of a period's counts."""
        if not period:
            return {}
        total = {key: sum(counts[key] for counts in period.values()) for key in next(iter(period.values()))}
        figures = {key: statistics_of(total)[key] for key in ("delta_density", "activation_density")}
        if self.per_layer:
            for name, counts in period.items():
                stats = statistics_of(counts)
                figures.update({f"{name}/{key}": stats[key] for key in ("delta_density", "activation_density")})
        return figures

    def on_epoch_begin(self, epoch, logs=None):
        reset_statistics(self.model)
        self._since, self._train, self._validation, self._in_epoch = {}, None, {}, True
        self.epoch_statistics = {}

    def on_test_begin(self, logs=None):
        if self._in_epoch and self._train is None:  # Keras validates inside the epoch, before on_epoch_end
            self._train = self._period()
        self._since = self._counts()

    def on_test_end(self, logs=None):
        period = self._period()
        self.evaluation = self.figures(period)
        if self._in_epoch:
            self.epoch_statistics["validation"] = {name: statistics_of(counts) for name, counts in period.items()}
            self._validation = self.evaluation

    def on_epoch_end(self, epoch, logs=None):
        self._in_epoch = False
        train = self._period() if self._train is None else self._train
        self.epoch_statistics["train"] = {name: statistics_of(counts) for name, counts in train.items()}
        if logs is not None:
            logs.update(self.figures(train))
            logs.update({f"val_{key}": value for key, value in self._validation.items()})


class SparsityTensorBoard(SparsityMetrics):
    """Writes sparsity curves to TensorBoard, per epoch, for training and validation.

    What Keras' own ``TensorBoard`` does not write (it writes the logs, so with this callback, a
    `SparsityMetrics`, also the whole model's ``delta_density`` and ``activation_density``). Scalars, in
    ``<log_dir>/train`` and ``<log_dir>/validation`` (next to `keras.callbacks.TensorBoard`'s, so the curves
    overlay):

    - ``loss/total``, ``loss/task``, ``loss/sparsity``: the sparsity loss is the sum over layers of
      each layer's mean loss per batch (layer statistics); the task loss is the rest of Keras' loss;
    - ``density/<layer>``: temporal density, nonzero deltas / neurons over frames t >= 1;
    - ``spatial_density/<layer>``: nonzero activations / neurons;
    - ``step/<layer>``: mean quantisation step (`DeltaActivation` only; histograms under
      ``step_histogram/<layer>``);
    - ``macs/<policy>_fraction`` and ``macs/<policy>_reduction`` (validation only): effective / dense
      MACs and its inverse, counted by `delta_keras.sim.count_macs` on ``validation_clips``.

    The training figures cover the epoch's training batches and the validation figures its validation
    pass (`SparsityMetrics` keeps them apart).

    Args:
        log_dir: the TensorBoard folder (the same as `keras.callbacks.TensorBoard`'s, if used).
        validation_clips: a fixed batch of clips ``(B, T, H, W, 3)`` for the MAC curves; ``None``
            skips them.
        policies: the simulator's skipping policies to plot.
        histograms: write step histograms.
        per_layer: also put each layer's figures in the logs (see `SparsityMetrics`).

    Example:

    >>> clips = next(iter(test.batch(8)))[0]  # doctest: +SKIP
    >>> model.fit(train, validation_data=test, epochs=10,  # doctest: +SKIP
    ...           callbacks=[SparsityTensorBoard("runs/a", validation_clips=clips)])
    """

    def __init__(
        self,
        log_dir: str | os.PathLike,
        validation_clips=None,
        policies: Sequence[str] = MAC_POLICIES,
        histograms: bool = True,
        per_layer: bool = False,
    ):
        super().__init__(per_layer)
        import tensorflow as tf  # noqa: PLC0415 (the summary writer: TensorFlow only, loaded where used)

        self._summary = tf.summary
        self.log_dir = os.fspath(log_dir)
        self.validation_clips = validation_clips
        self.policies = tuple(policies)
        self.histograms = histograms
        self._writers = {}

    def _writer(self, name: str):
        if name not in self._writers:
            self._writers[name] = self._summary.create_file_writer(os.path.join(self.log_dir, name))
        return self._writers[name]

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        logs = logs or {}
        summary = self._summary
        for split, prefix in (("train", ""), ("validation", "val_")):
            if split in self.epoch_statistics:
                self._write_split(split, self.epoch_statistics[split], logs.get(f"{prefix}loss"), epoch)
        with self._writer("train").as_default(step=epoch):
            for layer in sparsity_layers(self.model):
                if isinstance(layer, DeltaActivation):
                    step = keras.ops.convert_to_numpy(layer.step)
                    summary.scalar(f"step/{layer.name}", float(np.mean(step)))
                    if self.histograms:
                        summary.histogram(f"step_histogram/{layer.name}", step)
        if self.validation_clips is not None:
            with self._writer("validation").as_default(step=epoch):
                for name, value in mac_scalars(deployed_model(self.model), self.validation_clips,
                                               self.policies).items():
                    summary.scalar(f"macs/{name}", value)
        for writer in self._writers.values():
            writer.flush()

    def _write_split(self, split: str, stats: dict[str, dict], loss: float | None, epoch: int) -> None:
        summary = self._summary
        with self._writer(split).as_default(step=epoch):
            sparsity_loss = sum(layer["sparsity_loss"] for layer in stats.values())
            summary.scalar("loss/sparsity", sparsity_loss)
            if loss is not None:
                summary.scalar("loss/total", loss)
                summary.scalar("loss/task", loss - sparsity_loss)
            for name, layer in stats.items():
                summary.scalar(f"density/{name}", layer["delta_density"])
                summary.scalar(f"spatial_density/{name}", layer["activation_density"])

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
