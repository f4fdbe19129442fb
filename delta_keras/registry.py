"""One registry of layer kinds: how the package treats each Keras layer class.

`sparsify` (where sparsity layers go), the fan-out walk (what a nonzero value costs downstream), the
simulator's `count_macs` (which layers are counted, and how) and the delta-inference engine (how a layer runs
frame by frame) all read this one table, so they cannot disagree about a layer, and a user's own layer is
taught to all of them with one `register_layer` call (as TF Model Optimization's ``prune_registry``).

Roles:

- ``"mac"``: multiplies its input by weights. ``fan_out(layer)`` gives the MACs one nonzero input element
  triggers (interior of a feature map, as the published per-layer formulas); the simulator additionally
  needs ``stages(layer, frame_shape)``, its exact linear stages (`delta_keras.sim.geometry` registers them
  for the Keras layers; a custom MAC layer without stages is listed as uncounted by `count_macs`).
- ``"affine"``: frame-wise and affine, no MACs (batch normalisation, add, average pooling, padding,
  reshapes, dropout...). ``reach(layer)``: outputs one input element reaches (default 1).
- ``"nonlinear"``: frame-wise and non-linear, no MACs (activations, max pooling, the quantisers).
  ``activation=True`` marks a nonlinear activation whose output is where `sparsify` puts a sparsity layer.
- ``"pass_through"``: returns its input unchanged, with side effects (`ActivitySparsity`'s statistics).
- ``"fold"`` / ``"unfold"``: folds time into batch and back (`FoldTime`, `UnfoldTime`).
- ``"previous_frame"``: also reads the previous frame (`FrameDifference`).

Lookup follows the class's MRO: a subclass of a registered class has its kind unless registered itself.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import keras

from delta_keras.layers import (ActivitySparsity, DeltaActivation, FoldTime, FrameDifference, ImagePreprocessing,
                                Quantize, UnfoldTime)

ROLES = ("mac", "affine", "nonlinear", "pass_through", "fold", "unfold", "previous_frame")


@dataclasses.dataclass(frozen=True)
class LayerKind:
    """How the package treats one layer class (see the module docstring for the roles).

    Attributes:
        role: one of `ROLES`.
        fan_out: for ``"mac"``: ``layer -> MACs one nonzero input element triggers``.
        reach: for MAC-free roles: ``layer -> outputs one input element reaches`` (None: 1).
        activation: the output is a nonlinear activation (a place for a sparsity layer).
        stages: for ``"mac"``: ``(layer, frame_shape) -> list of delta_keras.sim.geometry.Stage``.
    """

    role: str
    fan_out: Callable[[keras.layers.Layer], float] | None = None
    reach: Callable[[keras.layers.Layer], float] | None = None
    activation: bool = False
    stages: Callable | None = None

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")
        if self.role == "mac" and self.fan_out is None:
            raise ValueError("a 'mac' layer kind needs fan_out (MACs one nonzero input element triggers)")


_KINDS: dict[type, LayerKind] = {}


def register_layer(layer_class: type, role: str | None = None, *, fan_out=None, reach=None,
                   activation: bool | None = None, stages=None) -> LayerKind:
    """Teaches the package a layer class (or changes what it knows about one); returns its kind.

    Arguments given update an existing registration (e.g. the simulator adds ``stages`` to the Keras MAC
    layers); a new class needs ``role``.

    Args:
        layer_class: a `keras.layers.Layer` subclass.
        role: one of `ROLES`.
        fan_out, reach, activation, stages: see `LayerKind`.

    Example:

    >>> import keras
    >>> from delta_keras.registry import layer_kind, register_layer
    >>> class Swish(keras.layers.Layer):
    ...     def call(self, x):
    ...         return x * keras.ops.sigmoid(x)
    >>> register_layer(Swish, "nonlinear", activation=True).activation
    True
    >>> layer_kind(Swish()).role
    'nonlinear'
    """
    current = _KINDS.get(layer_class)
    if current is None and role is None:
        raise ValueError(f"register_layer: {layer_class.__name__} is not registered yet; give its role")
    changes = {key: value for key, value in (("role", role), ("fan_out", fan_out), ("reach", reach),
                                             ("activation", activation), ("stages", stages)) if value is not None}
    kind = dataclasses.replace(current, **changes) if current else LayerKind(**changes)
    _KINDS[layer_class] = kind
    return kind


def layer_kind(layer) -> LayerKind | None:
    """The registered kind of a layer (or layer class), by its class's MRO; None when unknown."""
    for cls in (layer if isinstance(layer, type) else type(layer)).__mro__:
        if cls in _KINDS:
            return _KINDS[cls]
    return None


