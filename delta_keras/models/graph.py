"""Reading, running and rebuilding the layer graph of functional and Sequential Keras models.

Keras' public graph API is `keras.models.clone_model`: `strip_sparsity` uses it (`clone_with_weights`).
It can neither inline nested models nor change the input rank (as `sparsify` must: it folds a clip's time
axis into the batch before the image layers), and Keras offers no way to walk a graph's nodes or call one node on new values. This
module is the one place in the package that uses Keras internals: for that (the node walk that
`clone_model` itself is built on: ``_run_through_graph``, ``_nodes_by_depth``, ``_keras_history``,
``_inputs_struct``, ``Node.arguments.fill_in``, ``_call_has_training_arg``), and for the multi-worker
work-around of `delta_keras.train.distribute` (``_symbolic_build``, ``_maybe_symbolic_build``). Everything
else goes through its functions, and `tests/models/test_graph_internals.py` fails loudly if Keras renames
any of them.
"""

from __future__ import annotations

from typing import Callable

import keras

# Keras' internal names this module relies on (checked by tests/models/test_graph_internals.py).
INTERNALS = {"model": ("_run_through_graph", "_nodes_by_depth", "_inputs_struct", "_symbolic_build",
                       "_maybe_symbolic_build"),
             "sequential": ("_functional",), "layer": ("_call_has_training_arg",)}


def _is_functional(model) -> bool:
    # The functional model class is not exported; a functional graph is a Model with a node table.
    return isinstance(model, keras.Model) and not isinstance(model, keras.Sequential) and hasattr(
        model, "_nodes_by_depth") and hasattr(model, "_run_through_graph")


def functional_graph(model: keras.Model) -> keras.Model:
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
    if _is_functional(model):
        return model
    raise TypeError(
        f"Expected a functional or Sequential keras.Model, got {type(model).__name__}: a subclassed model "
        "has no layer graph to rebuild."
    )


def is_graph_model(layer) -> bool:
    """Whether ``layer`` is a functional or Sequential model (whose layers can be inlined)."""
    return isinstance(layer, keras.Sequential) or _is_functional(layer)


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
    inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype, name=producer(t).name) for t in graph.inputs]
    return keras.tree.pack_sequence_as(graph._inputs_struct, inputs)


def flatten(model: keras.Model) -> keras.Model:
    """Returns ``model`` as one functional graph with nested models inlined (sharing the same layers)."""
    graph = functional_graph(model)
    if not any(is_graph_model(layer) for layer in graph.layers):
        return graph
    inputs = new_inputs(graph)
    outputs = run_graph(graph, inputs, lambda layer, *args, **kwargs: layer(*args, **kwargs))
    return keras.Model(inputs, outputs, name=model.name)


def nodes(model: keras.Model) -> list:
    """The nodes (layer calls) of a functional graph, inputs first."""
    by_depth = model._nodes_by_depth
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]]


def layer_calls(model: keras.Model) -> list:
    """The layer-call nodes of a functional or Sequential model in topological order, input nodes excluded
    (nested models appear as one node each).

    Raises:
        ValueError: for a subclassed model (it has no graph to walk).
    """
    try:
        graph = functional_graph(model)
    except TypeError as error:
        raise ValueError(f"{model.name}: only functional and Sequential models can be simulated ({error})") from None
    return [node for node in nodes(graph) if not node.is_input]


def producer(tensor) -> keras.layers.Layer:
    """The layer (or operation) whose call produced a symbolic tensor."""
    return tensor._keras_history.operation


def call_node(node, values: dict):
    """Calls a node's layer again on new values: ``values`` maps ``id(symbolic input tensor)`` to a value; the
    node's other arguments are kept, and a layer that takes ``training`` gets ``training=False``."""
    args, kwargs = node.arguments.fill_in(values)
    if getattr(node.operation, "_call_has_training_arg", False):
        kwargs["training"] = False
    return node.operation(*args, **kwargs)


def build_from_batch(model: keras.Model, batch) -> None:
    """Builds a compiled model's losses and metrics from ``batch`` now, and keeps `fit` and `evaluate` from
    building them again from a batch of their own (which, under multi-worker training, Keras first averages
    across workers, keras-team/keras#20585; see `delta_keras.train.distribute`).

    Raises:
        RuntimeError: this Keras has no such build methods (a renamed method would make the patch silently
            do nothing).
    """
    missing = [name for name in ("_symbolic_build", "_maybe_symbolic_build") if not hasattr(model, name)]
    if missing:
        raise RuntimeError(f"Keras {keras.__version__} has no Model.{', '.join(missing)}: the multi-worker "
                           "work-around (delta_keras/models/graph.py, build_from_batch) needs updating")
    model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda *args, **kwargs: None


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


def clone_with_weights(model: keras.Model, clone_function: Callable) -> keras.Model:
    """`keras.models.clone_model` (nested models cloned too) in which copies keep the original's weights.

    ``clone_function(layer)`` returns the new layer; one of the original's own class is taken for a copy
    (e.g. from `copy_layer`) and gets its weights once built, any other is used as returned.
    """
    copies = []

    def clone(layer):
        new = clone_function(layer)
        if type(new) is type(layer):
            copies.append((new, layer))
        return new

    cloned = keras.models.clone_model(model, clone_function=clone, recursive=True)
    for new, layer in copies:
        new.set_weights(layer.get_weights())
    return cloned
