"""`sparsify`: turn an image model into a clip model with a sparsity layer after every activation;
`strip_sparsity`: its inverse for export."""

from __future__ import annotations

from typing import Callable

import keras

from delta_keras.layers import (
    ActivitySparsity,
    DeltaActivation,
    FoldTime,
    Quantize,
    SparsityLayer,
    UnfoldTime,
)
from delta_keras import registry
from delta_keras.models import graph as graph_lib
from delta_keras.models.fan_out import dense_macs, graph_fan_outs

METHODS = {"delta": DeltaActivation, "l1": ActivitySparsity}


def _check_method(method) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")


def _image_graph(model: keras.Model):
    """The model's graph with nested models inlined, after checking it is an image model."""
    graph = graph_lib.flatten(model)
    shapes = [tuple(t.shape) for t in graph.inputs]
    if len(shapes) != 1 or len(shapes[0]) != 4 or shapes[0][-1] is None:
        raise ValueError(
            f"Expected an image model with one input of shape (height, width, channels), e.g. "
            f"keras.Input((224, 224, 3)); model {model.name!r} has inputs of shapes "
            f"{[s[1:] for s in shapes]}."
        )
    return graph


def apply_per_frame(
    model: keras.Model,
    clips,
    method: str | None = "delta",
    include_input: bool | dict = False,
    where: Callable[[keras.layers.Layer], bool] | None = None,
    **layer_kwargs,
):
    """Applies an image model to every frame of a symbolic clip tensor, with sparsity layers.

    The building block of `sparsify` for models that do more than per-frame work: the image layers
    run on time-folded tensors ``(B*T, H, W, C)`` and the result is unfolded to ``(B, T, ...)``.
    Arguments as in `sparsify`; ``method=None`` inserts no sparsity layer.

    Args:
        model: the image model.
        clips: a symbolic tensor ``(B, T, H, W, C)``, e.g. a `keras.Input`.

    Returns:
        The model's outputs per frame, ``(B, T, ...)``, in the structure of ``model.outputs``.
    """
    if method is not None:
        _check_method(method)
    if "fan_out" in layer_kwargs or "dense_macs" in layer_kwargs:
        raise TypeError("fan_out and dense_macs are set from the graph of the model; they cannot be passed to sparsify")
    graph = _image_graph(model)
    if layer_kwargs.get("normalization") == "dense_macs":
        layer_kwargs = {**layer_kwargs, "dense_macs": dense_macs(graph)}
    input_layer = graph_lib.producer(graph.inputs[0])
    points = set()
    if method is not None:
        points = {layer.name for layer in graph.layers if registry.is_activation(layer) and (where or bool)(layer)}
    # The input is no activation: a boundary only when asked for.
    inputs = {input_layer.name} if include_input else set()
    fan_outs = graph_fan_outs(graph, stop_at=points | inputs)
    if where is None and any(not fan_outs[name] for name in points):
        # An activation whose output feeds no MAC (a model output: an edge map's sigmoid, a ReLU feature map)
        # saves nothing when sparse, and quantising it only changes the result: no sparsity layer there.
        points = {name for name in points if fan_outs[name]}
        fan_outs = graph_fan_outs(graph, stop_at=points | inputs)

    def sparsity(x, layer_name, overrides=None):
        # Sparsity layers need the time axis: unfold, penalise, fold back. A reshape costs no copy.
        # A boundary that reaches no MAC layer (a model output) is weighed per neuron: fan_out 1.
        x = UnfoldTime(name=f"{layer_name}_unfold")([x, clips])
        kwargs = {**layer_kwargs, **(overrides or {})}
        x = METHODS[method](fan_out=fan_outs[layer_name] or 1.0, name=f"{layer_name}_{method}", **kwargs)(x)
        return FoldTime(name=f"{layer_name}_fold")(x)

    def visit(layer, *args, **kwargs):
        point = layer.name in points
        kind = registry.layer_kind(layer)
        fused = point and not (kind is not None and kind.activation)
        # Split `Conv2D(..., activation=f)` into the linear layer and `Activation(f)`, so the sparsity
        # layer sees the activated output and the MAC layer stays a plain, recognisable layer.
        overrides = {"activation": "linear"} if fused else None
        x = graph_lib.call_copy(layer, *args, config_overrides=overrides, **kwargs)
        if fused:
            x = keras.layers.Activation(layer.get_config()["activation"], name=f"{layer.name}_activation")(x)
        return sparsity(x, layer.name) if point else x

    frames = FoldTime(name="fold_time")(clips)
    if include_input and method is not None:
        frames = sparsity(frames, input_layer.name, include_input if isinstance(include_input, dict) else None)
    outputs = graph_lib.run_graph(graph, frames, visit)
    return keras.tree.map_structure(
        lambda x: UnfoldTime(name=f"{graph_lib.producer(x).name}_frames")([x, clips]), outputs
    )


