"""`DeltaActivation`: quantised activations whose frame-to-frame changes are penalised."""

from __future__ import annotations

import keras
from keras import ops

from delta_keras.layers import density
from delta_keras.layers.base import SparsityLayer
from delta_keras.layers.quantize_ops import STEP_GRADIENTS, keep_changes, quantize

GRANULARITIES = ("layer", "channel", "neuron")
OUTPUTS = ("quantized", "delta")


# Width of the sigmoid whose slope stands in for the threshold gate's gradient, as a fraction of the threshold.
SURROGATE_WIDTH = 0.25
# A finite ceiling on the step: x / q then stays finite and 0 * q is 0 (with q = inf it would be NaN).
MAX_STEP = 1e30


def valid_step(step, min_step: float, nan_value: float):
    """``step`` clipped to ``[min_step, MAX_STEP]``, with NaN replaced by ``nan_value``: the floor holds for
    any value an optimiser (or a NaN that reached the layer) can leave in the variable."""
    return ops.where(ops.isnan(step), ops.cast(nan_value, step.dtype), ops.clip(step, min_step, MAX_STEP))


@keras.saving.register_keras_serializable(package="delta_keras")
class StepRange(keras.constraints.Constraint):
    """Keeps a step in ``[min_value, MAX_STEP]`` after every optimiser update; NaN becomes ``nan_value``."""

    def __init__(self, min_value: float, nan_value: float | None = None):
        self.min_value = float(min_value)
        self.nan_value = float(min_value if nan_value is None else nan_value)

    def __call__(self, w):
        return valid_step(w, self.min_value, self.nan_value)

    def get_config(self) -> dict:
        return {"min_value": self.min_value, "nan_value": self.nan_value}


