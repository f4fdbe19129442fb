"""`SparsityLayer`: what `DeltaActivation` and `ActivitySparsity` share.

Both are pass-through-shaped layers on tensors with time on axis 1 that add a sparsity loss and keep
running statistics. Subclasses only say what they output and what they penalise (`_transform`).
"""

from __future__ import annotations

import keras
from keras import ops

from delta_keras import regularizers
from delta_keras.layers import density

NORMALIZATIONS = ("mean", "frame", "sample", "dense_macs")

# Statistics kept as variables: the counts of `density.nonzero_counts` plus the sparsity loss.
_COUNTERS = (
    "nonzero_activations",
    "activations",
    "nonzero_deltas",
    "deltas",
    "nonzero_first_frame",
    "first_frame",
    "non_finite",
    "samples",
    "loss_sum",
    "batches",
)


def statistics_of(counts: dict) -> dict:
    """The statistics of a sparsity layer's summed `SparsityLayer.counts` (Python floats).

    Returns:
        ``delta_density`` (nonzero temporal deltas / deltas, frames t >= 1),
        ``delta_density_first_charged`` (frame 0 charged for its nonzero activations),
        ``activation_density`` (nonzero activations / activations), ``neurons_per_frame``,
        ``sparsity_loss`` (mean over the batches counted), ``batches`` and ``non_finite`` (NaN or infinite
        values seen, counted as nonzero).
    """
    stats = density.densities(counts)
    samples, batches = counts["samples"], counts["batches"]
    stats["neurons_per_frame"] = round(counts["first_frame"] / samples) if samples else 0
    stats["sparsity_loss"] = counts["loss_sum"] / batches if batches else 0.0
    stats["batches"] = int(batches)
    stats["non_finite"] = int(counts["non_finite"])
    return stats


