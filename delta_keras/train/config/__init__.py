"""The settings of a training run, in parts: data, model, sparsity, optimisation and run.

Each part is a dataclass that owns its fields, the constants it validates against and its own checks;
`TrainConfig` is their union (flat, as the command line and every release's ``config.json`` have it) and
checks what crosses parts. The builders of `delta_keras.train.builders` each take the part they need.
"""

from delta_keras.train.config.data import DATASETS, READING_FIELDS, DataConfig
from delta_keras.train.config.model import ModelConfig
from delta_keras.train.config.optimization import LR_SCHEDULES, OPTIMIZERS, STRATEGIES, OptimizationConfig
from delta_keras.train.config.run import RunConfig
from delta_keras.train.config.setting import ConfigError
from delta_keras.train.config.sparsity import (DEFAULT_SPARSITY_WEIGHT, DELTA_DEFAULTS, DELTA_ONLY,
                                               SPARSITY_MODES, SPARSITY_SCHEDULES, SparsityConfig)
from delta_keras.train.config.train_config import PARTS, TrainConfig, add_config_arguments, config_from_args

__all__ = [
    "DATASETS",
    "DEFAULT_SPARSITY_WEIGHT",
    "DELTA_DEFAULTS",
    "DELTA_ONLY",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "PARTS",
    "READING_FIELDS",
    "SPARSITY_MODES",
    "SPARSITY_SCHEDULES",
    "STRATEGIES",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "OptimizationConfig",
    "RunConfig",
    "SparsityConfig",
    "TrainConfig",
    "add_config_arguments",
    "config_from_args",
]