@keras.saving.register_keras_serializable(package="delta_keras")
class DeltaActivation(SparsityLayer):
    """Quantises activations with a learnable step and penalises their temporal changes.

    Place it after an activation in a clip model. With step ``q`` it computes ``x_q = q * round(x / q)``:
    wherever an activation stays within one quantisation level from frame ``t-1`` to frame ``t``, the
    delta ``x_q[t] - x_q[t-1]`` is exactly zero, so a delta-inference accelerator skips every MAC it
    would trigger downstream. The default output is ``x_q`` itself, so the trained network computes
    exactly what a delta-inference engine reconstructs by accumulating deltas.

    The added loss is ``sparsity_weight * fan_out * normalization * penalty(deltas)`` over frames
    ``t >= 1``. With ``step_gradient="lsq"`` the deltas are measured in quantisation levels crossed
    (``round(x[t]/q) - round(x[t-1]/q)``), which makes a coarser step cheaper and bounds the number
    of nonzero deltas from above; with ``step_gradient="paper"`` they are measured in activation units
    (``x_q[t] - x_q[t-1]``), as in Yousefzadeh & Sifalakis (2021).

    **Memory mode** (``memory=True``, deltas with memory as in Event Neural Networks, Dutson et al. 2022):
    each neuron keeps ``sent``, the value downstream holds (0 at the start of every clip, so frame 0 is
    charged for its nonzero values). At frame ``t`` it sends its exact new value, and ``sent`` becomes
    ``x[t]``, only where ``|x[t] - sent| > threshold``; elsewhere nothing is sent. The step is the
    threshold. There is no flicker (noise smaller than the threshold sends nothing) and no drift
    (``|sent - x| <= threshold`` at every frame). The layer outputs ``sent`` (what a delta engine
    reconstructs); the penalty and statistics measure ``sent`` in units of the threshold, so a transmitted
    change costs at least 1. Training runs the recurrence over time (`keras.ops.scan`): gradients pass
    straight through where the output is exact (to ``x[t]`` where sent, to the previous ``sent``
    elsewhere), and the gate's gradient, for the threshold and the inputs, is that of a sigmoid of width
    ``SURROGATE_WIDTH * threshold`` (a surrogate gradient, as trained-threshold work does).

    Args:
        step_init: initial quantisation step (e.g. about 1/8 of the activation's typical range); in
            memory mode, the initial threshold.
        granularity: ``"layer"`` (one step), ``"channel"`` (one per last-axis channel, default) or
            ``"neuron"`` (one per element of a frame).
        output: ``"quantized"`` (default) returns ``x_q``; ``"delta"`` returns ``x_q[t] - x_q[t-1]``
            with the first frame passed whole.
        step_gradient: ``"lsq"`` (default) or ``"paper"``; see `delta_keras.layers.quantize_ops.quantize`.
        memory: deltas with memory and a threshold (see above) instead of per-frame quantisation.
        min_step: floor of the step. The step variable is clipped to ``[min_step, MAX_STEP]`` after every
            update and again when used, and a NaN in it is replaced by ``step_init``, so no optimiser (and
            no NaN reaching the layer) can make it zero, negative, infinite or NaN.
        **kwargs: `SparsityLayer` arguments (``sparsity_weight``, ``fan_out``, ``penalty``,
            ``normalization``) and base layer arguments.

    Input shape:
        Tensor of rank >= 3 with time on axis 1: ``(batch, time, features)`` or
        ``(batch, time, height, width, channels)``.

    Output shape:
        Same as the input.

    Example:

    >>> import numpy as np, keras
    >>> from delta_keras import DeltaActivation
    >>> clips = keras.Input((8, 16, 16, 3))
    >>> x = keras.layers.TimeDistributed(keras.layers.Conv2D(4, 3, activation="relu"))(clips)
    >>> x = DeltaActivation(step_init=0.25, sparsity_weight=1e-3)(x)
    >>> model = keras.Model(clips, x)
    >>> tuple(model(np.zeros((2, 8, 16, 16, 3), "float32")).shape)
    (2, 8, 14, 14, 4)
    """

    def __init__(
        self,
        step_init: float = 1.0,
        granularity: str = "channel",
        output: str = "quantized",
        step_gradient: str = "lsq",
        min_step: float = 1e-3,
        memory: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for arg, value, allowed in (
            ("granularity", granularity, GRANULARITIES),
            ("output", output, OUTPUTS),
            ("step_gradient", step_gradient, STEP_GRADIENTS),
        ):
            if value not in allowed:
                raise ValueError(f"{self.name}: {arg} must be one of {allowed}, got {value!r}")
        if min_step <= 0 or step_init < min_step:
            raise ValueError(f"{self.name}: need 0 < min_step <= step_init, got min_step={min_step}, step_init={step_init}")
        self.step_init = float(step_init)
        self.granularity = granularity
        self.output_mode = output
        self.step_gradient = step_gradient
        self.min_step = float(min_step)
        self.memory = bool(memory)

    def build(self, input_shape):
        super().build(input_shape)
        shape = {"layer": (), "channel": tuple(input_shape[-1:]), "neuron": tuple(input_shape[2:])}[self.granularity]
        if None in shape:
            raise ValueError(
                f"{self.name}: granularity={self.granularity!r} needs known sizes for axes 2+, got input shape "
                f"{tuple(input_shape)}"
            )
        self.step_variable = self.add_weight(
            shape=shape,
            initializer=keras.initializers.Constant(self.step_init),
            constraint=StepRange(self.min_step, nan_value=self.step_init),
            dtype="float32",
            autocast=False,  # the step stays float32 under mixed precision
            name="step",
        )

    @property
    def step(self):
        """The positive float32 quantisation step (broadcasts against a frame)."""
        return valid_step(self.step_variable, self.min_step, self.step_init)

    def quantize_values(self, x):
        """Returns ``x_q`` for float ``x`` of any shape whose trailing axes match the step (no loss, no statistics).

        (Not named ``quantize``: `keras.layers.Layer.quantize` is Keras' own weight-quantisation API.)
        """
        return quantize(ops.cast(x, "float32"), self.step, self.step_gradient)[1]

    def memory_step(self, sent, x):
        """One frame of memory mode, without loss or statistics: the new ``sent`` for frame ``x``."""
        x = ops.cast(x, "float32")
        return ops.where(ops.abs(x - sent) > self.step, x, sent)

    def _transmit(self, x):
        """``sent`` over a clip ``(B, T, ...)``: the memory recurrence, with its surrogate gradients."""
        threshold = self.step
        width = ops.stop_gradient(threshold) * SURROGATE_WIDTH

        def advance(sent, frame):
            change = frame - sent
            soft = ops.sigmoid((ops.abs(change) - threshold) / width)
            # Value: exactly x where sent, the old value elsewhere; gradient: that of where() plus the
            # sigmoid's for the gate (soft - stop_gradient(soft) is 0 with the sigmoid's gradient).
            new = ops.where(ops.abs(change) > threshold, frame, sent) + (soft - ops.stop_gradient(soft)) * change
            return new, new

        frames = ops.moveaxis(x, 1, 0)
        _, sent = ops.scan(advance, ops.zeros_like(frames[0]), frames)
        return ops.moveaxis(sent, 0, 1)

    penalises_deltas = True

    def _penalised(self, measured, deltas):
        if self.memory:  # in thresholds: every transmitted change costs at least 1
            return deltas / self.step
        if self.step_gradient == "paper":
            # In activation units, with the paper's negated step gradient through the multiplication (the
            # factor's value is exactly the step: 2s - s is exact).
            return deltas * (2.0 * ops.stop_gradient(self.step) - self.step)
        return deltas  # lsq: quantisation levels crossed

    def _transform(self, x):
        """``(output, measured)``: ``measured`` holds exact values (levels, or the transmitted values in memory
        mode), so its temporal deltas are exactly zero where nothing changed, on every backend."""
        if self.memory:
            values = measured = self._transmit(x)
        else:
            measured, values = quantize(x, self.step, self.step_gradient)
        output = values
        if self.output_mode == "delta":
            deltas = density.temporal_deltas(values)
            if not self.memory:  # values are step * levels: exact zeros where the levels did not change
                changed = ops.cast(ops.not_equal(density.temporal_deltas(measured), 0), "float32")
                deltas = keep_changes(deltas, changed)
            output = ops.concatenate([values[:, :1], deltas], axis=1)
        return output, measured

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            step_init=self.step_init,
            granularity=self.granularity,
            output=self.output_mode,
            step_gradient=self.step_gradient,
            min_step=self.min_step,
            memory=self.memory,
        )
        return config
