"""Sparsity penalties and sparsity-weight schedules.

A *penalty* maps the tensor a sparsity layer penalises (temporal deltas for `DeltaActivation`,
activations for `ActivitySparsity`) to a scalar measured **per element** (per neuron and frame); the
layer then scales it by its normalisation, its `fan_out` and the scheduled sparsity weight.

A *schedule* maps the training step (an integer tensor) to the sparsity weight, so a weight can warm up
or change in steps. Both are serialised with the layer's config.
"""

from __future__ import annotations

import keras
from keras import ops

_EPSILON = 1e-12


class Penalty:
    """Base class: ``penalty(v)`` returns a float32 scalar measured per element of ``v``."""

    def __call__(self, v):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


@keras.saving.register_keras_serializable(package="delta_keras")
class L1(Penalty):
    """``mean(|v|)``: the paper's penalty. Pays for the size of every change, not only for its existence."""

    def __call__(self, v):
        return ops.mean(ops.abs(v))


@keras.saving.register_keras_serializable(package="delta_keras")
class HoyerSquare(Penalty):
    """Hoyer-square ``(sum|v|)^2 / sum(v^2) / size(v)``: a scale-free proxy of the nonzero fraction (L0).

    It equals the nonzero fraction exactly when all nonzero entries have the same magnitude, and unlike
    L1 it does not shrink the entries that stay nonzero (Yang et al., "DeepHoyer", ICLR 2020).
    """

    def __call__(self, v):
        l1 = ops.sum(ops.abs(v))
        l2 = ops.sum(ops.square(v))
        return ops.square(l1) / (l2 + _EPSILON) / ops.cast(ops.size(v), "float32")


@keras.saving.register_keras_serializable(package="delta_keras")
class TargetRate(Penalty):
    """``relu(mean|v| - target)^2``: pay only above a target rate (lava-dl's event-rate loss).

    Args:
        target: the rate below which nothing is paid, in the units of ``mean|v|`` (for a
            `DeltaActivation` with the default ``step_gradient="lsq"`` that is quantisation levels
            crossed per neuron and frame, an upper bound of the nonzero-delta fraction).
    """

    def __init__(self, target: float = 0.05):
        if target < 0:
            raise ValueError(f"TargetRate: target must be >= 0, got {target}")
        self.target = float(target)

    def __call__(self, v):
        return ops.square(ops.relu(ops.mean(ops.abs(v)) - self.target))

    def get_config(self) -> dict:
        return {"target": self.target}


_PENALTIES = {"l1": L1, "hoyer_square": HoyerSquare, "target_rate": TargetRate}


def get_penalty(identifier) -> Penalty:
    """Resolves ``"l1" | "hoyer_square" | "target_rate"``, a config dict or a `Penalty` instance."""
    if isinstance(identifier, Penalty):
        return identifier
    if isinstance(identifier, str) and identifier in _PENALTIES:
        return _PENALTIES[identifier]()
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    raise ValueError(f"penalty must be one of {sorted(_PENALTIES)} or a Penalty, got {identifier!r}")


class Schedule(keras.optimizers.schedules.LearningRateSchedule):
    """Base class: ``schedule(step)`` returns the float32 sparsity weight at an integer training step.

    A Keras `LearningRateSchedule` (the same contract: a function of the step, serialisable), so any of
    Keras' own schedules (``PiecewiseConstantDecay``, ``CosineDecay``, ``ExponentialDecay``...) serves as a
    sparsity weight too; these subclasses add the shapes a sparsity weight needs (a warm-up from zero).
    Subclasses define ``__call__`` and ``get_config``; ``from_config`` is Keras' (``cls(**config)``).
    """


@keras.saving.register_keras_serializable(package="delta_keras")
class Constant(Schedule):
    """The same weight at every step."""

    def __init__(self, weight: float):
        self.weight = float(weight)

    def __call__(self, step):
        return ops.convert_to_tensor(self.weight, "float32")

    def get_config(self) -> dict:
        return {"weight": self.weight}


@keras.saving.register_keras_serializable(package="delta_keras")
class LinearWarmup(Schedule):
    """0 until ``start_step``, then rises linearly to ``weight`` over ``warmup_steps`` steps."""

    def __init__(self, weight: float, warmup_steps: int, start_step: int = 0):
        if warmup_steps < 1:
            raise ValueError(f"LinearWarmup: warmup_steps must be >= 1, got {warmup_steps}")
        self.weight, self.warmup_steps, self.start_step = float(weight), int(warmup_steps), int(start_step)

    def __call__(self, step):
        progress = (ops.cast(step, "float32") - self.start_step) / self.warmup_steps
        return self.weight * ops.clip(progress, 0.0, 1.0)

    def get_config(self) -> dict:
        return {"weight": self.weight, "warmup_steps": self.warmup_steps, "start_step": self.start_step}


@keras.saving.register_keras_serializable(package="delta_keras")
class PiecewiseConstant(Schedule):
    """``values[i]`` for ``boundaries[i-1] <= step < boundaries[i]`` (a step schedule).

    Example: ``PiecewiseConstant([1000, 2000], [0.0, 1e-4, 1e-3])``.
    """

    def __init__(self, boundaries: list[int], values: list[float]):
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"PiecewiseConstant: need len(values) == len(boundaries) + 1, got {len(values)} values "
                f"for {len(boundaries)} boundaries"
            )
        if list(boundaries) != sorted(boundaries):
            raise ValueError(f"PiecewiseConstant: boundaries must increase, got {boundaries}")
        self.boundaries, self.values = [int(b) for b in boundaries], [float(v) for v in values]

    def __call__(self, step):
        step = ops.cast(step, "int32")  # (int64 is truncated, with a warning, on JAX)
        passed = ops.sum(ops.cast(ops.greater_equal(step, self.boundaries), "int32")) if self.boundaries else 0
        return ops.take(ops.convert_to_tensor(self.values, "float32"), passed)

    def get_config(self) -> dict:
        return {"boundaries": self.boundaries, "values": self.values}


def get_schedule(identifier) -> keras.optimizers.schedules.LearningRateSchedule:
    """Resolves a number (constant weight), a config dict, a `Schedule` or any Keras `LearningRateSchedule`."""
    if isinstance(identifier, keras.optimizers.schedules.LearningRateSchedule):
        return identifier
    if isinstance(identifier, (int, float)):
        return Constant(identifier)
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    raise ValueError(f"sparsity_weight must be a number, a Schedule or a keras LearningRateSchedule, got {identifier!r}")
