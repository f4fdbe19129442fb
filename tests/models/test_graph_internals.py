"""The Keras internals that delta_keras relies on still exist: if Keras renames one, this fails, loudly,
naming it (rather than the graph walk or the multi-worker work-around silently misbehaving)."""

import keras

from delta_keras.models import graph


def test_the_graph_internals_exist():
    inputs = keras.Input((4,))
    functional = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    sequential = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    for owner, names in (("model", functional), ("sequential", sequential), ("layer", keras.layers.Dropout(0.1))):
        for name in graph.INTERNALS[owner]:
            assert hasattr(names, name), f"Keras {keras.__version__} has no {name} on {owner}s"
    node = graph.layer_calls(functional)[0]
    assert hasattr(node, "arguments") and hasattr(node.arguments, "fill_in")
    assert graph.producer(functional.outputs[0]) is functional.layers[-1]


def test_the_multiworker_work_around_finds_what_it_patches():
    for name in ("_symbolic_build", "_maybe_symbolic_build"):
        assert name in graph.INTERNALS["model"]
        assert hasattr(keras.Model, name), f"Keras {keras.__version__} has no Model.{name}"
