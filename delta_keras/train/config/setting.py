"""What every part of a training config shares: its error, how a setting is declared, and common checks."""

from __future__ import annotations

import dataclasses
import math


class ConfigError(ValueError):
    """A setting, or a combination of settings, that cannot work; the message says which and why."""


def setting(default, help: str, **argparse_kwargs):
    """A config field: its default, its ``--help`` line and any `argparse` options its flag needs."""
    return dataclasses.field(default=default, metadata={"help": help, "argparse": argparse_kwargs})


def flag(name: str) -> str:
    """The command-line flag of a field, without its dashes: ``frame_stride`` -> ``frame-stride``."""
    return name.replace("_", "-")


def check_finite(config, part: type) -> None:
    """Raises `ConfigError` for a NaN or infinite float among ``config``'s fields of the class ``part``."""
    for field in dataclasses.fields(part):
        value = getattr(config, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"--{flag(field.name)} must be a finite number, got {value}")


def check_at_least_one(config, names: tuple[str, ...]) -> None:
    """Raises `ConfigError` when one of ``names`` is below 1 (``None``, an unset optional count, passes)."""
    for name in names:
        value = getattr(config, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{flag(name)} must be >= 1, got {value}")
