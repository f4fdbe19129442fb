"""Distribution strategies for training: one device, every local GPU, or several workers."""

from __future__ import annotations

import functools
import json
import os

import keras
import tensorflow as tf

from delta_keras.models import graph


def build_strategy(name: str) -> tf.distribute.Strategy:
    """``"default"`` (one device), ``"mirrored"`` (every local GPU) or ``"multiworker"`` (TF_CONFIG)."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"strategy must be default, mirrored or multiworker, got {name!r}")


def worker_index() -> int:
    """This process's index in the TF_CONFIG cluster (0 without one); worker 0 is the chief."""
    task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {})
    return int(task.get("index", 0)) if task.get("type", "worker") in ("worker", "chief") else -1


def is_multiworker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def prepare_for_multiworker(model: keras.Model, strategy: tf.distribute.Strategy, batch) -> None:
    """Lets ``model.fit``/``evaluate`` run under `tf.distribute.MultiWorkerMirroredStrategy` in Keras 3.

    Keras 3 (up to 3.15 at least, keras-team/keras#20585) fails there in two places: before the first
    step it averages a batch across workers with ``strategy.reduce`` on a nested structure, which the
    collective ops reject; and it averages each step's scalar logs with ``reduce(..., axis=0)``,
    which needs rank >= 1. This builds the model's losses and metrics from a local ``batch`` instead
    of that averaged one, and gives the step logs a leading axis of 1 (the per-replica mean is then
    taken over it, as intended). Both patches touch only this model object.

    Args:
        model: a compiled model whose variables were created under ``strategy.scope()``.
        strategy: the strategy.
        batch: one local ``(x, y)`` batch.
    """
    with strategy.scope():
        graph.build_from_batch(model, batch)

    def with_leading_axis(step):
        @functools.wraps(step)
        def wrapped(data):
            return {name: tf.reshape(value, [1]) for name, value in step(data).items()}

        return wrapped

    model.train_step = with_leading_axis(model.train_step)
    model.test_step = with_leading_axis(model.test_step)
