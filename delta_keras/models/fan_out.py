"""Fan-out from the graph: the MACs that one nonzero element of a tensor triggers downstream.

This is the one definition used by `delta_keras.sparsify` (to weigh each sparsity layer's loss) and by
the simulator's cross-checks. It counts the interior of a feature map (borders and padding ignored),
like the published per-layer MAC formulas:

- ``Conv1D/2D/3D``: ``filters / groups * prod(kernel_size) / prod(strides)`` (an input element is read
  by ``prod(kernel_size) / prod(strides)`` output positions on average, each with ``filters`` MACs);
- ``DepthwiseConv``: ``depth_multiplier * prod(kernel_size) / prod(strides)``;
- ``SeparableConv``: its depthwise part (the pointwise part reads the depthwise output, not the input);
- ``Conv*Transpose``: ``filters * prod(kernel_size)`` (each input element is scattered to every tap);
- ``Dense``: ``units``.

MAC-free layers pass the fan-out of their output back to their input, multiplied by the number of
outputs one input element reaches: 1 for elementwise and rearranging layers (BatchNormalization,
activations, Dropout, Add, Concatenate, Flatten, Reshape, ZeroPadding, Rescaling, global pooling...);
``prod(pool_size) / prod(strides)`` for pooling. For average pooling with ``pool_size == strides`` that
is 1: an element feeds one pooled output, and a nonzero change there triggers that output's fan-out.
(If several changes fall in one window a delta engine may merge them into one, so the figure is an upper
bound, exact when changes are isolated.) For max pooling the same figure is an upper bound too: a change
reaches at most the outputs whose window holds it.

A tensor consumed by several layers sums their contributions. The walk stops at a sparsity boundary
(a `SparsityLayer`, or a layer named in ``stop_at``: one whose output gets a sparsity layer), because the
changes there are re-quantised and the MACs after it are charged to that boundary. A tensor that reaches
no MAC layer (a model output) has fan-out 0.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from typing import Iterable

import keras

from delta_keras.layers import FoldTime, ImagePreprocessing, Quantize, SparsityLayer, UnfoldTime
from delta_keras.models import graph as graph_lib

L = keras.layers
_CONVOLUTIONS = (L.Conv1D, L.Conv2D, L.Conv3D)
_TRANSPOSED_CONVOLUTIONS = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
_DEPTHWISE_CONVOLUTIONS = (L.DepthwiseConv1D, L.DepthwiseConv2D, L.SeparableConv1D, L.SeparableConv2D)
_POOLING = (
    L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D, L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D,
)
_UPSAMPLING = (L.UpSampling1D, L.UpSampling2D, L.UpSampling3D)
# Layers where an input element reaches one output element (or is dropped).
_ONE_TO_ONE = (
    L.InputLayer, L.BatchNormalization, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D,
    L.GaussianDropout, L.GaussianNoise, L.AlphaDropout, L.Activation, L.ReLU, L.LeakyReLU, L.PReLU, L.ELU,
    L.Softmax, L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum, L.Concatenate, L.Flatten,
    L.Reshape, L.Permute, L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D, L.Cropping1D, L.Cropping2D,
    L.Cropping3D, L.Rescaling, L.Normalization, L.Identity, L.GlobalAveragePooling1D, L.GlobalAveragePooling2D,
    L.GlobalAveragePooling3D, L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D,
    ImagePreprocessing, Quantize, FoldTime, UnfoldTime,
)


def layer_fan_out(layer: keras.layers.Layer) -> float | None:
    """MACs that one nonzero element of ``layer``'s input triggers inside ``layer``.

    Args:
        layer: any Keras layer (built or not).

    Returns:
        The MAC count (a float: strides make it fractional), or None for a layer that does no MACs.

    Example:

    >>> import keras
    >>> from delta_keras.models import layer_fan_out
    >>> layer_fan_out(keras.layers.Conv2D(64, 3, strides=2))
    144.0
    >>> layer_fan_out(keras.layers.DepthwiseConv2D(3))
    9.0
    >>> layer_fan_out(keras.layers.ReLU()) is None
    True
    """
    if isinstance(layer, L.Dense):
        return float(layer.units)
    if isinstance(layer, _TRANSPOSED_CONVOLUTIONS):
        return float(layer.filters * math.prod(layer.kernel_size))
    if isinstance(layer, _CONVOLUTIONS + _DEPTHWISE_CONVOLUTIONS):
        outputs_per_read = layer.filters / layer.groups if isinstance(layer, _CONVOLUTIONS) else layer.depth_multiplier
        return outputs_per_read * math.prod(layer.kernel_size) / math.prod(layer.strides)
    return None


def _reach(layer: keras.layers.Layer) -> float:
    """How many outputs of a MAC-free layer one input element reaches (interior average)."""
    if isinstance(layer, _POOLING):
        return math.prod(layer.pool_size) / math.prod(layer.strides)
    if isinstance(layer, _UPSAMPLING):
        return float(math.prod(layer.size))
    if isinstance(layer, L.Resizing):
        # Each output reads 4 inputs (bilinear) or 1 (nearest): per input, that times outputs / inputs.
        taps = 4.0 if layer.interpolation == "bilinear" else 1.0
        height, width = layer.input.shape[-3:-1] if layer.data_format == "channels_last" else layer.input.shape[-2:]
        return taps * layer.height * layer.width / (height * width)
    if not isinstance(layer, _ONE_TO_ONE):
        warnings.warn(
            f"fan-out: layer {layer.name!r} ({type(layer).__name__}) is unknown, counted as one-to-one "
            "(each input element reaches one output element).",
            stacklevel=3,
        )
    return 1.0


def _data_inputs(node) -> list:
    # UnfoldTime reads only the shape of its second input.
    return node.input_tensors[:1] if isinstance(node.operation, UnfoldTime) else node.input_tensors


def graph_fan_outs(model: keras.Model, stop_at: Iterable[str] = ()) -> dict[str, float]:
    """The fan-out of every layer's output in a model's graph (see the module docstring for the rules).

    Works on plain image models and on clip models built by `delta_keras.sparsify` alike; nested models
    are inlined (their layers are reported by name). Each layer is assumed to be called once.

    Args:
        model: a functional or Sequential Keras model.
        stop_at: names of layers whose outputs are sparsity boundaries (get a sparsity layer), in
            addition to the `SparsityLayer` instances in the graph.

    Returns:
        ``{layer name: MACs one nonzero element of its output triggers}``, input layers included.

    Example:

    >>> import keras
    >>> from delta_keras.models import graph_fan_outs
    >>> inputs = keras.Input((8, 8, 3))
    >>> x = keras.layers.ReLU(name="relu")(inputs)
    >>> x = keras.layers.AveragePooling2D(2, name="pool")(x)
    >>> x = keras.layers.Conv2D(16, 3, name="conv")(x)
    >>> graph_fan_outs(keras.Model(inputs, x))["relu"]
    144.0
    """
    stop_at = set(stop_at)
    graph_nodes = graph_lib.nodes(graph_lib.flatten(model))
    consumers = defaultdict(list)
    for node in graph_nodes:
        for tensor in _data_inputs(node):
            consumers[id(tensor)].append(node)
    fan_outs = {}  # by tensor id

    def tensor_fan_out(tensor) -> float:
        if id(tensor) not in fan_outs:
            fan_outs[id(tensor)] = sum(consumer_fan_out(node) for node in consumers[id(tensor)])
        return fan_outs[id(tensor)]

    def consumer_fan_out(node) -> float:
        layer = node.operation
        macs = layer_fan_out(layer)
        if macs is not None:
            return macs
        if isinstance(layer, SparsityLayer) or layer.name in stop_at:
            return 0.0
        return _reach(layer) * sum(tensor_fan_out(t) for t in node.outputs)

    return {node.operation.name: sum(tensor_fan_out(t) for t in node.outputs) for node in graph_nodes}


def dense_macs(model: keras.Model) -> float:
    """MACs of one dense forward pass of ``model`` on one sample (interior rule, as `layer_fan_out`).

    The sum over the MAC layers of ``layer_fan_out(layer) * input elements``: the denominator of
    ``normalization="dense_macs"``, in which a sparsity weight means the same on any network.

    Example:

    >>> import keras
    >>> from delta_keras.models import dense_macs
    >>> inputs = keras.Input((8, 8, 3))
    >>> x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    >>> dense_macs(keras.Model(inputs, keras.layers.Dense(2)(x)))  # 8*8*3 * 4*9 + 8*8*4 * 2
    7424.0
    """
    total = 0.0
    for node in graph_lib.nodes(graph_lib.flatten(model)):
        macs = layer_fan_out(node.operation)
        if macs is not None:
            total += macs * math.prod(node.input_tensors[0].shape[1:])
    return total