class SparsityLayer(keras.layers.Layer):
    """Base class of the sparsity layers.

    Args:
        sparsity_weight: float, `delta_keras.regularizers.Schedule` or any Keras `LearningRateSchedule` of
            the training step: the weight of the sparsity loss. The layer counts its own training steps (a
            variable saved with the model), so a schedule needs no callback and resumes where it stopped.
        fan_out: MACs that one nonzero output triggers in the layers that consume it; weighs the loss
            by what a zero saves. `delta_keras.sparsify()` sets it from the graph.
        penalty: ``"l1"`` (default), ``"hoyer_square"``, ``"target_rate"`` or a
            `delta_keras.regularizers.Penalty`.
        normalization: how the penalty is normalised. ``"mean"`` (default): per neuron and frame
            (the penalty's own per-element value); ``"frame"``: summed over the neurons of a frame,
            averaged over frames and samples; ``"sample"``: summed over neurons and frames, averaged
            over samples. With ``"frame"`` and ``fan_out`` the loss is proportional to MACs per frame.
            ``"dense_macs"``: as ``"frame"``, divided by ``dense_macs``; summed over the layers of a
            `delta_keras.sparsify`-ed model, the loss is then the weight times the share of the model's
            dense MACs that the penalised values trigger (with L1 on deltas, an upper bound of the
            zero_delta MAC fraction), so a weight means the same on any network.
        dense_macs: the MACs of the whole model's dense forward pass on one frame, for
            ``normalization="dense_macs"`` (`delta_keras.sparsify()` sets it from the graph).
    """

    def __init__(
        self,
        sparsity_weight=0.0,
        fan_out: float = 1.0,
        penalty="l1",
        normalization: str = "mean",
        dense_macs: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"{self.name}: normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        if fan_out <= 0:
            raise ValueError(f"{self.name}: fan_out must be > 0, got {fan_out}")
        if normalization == "dense_macs" and not (dense_macs and dense_macs > 0):
            raise ValueError(f"{self.name}: normalization='dense_macs' needs dense_macs > 0 (the model's dense MACs "
                             f"per frame; delta_keras.sparsify sets it), got {dense_macs!r}")
        self.schedule = regularizers.get_schedule(sparsity_weight)
        self.penalty = regularizers.get_penalty(penalty)
        self.fan_out = float(fan_out)
        self.normalization = normalization
        self.dense_macs = None if dense_macs is None else float(dense_macs)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(
                f"{self.name}: expected input of rank >= 3 with time on axis 1, e.g. (batch, time, features) "
                f"or (batch, time, height, width, channels); got shape {tuple(input_shape)}"
            )
        self.training_step = self.add_weight(
            # "int", as the optimizers' step count: int64 on TensorFlow, int32 where JAX would truncate (and warn).
            shape=(), initializer="zeros", dtype="int", trainable=False, name="training_step",
            aggregation="only_first_replica",
        )
        # One vector for all counters: one update op per call instead of one per counter.
        self.counters = self.add_weight(
            shape=(len(_COUNTERS),), initializer="zeros", dtype="float32", trainable=False, name="counters",
            aggregation="sum",
        )

    # Whether the penalty applies to the temporal deltas of the measured tensor or to the tensor itself.
    penalises_deltas: bool

    def _transform(self, x):
        """Returns ``(output, measured)`` for float32 ``x``: the layer's output, and the tensor (time on
        axis 1) whose zeros the statistics count and which the penalty measures."""
        raise NotImplementedError

    def _penalised(self, measured, deltas):
        """What the penalty measures: ``deltas`` (the temporal deltas of ``measured``) or ``measured``, in the
        penalty's unit. Subclasses scale here, after differencing, so that the statistics count the zeros of
        exact values (a scaled tensor differenced under XLA kept 1e-7 where nothing changed)."""
        return deltas if self.penalises_deltas else measured

    def call(self, inputs, training=None):
        output, measured = self._transform(ops.cast(inputs, "float32"))
        if training:
            self.training_step.assign_add(ops.cast(1, self.training_step.dtype))
        deltas = density.temporal_deltas(measured)
        loss = self._loss(self._penalised(measured, deltas))
        self.add_loss(loss)
        self._update_statistics(measured, deltas, loss)
        return ops.cast(output, self.compute_dtype)

    def _loss(self, penalised):
        shape = ops.shape(penalised)
        neurons = ops.cast(ops.prod(shape[2:]), "float32")
        scale = {"mean": 1.0, "frame": neurons, "sample": neurons * ops.cast(shape[1], "float32"),
                 "dense_macs": neurons / (self.dense_macs or 1.0)}
        # An empty tensor (a single-frame clip has no deltas) costs nothing rather than NaN.
        value = ops.where(ops.size(penalised) > 0, self.penalty(penalised), 0.0)
        weight = self.schedule(self.training_step)
        return weight * self.fan_out * scale[self.normalization] * value

    def _update_statistics(self, measured, deltas, loss):
        counts = density.nonzero_counts(measured, deltas)
        counts.update(
            samples=ops.cast(ops.shape(measured)[0], "float32"),
            loss_sum=ops.cast(loss, "float32"),
            batches=ops.cast(1.0, "float32"),
        )
        self.counters.assign_add(ops.stack([ops.cast(counts[name], "float32") for name in _COUNTERS]))

    @property
    def sparsity_weight(self) -> float:
        """The sparsity weight at the layer's current training step."""
        return float(self.schedule(self.training_step))

    def counts(self) -> dict[str, float]:
        """The raw running sums behind `statistics` (since the last `reset_statistics`), as Python floats.

        Two readings subtract: `statistics_of` the difference gives the statistics of the calls in between,
        which is how `delta_keras.callbacks.SparsityMetrics` keeps an epoch's validation apart from its training.
        """
        return dict(zip(_COUNTERS, ops.convert_to_numpy(self.counters).tolist()))

    def statistics(self) -> dict:
        """Running statistics since the last `reset_statistics` (Python floats): `statistics_of(self.counts())`."""
        return statistics_of(self.counts())

    def reset_statistics(self) -> None:
        """Zeroes the running statistics (e.g. at the start of an epoch)."""
        self.counters.assign(ops.zeros(self.counters.shape, self.counters.dtype))  # (zeros_like fails on a JAX variable)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            sparsity_weight=keras.saving.serialize_keras_object(self.schedule),
            fan_out=self.fan_out,
            penalty=keras.saving.serialize_keras_object(self.penalty),
            normalization=self.normalization,
            dense_macs=self.dense_macs,
        )
        return config
