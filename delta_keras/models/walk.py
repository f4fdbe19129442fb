"""Walking a model's layers (nested models and wrappers included) and its sparsity layers' statistics."""

from __future__ import annotations

import keras

from delta_keras.layers import SparsityLayer


def child_layers(layer: keras.layers.Layer) -> list:
    """The layers directly inside ``layer``: a model's layers, a wrapper's (e.g. TimeDistributed) layer."""
    return getattr(layer, "layers", None) or ([layer.layer] if hasattr(layer, "layer") else [])


def all_layers(layer: keras.layers.Layer):
    """Yields ``layer`` and, depth first in graph order, every layer inside it (nested models, wrappers)."""
    yield layer
    for child in child_layers(layer):
        yield from all_layers(child)


def sparsity_layers(model: keras.Model) -> list[SparsityLayer]:
    """The `SparsityLayer`s of ``model`` in graph order, nested models and wrappers included."""
    return [layer for layer in all_layers(model) if isinstance(layer, SparsityLayer)]


def read_statistics(model: keras.Model, reset: bool = False) -> dict[str, dict]:
    """Every sparsity layer's `statistics()` by layer name, optionally resetting them after reading."""
    stats = {}
    for layer in sparsity_layers(model):
        stats[layer.name] = layer.statistics()
        if reset:
            layer.reset_statistics()
    return stats


def reset_statistics(model: keras.Model) -> None:
    """Zeroes the running statistics of every sparsity layer of ``model``."""
    for layer in sparsity_layers(model):
        layer.reset_statistics()
