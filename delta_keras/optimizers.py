"""Optimizers in which the quantisation steps (and thresholds) learn at their own rate.

A fine-tuning learning rate suits pretrained kernels but leaves the steps where they started: Adam moves
a variable by about ``learning_rate`` per update whatever its gradient's scale, so at 1e-5 a step of 8
moves by about 0.003 in 300 updates, and scaling the step's gradient (LSQ's remedy under SGD) changes
nothing under Adam. `with_step_rate` gives every variable that carries the `StepRange` constraint (the
step of a `DeltaActivation`, its threshold with ``memory=True``) ``step_rate`` times the learning rate
and every other variable the learning rate itself, for any standard Keras optimizer, on every backend.

The optimizer finds the steps by their constraint when it is built and recognises them by variable path
in each update (TensorFlow hands its updates the backend's own variables, named by path).
"""

from __future__ import annotations

import math
import re

import keras

from delta_keras.layers.delta_activation import StepRange

# The Keras optimizers that get a step-rate twin; each twin is registered for `keras.models.load_model`.
_BASES = ("SGD", "Adam", "AdamW", "Adamax", "Nadam", "RMSprop", "Adagrad", "Adadelta", "Adafactor", "Ftrl", "Lion",
          "Lamb")


def _path(variable) -> str:
    """A variable's path, for a Keras variable or a backend variable named ``<path>[/replica_N]:0``."""
    if hasattr(variable, "path"):
        return variable.path
    return re.sub(r"(/replica_\d+)?:\d+$", "", variable.name)


class StepRateMixin:
    """Gives the variables with a `StepRange` constraint ``step_rate`` times the learning rate."""

    def __init__(self, *args, step_rate: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        if not (math.isfinite(step_rate) and step_rate > 0):
            raise ValueError(f"step_rate must be a finite number > 0, got {step_rate!r}")
        self.step_rate = float(step_rate)
        self.step_paths: frozenset = frozenset()

    def build(self, variables):
        self.step_paths = frozenset(v.path for v in variables if isinstance(v.constraint, StepRange))
        super().build(variables)

    def update_step(self, gradient, variable, learning_rate):
        if _path(variable) in self.step_paths:
            learning_rate = learning_rate * self.step_rate
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        return {**super().get_config(), "step_rate": self.step_rate}


_TWINS: dict[type, type] = {}
for _name in _BASES:
    _base = getattr(keras.optimizers, _name, None)
    if _base is not None:
        _TWINS[_base] = keras.saving.register_keras_serializable(package="delta_keras", name=f"StepRate{_name}")(
            type(f"StepRate{_name}", (StepRateMixin, _base), {"__doc__": f"`keras.optimizers.{_name}` with `step_rate`."}))


def with_step_rate(optimizer: keras.optimizers.Optimizer, step_rate: float) -> keras.optimizers.Optimizer:
    """A fresh optimizer of ``optimizer``'s kind and configuration whose steps learn at ``step_rate`` x its rate.

    Args:
        optimizer: an unbuilt standard Keras optimizer (its configuration is copied; a learning-rate
            schedule applies to both groups).
        step_rate: the multiplier of the learning rate for every `StepRange`-constrained variable (the
            steps and thresholds of `DeltaActivation`); 1 gives the optimizer back unchanged in effect.

    Example:

    >>> optimizer = with_step_rate(keras.optimizers.Adam(1e-5), step_rate=1000.0)
    >>> type(optimizer).__name__, optimizer.step_rate
    ('StepRateAdam', 1000.0)
    """
    # The first standard class in the MRO: the torch backend swaps some classes for its own subclasses.
    public = next((c for c in type(optimizer).__mro__ if c in _TWINS), None)
    if public is None:
        raise ValueError(f"with_step_rate supports the Keras optimizers {sorted(_BASES)}, got {type(optimizer).__name__}")
    config = {k: v for k, v in optimizer.get_config().items() if k != "step_rate"}
    return _TWINS[public].from_config({**config, "step_rate": step_rate})