def sparsify(
    model: keras.Model,
    method: str = "delta",
    frames: int | None = None,
    include_input: bool | dict = False,
    where: Callable[[keras.layers.Layer], bool] | None = None,
    **layer_kwargs,
) -> keras.Model:
    """Turns an image model into a clip model with a sparsity layer after every activation.

    The clip model applies the image model to every frame of a clip and puts a `DeltaActivation`
    (``method="delta"``) or an `ActivitySparsity` (``method="l1"``) after every nonlinear activation:
    activation layers (``ReLU``, ``Activation``...) and layers with their own ``activation``, which are
    split into the linear layer and an ``Activation`` so the sparsity layer sees the activated output.
    Softmax and linear activations get none (a class distribution feeds no MACs), and by default neither
    does an activation whose output feeds no MAC layer (a model output such as an edge map's sigmoid):
    sparsity there saves nothing and quantising it only changes the result.

    The image layers are copies of the model's layers, with the same names and weights, run on frames
    with time folded into batch, ``(B*T, H, W, C)``; only the sparsity layers see the time axis
    (``UnfoldTime`` -> sparsity layer -> ``FoldTime``, reshapes that cost no copy). So every MAC layer of
    the image model is a plain Keras layer of the clip model, whose input tensor a simulator can find.
    Nested models (e.g. a `keras.applications` base inside a classifier) are inlined.

    Each sparsity layer's ``fan_out`` is set from the graph by `delta_keras.models.graph_fan_outs`:
    the MACs that one nonzero output triggers in the next MAC layers (1 if it reaches none, which only
    a ``where`` choosing a model output gives). With ``normalization="dense_macs"`` each layer's loss is
    also divided by the image model's dense MACs per frame (`delta_keras.models.dense_macs`), so the
    sparsity weight is the price of the whole model's MACs: the summed loss is the weight times the share
    of dense MACs that the deltas trigger, the same scale on a 3-layer toy and on VGG16.

    Args:
        model: a functional or Sequential image model with one input of shape ``(H, W, C)``.
        method: ``"delta"`` (`DeltaActivation`: quantised activations, penalised temporal changes) or
            ``"l1"`` (`ActivitySparsity`: the spatial L1 baseline).
        frames: clip length, or None for clips of any length.
        include_input: also put a sparsity layer on the model's input (the paper does for ResNet50).
            A dict also does, with arguments of its own for that layer over ``layer_kwargs``: inputs are
            pixels, on another scale than activations (e.g. ``{"step_init": 16.0}``).
        where: ``layer -> bool`` called with each candidate layer of ``model`` (an activation layer or a
            layer with its own activation); only those for which it is True get a sparsity layer, model
            outputs included.
        **layer_kwargs: passed to every sparsity layer (``step_init``, ``sparsity_weight``,
            ``granularity``, ``step_gradient``, ``penalty``, ``normalization``...); not ``fan_out`` or
            ``dense_macs``.

    Returns:
        A `keras.Model` from clips ``(B, T, H, W, C)`` to the model's outputs per frame ``(B, T, ...)``.
        The original model is left untouched.

    Raises:
        ValueError: for a model without one ``(H, W, C)`` input, or an unknown ``method``.
        TypeError: for a subclassed model, or ``fan_out`` in ``layer_kwargs``.

    Example:

    >>> import keras
    >>> import delta_keras
    >>> image_model = keras.applications.MobileNet(weights=None, input_shape=(32, 32, 3), classes=5)
    >>> clip_model = delta_keras.sparsify(image_model, frames=8, step_init=0.5, sparsity_weight=1e-4)
    >>> clip_model.output.shape
    (None, 8, 5)
    >>> sum(isinstance(layer, delta_keras.DeltaActivation) for layer in clip_model.layers)
    27
    """
    _check_method(method)
    if frames is not None and (not isinstance(frames, int) or frames < 1):
        raise ValueError(f"frames must be a positive int or None, got {frames!r}")
    image_input = _image_graph(model).inputs[0]
    clips = keras.Input((frames, *image_input.shape[1:]), dtype=image_input.dtype, name="clips")
    outputs = apply_per_frame(model, clips, method, include_input, where, **layer_kwargs)
    return keras.Model(clips, outputs, name=f"{model.name}_{method}")


