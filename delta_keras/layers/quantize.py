"""`Quantize`: the quantiser of a trained `DeltaActivation`, without loss or statistics (for export)."""

from __future__ import annotations

import keras
from keras import ops

from delta_keras.layers.delta_activation import DeltaActivation
from delta_keras.layers.quantize_ops import STEP_GRADIENTS, quantize


@keras.saving.register_keras_serializable(package="delta_keras")
class Quantize(keras.layers.Layer):
    """Quantises to multiples of a fixed step, ``step * round(x / step)``, elementwise.

    `delta_keras.strip_sparsity` puts it where a `DeltaActivation` was: the trained network depends
    on the quantisation, but not on the sparsity loss or the statistics. The step is a
    non-trainable weight whose shape broadcasts against the trailing axes of the input, so the layer
    needs no time axis.

    Args:
        step_shape: shape of the step: ``()`` (one step), ``(channels,)`` or a frame's shape.
        step_gradient: the `DeltaActivation` mode it replaces (the values are computed by the same
            function, so they match bit for bit).

    Example:

    >>> import numpy as np
    >>> from delta_keras.layers import Quantize
    >>> layer = Quantize()
    >>> layer.build(None)
    >>> _ = layer.step.assign(0.5)
    >>> keras.ops.convert_to_numpy(layer(np.array([0.2, 0.3, 1.1], "float32")))
    array([0. , 0.5, 1. ], dtype=float32)
    """

    def __init__(self, step_shape: tuple = (), step_gradient: str = "lsq", **kwargs):
        super().__init__(**kwargs)
        if step_gradient not in STEP_GRADIENTS:
            raise ValueError(f"{self.name}: step_gradient must be one of {STEP_GRADIENTS}, got {step_gradient!r}")
        self.step_shape = tuple(step_shape)
        self.step_gradient = step_gradient

    def build(self, input_shape=None):
        self.step = self.add_weight(
            shape=self.step_shape, initializer="ones", trainable=False, dtype="float32", autocast=False, name="step"
        )

    @classmethod
    def from_delta_activation(cls, layer: DeltaActivation) -> "Quantize":
        """Returns a built `Quantize` with the (floored) step of a built ``layer`` and its name."""
        quantizer = cls(
            step_shape=tuple(layer.step_variable.shape),
            step_gradient=layer.step_gradient,
            name=layer.name,
            dtype=layer.dtype_policy,
        )
        quantizer.build()
        quantizer.step.assign(layer.step)
        return quantizer

    def call(self, inputs):
        return ops.cast(quantize(ops.cast(inputs, "float32"), self.step, self.step_gradient)[1], self.compute_dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "step_shape": list(self.step_shape), "step_gradient": self.step_gradient}
