"""`TrainConfig`: every setting of a training run, the union of its parts, with its file and command-line forms."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import TypeVar

from delta_keras.train.config.data import READING_FIELDS, DataConfig
from delta_keras.train.config.model import ModelConfig
from delta_keras.train.config.optimization import OptimizationConfig
from delta_keras.train.config.run import RunConfig
from delta_keras.train.config.setting import ConfigError, flag
from delta_keras.train.config.sparsity import SparsityConfig

# In the order of the command line's help and of config.json.
PARTS = (DataConfig, ModelConfig, SparsityConfig, OptimizationConfig, RunConfig)
Part = TypeVar("Part", DataConfig, ModelConfig, SparsityConfig, OptimizationConfig, RunConfig)
PATH_FIELDS = ("data_dir", "unlabelled_dir", "cache_dir", "init_from", "weights", "logdir", "distill_from")


# Dataclass fields come from the bases in reverse order: data first, as in PARTS.
@dataclasses.dataclass
class TrainConfig(*reversed(PARTS)):
    """Settings of one training run (see ``python experiments/ucf101_train.py --help``): the fields of its parts
    `DataConfig`, `ModelConfig`, `SparsityConfig`, `OptimizationConfig` and `RunConfig`, flat.

    The config is the single source of truth of a run: the command line is generated from its fields, it is
    saved as ``config.json`` in the run folder, and ``--resume`` and `evaluate_run` rebuild the model and data
    from it. A builder takes the part it needs (``part(DataConfig)``, or the config itself, which is every part).
    Fields left at ``None`` take a default that depends on other fields (see `resolved`). `validate` checks each
    part and the combinations across parts, including that the dataset and files named exist, so a bad run
    fails before it builds anything.

    Example:

    >>> config = TrainConfig(dataset="synthetic", backbone="tiny", sparsity="delta", epochs=2)
    >>> config.validate()
    >>> config.part(ModelConfig)
    ModelConfig(backbone='tiny', alpha=1.0, motion=False, weights='none', blocks=5, frozen_blocks=0, head='average', dropout=0.5)
    """

    def part(self, kind: type[Part]) -> Part:
        """This config's settings of one part, as an instance of that part alone."""
        return kind(**{field.name: getattr(self, field.name) for field in dataclasses.fields(kind)})

    # ---------------------------------------------------------------- checks
    def validate(self) -> None:
        """Checks every part, then the combinations across parts.

        Raises:
            ConfigError: with a message naming the flags involved.
        """
        for kind in PARTS:
            kind.validate(self)
        if self.distill_from is None:
            if self.unlabelled_dir is not None:
                raise ConfigError("--unlabelled-dir: only with --distill-from")
            return
        if self.sparsity == "none":
            raise ConfigError("--distill-from refines a sparse student: give --sparsity delta or l1")
        if self.init_from:
            raise ConfigError("--distill-from already starts from the teacher's weights: drop --init-from")
        if self.unlabelled_dir is not None and self.label_weight:
            raise ConfigError("--label-weight needs labels, and --unlabelled-dir has none")

    # ---------------------------------------------------------------- files
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """The config of a flat mapping of settings, as `to_dict` and every release's ``config.json`` hold it."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config entries: {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def differences(self, other: "TrainConfig",
                    ignore: tuple[str, ...] = ("resume", "epochs", "logdir", "checkpoint_every_steps",
                                               "checkpoint_every_minutes", "init_from",
                                               "eval_videos_per_class", *READING_FIELDS)) -> list[str]:
        """Flags whose values differ from ``other``'s (``--name: mine != theirs``), except ``ignore``.

        Paths are compared resolved (``runs/a``, ``./runs/a/`` and its absolute form are the same); the run
        folder itself is ignored by default, since a run may be resumed from wherever it was moved, and so is
        ``init_from``, which only the run's start used, and the settings of how data is read and checked
        (`READING_FIELDS`) and of the final evaluation's size.
        """
        return [
            f"--{flag(f.name)}: {getattr(self, f.name)!r} != {getattr(other, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.name not in ignore and _comparable(f.name, getattr(self, f.name)) != _comparable(f.name, getattr(other, f.name))
        ]


def _comparable(name: str, value):
    if name in PATH_FIELDS and isinstance(value, str) and value not in ("none", "imagenet"):
        return os.path.realpath(os.path.expanduser(value))
    return value


# -------------------------------------------------------------------- command line
def add_config_arguments(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """Adds one ``--flag`` per `TrainConfig` field to ``parser``, in one group per part, with the field's help.

    Args:
        parser: the parser to extend.
        exclude: field names not to add.
    """
    for kind in PARTS:
        group = parser.add_argument_group(kind.GROUP)
        for field in dataclasses.fields(kind):
            if field.name in exclude:
                continue
            kwargs = dict(field.metadata["argparse"])
            if kwargs.get("action") != "store_true" and "type" not in kwargs:
                kwargs["type"] = _field_type(field)
                if "choices" not in kwargs:
                    kwargs.setdefault("metavar", {int: "N", float: "X"}.get(kwargs["type"], "PATH"))
            default = "" if field.default is None or field.default is False else f" (default: {field.default})"
            group.add_argument(f"--{flag(field.name)}", dest=field.name, default=field.default,
                               help=field.metadata["help"] + default, **kwargs)


def _field_type(field: dataclasses.Field):
    annotation = str(field.type)
    return int if annotation.startswith("int") else float if annotation.startswith("float") else str


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The `TrainConfig` of parsed arguments (extra attributes of ``args`` are ignored)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