def is_activation(layer) -> bool:
    """Whether ``layer``'s output is a nonlinear activation: an activation layer (``ReLU``...) or a layer with
    its own ``activation`` argument (``Conv2D(..., activation="relu")``), except linear and softmax ones."""
    kind = layer_kind(layer)
    if kind is not None and kind.activation and not hasattr(layer, "activation"):
        return True
    activation = getattr(layer, "activation", None)
    return callable(activation) and activation not in _NOT_ACTIVATIONS


# A classifier's output distribution feeds no MACs, and linear is no activation.
_NOT_ACTIVATIONS = (keras.activations.linear, keras.activations.softmax, keras.activations.log_softmax)


# ---------------------------------------------------------------------------- the Keras layers
def _pooling_reach(layer) -> float:
    return math.prod(layer.pool_size) / math.prod(layer.strides)


def _resizing_reach(layer) -> float:
    # Each output reads 4 inputs (bilinear) or 1 (nearest): per input, that times outputs / inputs.
    taps = 4.0 if layer.interpolation == "bilinear" else 1.0
    height, width = layer.input.shape[-3:-1] if layer.data_format == "channels_last" else layer.input.shape[-2:]
    return taps * layer.height * layer.width / (height * width)


def _conv_fan_out(layer) -> float:
    return layer.filters / layer.groups * math.prod(layer.kernel_size) / math.prod(layer.strides)


def _depthwise_fan_out(layer) -> float:
    # A separable convolution's input feeds its depthwise part (the pointwise part reads the depthwise output).
    return layer.depth_multiplier * math.prod(layer.kernel_size) / math.prod(layer.strides)


L = keras.layers
for _cls in (L.Conv1D, L.Conv2D, L.Conv3D):
    register_layer(_cls, "mac", fan_out=_conv_fan_out)
for _cls in (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose):
    register_layer(_cls, "mac", fan_out=lambda layer: float(layer.filters * math.prod(layer.kernel_size)))
for _cls in (L.DepthwiseConv1D, L.DepthwiseConv2D, L.SeparableConv1D, L.SeparableConv2D):
    register_layer(_cls, "mac", fan_out=_depthwise_fan_out)
register_layer(L.Dense, "mac", fan_out=lambda layer: float(layer.units))
# A recurrent layer's input element feeds every gate of every unit.
for _cls, _gates in ((L.LSTM, 4), (L.GRU, 3), (L.SimpleRNN, 1)):
    register_layer(_cls, "mac", fan_out=lambda layer, gates=_gates: float(layer.units * gates))
for _cls in (L.InputLayer, L.BatchNormalization, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D,
             L.SpatialDropout3D, L.GaussianDropout, L.GaussianNoise, L.AlphaDropout, L.Add, L.Subtract, L.Average,
             L.Concatenate, L.Flatten, L.Reshape, L.Permute, L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D,
             L.Cropping1D, L.Cropping2D, L.Cropping3D, L.Rescaling, L.Normalization, L.Identity,
             L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D, ImagePreprocessing):
    register_layer(_cls, "affine")
for _cls in (L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D):
    register_layer(_cls, "affine", reach=_pooling_reach)
for _cls in (L.UpSampling1D, L.UpSampling2D, L.UpSampling3D):
    register_layer(_cls, "affine", reach=lambda layer: float(math.prod(layer.size)))
register_layer(L.Resizing, "affine", reach=_resizing_reach)
for _cls in (L.ReLU, L.LeakyReLU, L.PReLU, L.ELU, L.Activation):
    register_layer(_cls, "nonlinear", activation=True)
register_layer(L.Softmax, "nonlinear")
register_layer(L.LayerNormalization, "nonlinear")
register_layer(L.Multiply, "nonlinear")
register_layer(L.Maximum, "nonlinear")
register_layer(L.Minimum, "nonlinear")
for _cls in (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D):
    register_layer(_cls, "nonlinear", reach=_pooling_reach)
for _cls in (L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D, Quantize):
    register_layer(_cls, "nonlinear")
register_layer(DeltaActivation, "nonlinear")
register_layer(ActivitySparsity, "pass_through")
register_layer(FoldTime, "fold")
register_layer(UnfoldTime, "unfold")
register_layer(FrameDifference, "previous_frame")
