"""Reading and rebuilding the layer graph of functional and Sequential Keras models.

Keras has no public graph-rewriting API beyond `keras.models.clone_model`, which can neither inline
nested models nor change the input rank; so this module uses the graph walk that `clone_model` itself
is built on (`Functional._run_through_graph`). Everything else in the package goes through here.
"""

from __future__ import annotations

from typing import Callable

import keras
from keras.src.models.functional import Functional  # the class of functional models (not exported)


def functional_graph(model: keras.Model) -> Functional:
    """Returns the functional graph of a functional or built Sequential model.

    Raises:
        TypeError: for anything else (a subclassed model has no graph to read).
        ValueError: for a Sequential model that is not built.
    """
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
        if graph is None:
            raise ValueError(
                f"Sequential model {model.name!r} has no graph yet: build it with an input, "
                "e.g. keras.Sequential([keras.Input((224, 224, 3)), ...])."
            )
        return graph
    if isinstance(model, Functional):
        return model
    raise TypeError(
        f"Expected a functional or Sequential keras.Model, got {type(model).__name__}: a subclassed model "
        "has no layer graph to rebuild."
    )


def is_graph_model(layer) -> bool:
    """Whether ``layer`` is a functional or Sequential model (whose layers can be inlined)."""
    return isinstance(layer, (Functional, keras.Sequential))


def run_graph(model: keras.Model, inputs, call: Callable):
    """Runs the graph of ``model`` on new ``inputs``, calling ``call(layer, *args, **kwargs)`` for each layer.

    Nested functional / Sequential models are inlined: ``call`` sees their layers, never the models.

    Returns:
        The new outputs, in the structure of ``model.outputs``.
    """

    def visit(layer, *args, **kwargs):
        if is_graph_model(layer):
            return run_graph(layer, args[0], call)
        return call(layer, *args, **kwargs)

    return functional_graph(model)._run_through_graph(inputs, call_fn=visit)


def new_inputs(model: keras.Model):
    """New `keras.Input` tensors like the model's inputs (shapes, dtypes, names), in its input structure."""
    graph = functional_graph(model)
    inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t._keras_history.operation.name) for t in graph.inputs]
    return keras.tree.pack_sequence_as(graph._inputs_struct, inputs)


def flatten(model: keras.Model) -> Functional:
    """Returns ``model`` as one functional graph with nested models inlined (sharing the same layers)."""
    graph = functional_graph(model)
    if not any(is_graph_model(layer) for layer in graph.layers):
        return graph
    inputs = new_inputs(graph)
    outputs = run_graph(graph, inputs, lambda layer, *args, **kwargs: layer(*args, **kwargs))
    return keras.Model(inputs, outputs, name=model.name)


def nodes(model: Functional) -> list:
    """The nodes (layer calls) of a functional graph, inputs first."""
    by_depth = model._nodes_by_depth
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]]


def copy_layer(layer: keras.layers.Layer, **config_overrides) -> keras.layers.Layer:
    """A new layer built from ``layer``'s config (with overrides); its weights are copied by `call_copy`."""
    try:
        return type(layer).from_config({**layer.get_config(), **config_overrides})
    except Exception as error:  # a custom layer without a complete get_config
        raise TypeError(
            f"Could not copy layer {layer.name!r} ({type(layer).__name__}) with from_config(get_config()): "
            f"{error}. Custom layers need a get_config() that returns every constructor argument."
        ) from error


def call_copy(layer: keras.layers.Layer, *args, config_overrides: dict | None = None, **kwargs):
    """Calls a copy of ``layer`` (see `copy_layer`) on new tensors and gives it ``layer``'s weights."""
    copy = copy_layer(layer, **(config_overrides or {}))
    outputs = copy(*args, **kwargs)
    copy.set_weights(layer.get_weights())
    return outputs
