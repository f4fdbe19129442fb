"""One registry of layer kinds: how the package treats each Keras layer class.

`sparsify` (where sparsity layers go), the fan-out walk (what a nonzero value costs downstream), the
simulator's `count_macs` (which layers are counted, and how), the delta-inference engine (how a layer runs
frame by frame) and the streaming runtime (which sparse kernel runs it) all read this one table, so they
cannot disagree about a layer, and a user's own layer is taught to all of them with one `register_layer`
call (as TF Model Optimization's ``prune_registry``).

Roles:

- ``"mac"``: multiplies its input by weights. ``fan_out(layer)`` gives the MACs one nonzero input element
  triggers (interior of a feature map, as the published per-layer formulas); the simulator additionally
  needs ``stages(layer, frame_shape)``, its exact linear stages (named here for the Keras layers, built by
  `delta_keras.frames.geometry`; a custom MAC layer without stages is listed as uncounted by `count_macs`).
- ``"affine"``: frame-wise and affine, no MACs (batch normalisation, add, average pooling, padding,
  reshapes, dropout...). ``reach(layer)``: outputs one input element reaches (default 1).
- ``"nonlinear"``: frame-wise and non-linear, no MACs (activations, max pooling, the quantisers).
  ``activation=True`` marks a nonlinear activation whose output is where `sparsify` puts a sparsity layer.
- ``"pass_through"``: returns its input unchanged, with side effects (`ActivitySparsity`'s statistics).
- ``"fold"`` / ``"unfold"``: folds time into batch and back (`FoldTime`, `UnfoldTime`).
- ``"previous_frame"``: also reads the previous frame (`FrameDifference`).

Properties beside the role: ``recurrent`` (a MAC layer that carries state over time: LSTM, GRU, SimpleRNN),
``time_mean`` (called on a clip outside ``TimeDistributed``, it averages over the clip's time axis: a
running mean when streaming), ``neurobench_activation`` (its output counts as an activation in NeuroBench's
activation sparsity: every activation layer, softmax, the sparsity layers), ``stages`` (the simulator's
exact linear stages: a function, or the name of a builder of `delta_keras.frames.geometry`) and
``runtime_kernel`` (the sparse kernel `delta_keras.runtime` runs it with, by name) and ``last_axis`` (a MAC
layer that maps only its input's last axis, like `Dense`: called on a clip outside ``TimeDistributed`` it
runs frame by frame along the clip's time axis).

Keras operations that are not layers (``keras.ops.add`` in a functional graph...) are registered by class
name with `register_operation`; `layer_kind` finds them when their class is not registered.
A `TimeDistributed` layer is the layer it wraps, called frame by frame: `unwrap` gives it to the fan-out walk, the
frame plan and `count_macs`.

Lookup follows the class's MRO: a subclass of a registered class has its kind unless registered itself.
Every Keras layer the package knows is registered here, at import.
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
        stages: for ``"mac"``: ``(layer, frame_shape) -> list of delta_keras.frames.geometry.Stage``, or the name
            of one of `delta_keras.frames.geometry.STAGE_BUILDERS`.
        recurrent: a MAC layer with state over time (it reads the clip's time axis itself).
        time_mean: on a clip outside ``TimeDistributed``, the layer averages over time (True, or
            ``layer -> bool`` where it depends on the configuration, e.g. the axis of a mean).
        neurobench_activation: its output counts as an activation for NeuroBench's activation sparsity.
        runtime_kernel: the name of the sparse kernel `delta_keras.runtime` runs the layer with (None: dense): for a
            MAC layer its delta kernel, for a frame-wise layer the operation a convolution's fused epilogue
            evaluates at the outputs its changes touched (`delta_keras.runtime.fused`).
        last_axis: a MAC layer that maps only the last axis of its input (a clip's frames one by one).
    """

    role: str
    fan_out: Callable[[keras.layers.Layer], float] | None = None
    reach: Callable[[keras.layers.Layer], float] | None = None
    activation: bool = False
    stages: Callable | str | None = None
    recurrent: bool = False
    time_mean: bool | Callable[[keras.layers.Layer], bool] = False
    neurobench_activation: bool = False
    runtime_kernel: str | None = None
    last_axis: bool = False

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")
        if self.role == "mac" and self.fan_out is None:
            raise ValueError("a 'mac' layer kind needs fan_out (MACs one nonzero input element triggers)")


