"""Optimizers in which the quantisation steps (and thresholds), and a classifier's head, learn at their own rates.

A fine-tuning learning rate suits pretrained kernels but leaves the steps where they started: Adam moves
a variable by about ``learning_rate`` per update whatever its gradient's scale, so at 1e-5 a step of 8
moves by about 0.003 in 300 updates, and scaling the step's gradient (LSQ's remedy under SGD) changes
nothing under Adam. `with_step_rate` gives every variable that carries the `StepRange` constraint (the
step of a `DeltaActivation`, its threshold with ``memory=True``) ``step_rate`` times the learning rate
and every other variable the learning rate itself, for any standard Keras optimizer, on every backend.

Fine-tuning a pretrained backbone under a fresh classification head has the mirror problem: a rate that
trains the head in a few epochs wrecks the pretrained kernels (a VGG16 trunk under Adam at 3e-4 collapses
to a constant prediction), and one that keeps them leaves the head untrained. ``head_rate`` gives the
variables of the named head layers that multiple of the learning rate.

The optimizer finds the steps by their constraint (and the head by its layers' names, the first part of
a variable's path) when it is built and recognises them by variable path in each update (TensorFlow
hands its updates the backend's own variables, named by path).
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


def _check_rate(name: str, rate: float) -> float:
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {rate!r}")
    return float(rate)


class StepRateMixin:
    """Gives the variables with a `StepRange` constraint ``step_rate`` times the learning rate, and those of
    the layers named in ``head`` ``head_rate`` times it."""

    def __init__(self, *args, step_rate: float = 1.0, head_rate: float = 1.0, head: tuple | list = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.step_rate = _check_rate("step_rate", step_rate)
        self.head_rate = _check_rate("head_rate", head_rate)
        self.head = tuple(head)
        self.rates: dict[str, float] = {}

    def build(self, variables):
        head = set(self.head)
        self.rates = {v.path: self.step_rate for v in variables if isinstance(v.constraint, StepRange)}
        self.rates.update({v.path: self.head_rate for v in variables
                           if v.path not in self.rates and v.path.split("/")[0] in head})
        super().build(variables)

    def update_step(self, gradient, variable, learning_rate):
        rate = self.rates.get(_path(variable), 1.0)
        return super().update_step(gradient, variable, learning_rate * rate if rate != 1.0 else learning_rate)

    def get_config(self) -> dict:
        return {**super().get_config(), "step_rate": self.step_rate, "head_rate": self.head_rate,
                "head": list(self.head)}


_TWINS: dict[type, type] = {}
for _name in _BASES:
    _base = getattr(keras.optimizers, _name, None)
    if _base is not None:
        _TWINS[_base] = keras.saving.register_keras_serializable(package="delta_keras", name=f"StepRate{_name}")(
            type(f"StepRate{_name}", (StepRateMixin, _base), {"__doc__": f"`keras.optimizers.{_name}` with `step_rate`."}))


def with_step_rate(optimizer: keras.optimizers.Optimizer, step_rate: float = 1.0, head_rate: float = 1.0,
                   head: tuple | list = ()) -> keras.optimizers.Optimizer:
    """A fresh optimizer of ``optimizer``'s kind and configuration whose steps learn at ``step_rate`` x its rate
    (and the layers named in ``head`` at ``head_rate`` x).

    Args:
        optimizer: an unbuilt standard Keras optimizer (its configuration is copied; a learning-rate
            schedule applies to every group).
        step_rate: the multiplier of the learning rate for every `StepRange`-constrained variable (the
            steps and thresholds of `DeltaActivation`); 1 gives the optimizer back unchanged in effect.
        head_rate: the multiplier for the variables of the layers named in ``head`` (a fresh classifier
            head over a pretrained backbone: `delta_keras.models.HEAD_LAYERS`).
        head: names of the model's top-level layers whose variables learn at ``head_rate``.

    Example:

    >>> optimizer = with_step_rate(keras.optimizers.Adam(1e-5), step_rate=1000.0)
    >>> type(optimizer).__name__, optimizer.step_rate
    ('StepRateAdam', 1000.0)
    """
    # The first standard class in the MRO: the torch backend swaps some classes for its own subclasses.
    public = next((c for c in type(optimizer).__mro__ if c in _TWINS), None)
    if public is None:
        raise ValueError(f"with_step_rate supports the Keras optimizers {sorted(_BASES)}, got {type(optimizer).__name__}")
    config = {k: v for k, v in optimizer.get_config().items() if k not in ("step_rate", "head_rate", "head")}
    return _TWINS[public].from_config({**config, "step_rate": step_rate, "head_rate": head_rate, "head": list(head)})
