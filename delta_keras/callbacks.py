"""Keras callbacks that log what sparsity training does: `SparsityTensorBoard`.

Usable in any ``model.fit``; the training script of the package uses it as is.
"""

from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from delta_keras.layers import DeltaActivation, SparsityLayer
from delta_keras.models.distiller import deployed_model

MAC_POLICIES = ("zero_activation", "zero_delta")


def child_layers(layer: keras.layers.Layer) -> list:
    """The layers directly inside ``layer``: a model's layers, a wrapper's (e.g. TimeDistributed) layer."""
    return getattr(layer, "layers", None) or ([layer.layer] if hasattr(layer, "layer") else [])


def all_layers(layer: keras.layers.Layer):
    """Yields ``layer`` and, depth first in graph order, every layer inside it (nested models, wrappers)."""
    yield layer
    for child in child_layers(layer):
        yield from all_layers(child)


def sparsity_layers(model: keras.Model) -> list[SparsityLayer]:
    """The `SparsityLayer`s of ``model`` in graph order, nested models and wrappers included."""
    return [layer for layer in all_layers(model) if isinstance(layer, SparsityLayer)]


def read_statistics(model: keras.Model, reset: bool = False) -> dict[str, dict]:
    """Every sparsity layer's `statistics()` by layer name, optionally resetting them after reading."""
    stats = {}
    for layer in sparsity_layers(model):
        stats[layer.name] = layer.statistics()
        if reset:
            layer.reset_statistics()
    return stats


def reset_statistics(model: keras.Model) -> None:
    """Zeroes the running statistics of every sparsity layer of ``model``."""
    for layer in sparsity_layers(model):
        layer.reset_statistics()


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


class SparsityTensorBoard(keras.callbacks.Callback):
    """Writes sparsity curves to TensorBoard, per epoch, for training and validation.

    Scalars (written next to `keras.callbacks.TensorBoard`'s, in ``<log_dir>/train`` and
    ``<log_dir>/validation``, so the curves overlay):

    - ``loss/total``, ``loss/task``, ``loss/sparsity``: the sparsity loss is the sum over layers of
      each layer's mean loss per batch (layer statistics); the task loss is the rest of Keras' loss;
    - ``density/<layer>``: temporal density, nonzero deltas / neurons over frames t >= 1;
    - ``spatial_density/<layer>``: nonzero activations / neurons;
    - ``step/<layer>``: mean quantisation step (`DeltaActivation` only; histograms under
      ``step_histogram/<layer>``);
    - ``macs/<policy>_fraction`` and ``macs/<policy>_reduction`` (validation only): effective / dense
      MACs and its inverse, counted by `delta_keras.sim.count_macs` on ``validation_clips``.

    Layer statistics accumulate over every call of the model, training and validation alike, so the
    callback resets them at the start of each epoch and of each evaluation, takes the training figures
    when validation begins (Keras runs validation inside the epoch, before ``on_epoch_end``) and the
    validation figures when it ends.

    Args:
        log_dir: the TensorBoard folder (the same as `keras.callbacks.TensorBoard`'s, if used).
        validation_clips: a fixed batch of clips ``(B, T, H, W, 3)`` for the MAC curves; ``None``
            skips them.
        policies: the simulator's skipping policies to plot.
        histograms: write step histograms.

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
    ):
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self.validation_clips = validation_clips
        self.policies = tuple(policies)
        self.histograms = histograms
        self._writers = {}
        self._stats = {}
        self._in_epoch = False

    def _writer(self, name: str):
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(os.path.join(self.log_dir, name))
        return self._writers[name]

    def on_epoch_begin(self, epoch, logs=None):
        reset_statistics(self.model)
        self._stats = {}
        self._in_epoch = True

    def on_test_begin(self, logs=None):
        if self._in_epoch and "train" not in self._stats:
            self._stats["train"] = read_statistics(self.model)
        reset_statistics(self.model)

    def on_test_end(self, logs=None):
        if self._in_epoch:
            self._stats["validation"] = read_statistics(self.model)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self._in_epoch = False
        if "train" not in self._stats:  # no validation this epoch
            self._stats["train"] = read_statistics(self.model)
        for split, prefix in (("train", ""), ("validation", "val_")):
            if split in self._stats:
                self._write_split(split, self._stats[split], logs.get(f"{prefix}loss"), epoch)
        with self._writer("train").as_default(step=epoch):
            for layer in sparsity_layers(self.model):
                if isinstance(layer, DeltaActivation):
                    step = keras.ops.convert_to_numpy(layer.step)
                    tf.summary.scalar(f"step/{layer.name}", float(np.mean(step)))
                    if self.histograms:
                        tf.summary.histogram(f"step_histogram/{layer.name}", step)
        if self.validation_clips is not None:
            with self._writer("validation").as_default(step=epoch):
                for name, value in mac_scalars(deployed_model(self.model), self.validation_clips,
                                               self.policies).items():
                    tf.summary.scalar(f"macs/{name}", value)
        for writer in self._writers.values():
            writer.flush()

    def _write_split(self, split: str, stats: dict[str, dict], loss: float | None, epoch: int) -> None:
        with self._writer(split).as_default(step=epoch):
            sparsity_loss = sum(layer["sparsity_loss"] for layer in stats.values())
            tf.summary.scalar("loss/sparsity", sparsity_loss)
            if loss is not None:
                tf.summary.scalar("loss/total", loss)
                tf.summary.scalar("loss/task", loss - sparsity_loss)
            for name, layer in stats.items():
                tf.summary.scalar(f"density/{name}", layer["delta_density"])
                tf.summary.scalar(f"spatial_density/{name}", layer["activation_density"])

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