_KINDS: dict[type, LayerKind] = {}
_OPERATIONS: dict[str, LayerKind] = {}  # Keras operations that are not layers, by class name
_FIELDS = ("role", "fan_out", "reach", "activation", "stages", "recurrent", "time_mean", "neurobench_activation",
           "runtime_kernel", "last_axis")


def _updated(current: LayerKind | None, what: str, changes: dict) -> LayerKind:
    changes = {key: value for key, value in changes.items() if value is not None}
    if current is None and "role" not in changes:
        raise ValueError(f"register: {what} is not registered yet; give its role")
    return dataclasses.replace(current, **changes) if current else LayerKind(**changes)


def register_layer(layer_class: type, role: str | None = None, *, fan_out=None, reach=None,
                   activation: bool | None = None, stages=None, recurrent: bool | None = None, time_mean=None,
                   neurobench_activation: bool | None = None, runtime_kernel: str | None = None,
                   last_axis: bool | None = None) -> LayerKind:
    """Teaches the package a layer class (or changes what it knows about one); returns its kind.

    Arguments given update an existing registration (e.g. the simulator adds ``stages`` to the Keras MAC
    layers); a new class needs ``role``.

    Args:
        layer_class: a `keras.layers.Layer` subclass.
        role: one of `ROLES`.
        fan_out, reach, activation, stages, recurrent, time_mean, neurobench_activation, runtime_kernel,
            last_axis: see `LayerKind`.

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
    values = locals()
    kind = _updated(_KINDS.get(layer_class), layer_class.__name__, {name: values[name] for name in _FIELDS})
    _KINDS[layer_class] = kind
    return kind


def register_operation(name: str, role: str | None = None, *, time_mean=None) -> LayerKind:
    """Teaches the package a Keras operation that is not a layer (a node of ``keras.ops.add(a, b)`` in a
    functional graph), by its class name (``"Add"``); arguments as `register_layer`."""
    kind = _updated(_OPERATIONS.get(name), name, {"role": role, "time_mean": time_mean})
    _OPERATIONS[name] = kind
    return kind


def layer_kind(layer) -> LayerKind | None:
    """The registered kind of a layer (or layer class), by its class's MRO, else of a registered operation of
    its class name; None when unknown."""
    cls = layer if isinstance(layer, type) else type(layer)
    for base in cls.__mro__:
        if base in _KINDS:
            return _KINDS[base]
    return _OPERATIONS.get(cls.__name__) if is_operation(cls) else None


def unwrap(layer) -> tuple[keras.layers.Layer, bool]:
    """``(inner_layer, True)`` for a layer that applies another to each frame of a clip (`TimeDistributed`), else
    ``(layer, False)``: the package treats such a wrapper as the layer it wraps, called frame by frame (its
    fan-out, its stages, its kind)."""
    if isinstance(layer, keras.layers.TimeDistributed):
        return layer.layer, True
    return layer, False


def is_operation(operation) -> bool:
    """Whether a node's operation (or its class) is a Keras operation that is not a layer (``keras.ops.add`` on
    symbolic tensors): these are known by class name (`register_operation`)."""
    cls = operation if isinstance(operation, type) else type(operation)
    return not issubclass(cls, keras.layers.Layer)


def averages_over_time(layer) -> bool:
    """Whether ``layer``, called on a clip outside ``TimeDistributed``, averages over the time axis."""
    kind = layer_kind(layer)
    if kind is None or not kind.time_mean:
        return False
    return kind.time_mean(layer) if callable(kind.time_mean) else True


def counts_as_activation(layer) -> bool:
    """Whether a layer's outputs count as activations for NeuroBench's activation sparsity: the activation
    layers, softmax, the sparsity layers (``neurobench_activation``), and layers with a nonlinear
    ``activation`` of their own (softmax included, unlike `is_activation`)."""
    kind = layer_kind(layer)
    if kind is not None and (kind.activation or kind.neurobench_activation):
        return True
    activation = getattr(layer, "activation", None)
    return activation is not None and getattr(activation, "__name__", "") != "linear"


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


def _mean_over_time(operation) -> bool:
    return getattr(operation, "axis", None) in (1, (1,), [1])


L = keras.layers
# MAC layers; ``stages`` names the simulator's builders (delta_keras.frames.geometry.STAGE_BUILDERS).
for _cls in (L.Conv1D, L.Conv2D, L.Conv3D):
    register_layer(_cls, "mac", fan_out=_conv_fan_out, stages="conv")
register_layer(L.Conv2D, runtime_kernel="sparse_conv2d")
for _cls in (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose):
    register_layer(_cls, "mac", fan_out=lambda layer: float(layer.filters * math.prod(layer.kernel_size)))
for _cls in (L.DepthwiseConv1D, L.DepthwiseConv2D):
    register_layer(_cls, "mac", fan_out=_depthwise_fan_out, stages="depthwise")
for _cls in (L.SeparableConv1D, L.SeparableConv2D):
    register_layer(_cls, "mac", fan_out=_depthwise_fan_out, stages="separable")
register_layer(L.Dense, "mac", fan_out=lambda layer: float(layer.units), stages="dense",
               runtime_kernel="gathered_dense", last_axis=True)
# A recurrent layer's input element feeds every gate of every unit.
for _cls, _gates in ((L.LSTM, 4), (L.GRU, 3), (L.SimpleRNN, 1)):
    register_layer(_cls, "mac", fan_out=lambda layer, gates=_gates: float(layer.units * gates), stages="recurrent",
                   recurrent=True)
register_layer(L.GRU, stages="gru")  # its own builder: reset_after=False cannot be counted by stages
for _cls in (L.InputLayer, L.BatchNormalization, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D,
             L.SpatialDropout3D, L.GaussianDropout, L.GaussianNoise, L.AlphaDropout, L.Add, L.Subtract, L.Average,
             L.Concatenate, L.Flatten, L.Reshape, L.Permute, L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D,
             L.Cropping1D, L.Cropping2D, L.Cropping3D, L.Rescaling, L.Normalization, L.Identity,
             L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D, ImagePreprocessing):
    register_layer(_cls, "affine")
register_layer(L.GlobalAveragePooling1D, time_mean=True)
for _cls in (L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D):
    register_layer(_cls, "affine", reach=_pooling_reach)
for _cls in (L.UpSampling1D, L.UpSampling2D, L.UpSampling3D):
    register_layer(_cls, "affine", reach=lambda layer: float(math.prod(layer.size)))
register_layer(L.Resizing, "affine", reach=_resizing_reach)
for _cls in (L.ReLU, L.LeakyReLU, L.PReLU, L.ELU, L.Activation):
    register_layer(_cls, "nonlinear", activation=True)
for _cls in (L.ReLU, L.Activation):  # when the function is ReLU (`delta_keras.runtime.fused`)
    register_layer(_cls, runtime_kernel="relu")
register_layer(L.Softmax, "nonlinear", neurobench_activation=True)
register_layer(L.LayerNormalization, "nonlinear")
register_layer(L.Multiply, "nonlinear")
register_layer(L.Maximum, "nonlinear")
register_layer(L.Minimum, "nonlinear")
for _cls in (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D):
    register_layer(_cls, "nonlinear", reach=_pooling_reach)
register_layer(L.MaxPooling2D, runtime_kernel="max_pool2d")
for _cls in (L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D, Quantize):
    register_layer(_cls, "nonlinear")
register_layer(DeltaActivation, "nonlinear", neurobench_activation=True, runtime_kernel="quantize")
register_layer(Quantize, runtime_kernel="quantize")
register_layer(ActivitySparsity, "pass_through", neurobench_activation=True)
register_layer(FoldTime, "fold")
register_layer(UnfoldTime, "unfold")
register_layer(FrameDifference, "previous_frame")
# Keras operations of functional graphs (``keras.ops...`` on symbolic tensors), frame-wise and affine: the
# delta engine re-evaluates them on the accumulated state (exact zeros where changes cancel).
for _name in ("Add", "Subtract", "Reshape", "Concatenate", "Transpose", "ExpandDims", "Squeeze"):
    register_operation(_name, "affine")
register_operation("Mean", "affine", time_mean=_mean_over_time)