def strip_sparsity(model: keras.Model) -> keras.Model:
    """Returns the same network without the training-only parts of its sparsity layers (for export).

    - `DeltaActivation` becomes a `delta_keras.layers.Quantize` with the same name and step: the
      trained network depends on its quantisation, which is kept bit for bit, but the sparsity loss
      and the statistics go; a memory-mode `DeltaActivation` (state across frames) stays, with its
      threshold and without its loss;
    - `ActivitySparsity` (a pass-through) becomes a `keras.layers.Identity` with the same name.

    The other layers are copies with the same weights; the outputs are unchanged and the model has no
    sparsity losses. The rewrite is Keras' own `keras.models.clone_model` (nested models stay nested).

    Args:
        model: a functional or Sequential model, e.g. from `sparsify`.

    Returns:
        A new `keras.Model` (the argument is left untouched).

    Raises:
        ValueError: for a `DeltaActivation` with ``output="delta"`` (its output is not a plain
            function of the frame, so it cannot be replaced by a quantiser).

    Example:

    >>> import keras
    >>> import delta_keras
    >>> image_model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, activation="relu", name="conv"),
    ...                                 keras.layers.Conv2D(1, 1, name="head")])
    >>> trained = delta_keras.sparsify(image_model, sparsity_weight=1e-3)
    >>> deployed = delta_keras.strip_sparsity(trained)
    >>> type(trained.get_layer("conv_delta")).__name__, type(deployed.get_layer("conv_delta")).__name__
    ('DeltaActivation', 'Quantize')
    """

    def strip(layer):
        if isinstance(layer, ActivitySparsity):
            return keras.layers.Identity(name=layer.name)
        if isinstance(layer, DeltaActivation):
            if layer.output_mode != "quantized":
                raise ValueError(
                    f"strip_sparsity: {layer.name!r} outputs temporal changes (output={layer.output_mode!r}); "
                    "only DeltaActivation(output='quantized') can be replaced by a quantiser."
                )
            if layer.memory:
                # Memory mode keeps state across frames: no per-frame quantiser can stand in for it, so the
                # layer stays, with its threshold and without its loss.
                return graph_lib.copy_layer(layer, sparsity_weight=0.0)
            return Quantize.from_delta_activation(layer)
        if isinstance(layer, SparsityLayer):
            raise TypeError(f"strip_sparsity: unknown sparsity layer {layer.name!r} ({type(layer).__name__})")
        return graph_lib.copy_layer(layer)

    return graph_lib.clone_with_weights(model, strip)
