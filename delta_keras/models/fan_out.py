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
outputs one input element reaches (their registered ``reach``, `delta_keras.registry`): 1 for elementwise
and rearranging layers (BatchNormalization, activations, Dropout, Add, Concatenate, Flatten, Reshape,
ZeroPadding, Rescaling, global pooling...); ``prod(pool_size) / prod(strides)`` for pooling. For average pooling with ``pool_size == strides`` that
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

from delta_keras import registry
from delta_keras.layers import SparsityLayer
from delta_keras.models import graph as graph_lib


def layer_fan_out(layer: keras.layers.Layer) -> float | None:
    """MACs that one nonzero element of ``layer``'s input triggers inside ``layer`` (its registered
    ``fan_out``, `delta_keras.registry`).

    Args:
        layer: any Keras layer (built or not); a `TimeDistributed` one counts as the layer it wraps (a frame's
            element feeds only that frame's MACs).

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
    layer, _ = registry.unwrap(layer)
    kind = registry.layer_kind(layer)
    return float(kind.fan_out(layer)) if kind is not None and kind.role == "mac" else None


def _reach(layer: keras.layers.Layer) -> float:
    """How many outputs of a MAC-free layer one input element reaches (interior average)."""
    layer, _ = registry.unwrap(layer)
    kind = registry.layer_kind(layer)
    if kind is None:
        warnings.warn(
            f"fan-out: layer {layer.name!r} ({type(layer).__name__}) is unknown, counted as one-to-one "
            "(each input element reaches one output element); teach it with delta_keras.registry.register_layer.",
            stacklevel=3,
        )
        return 1.0
    return float(kind.reach(layer)) if kind.reach else 1.0


def _data_inputs(node) -> list:
    # Unfolding time reads only the shape of its second input.
    kind = registry.layer_kind(node.operation)
    return node.input_tensors[:1] if kind is not None and kind.role == "unfold" else node.input_tensors


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

