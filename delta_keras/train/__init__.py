"""Training runs from a config: builders, run folders with crash-safe checkpoints, evaluation, results.

The scripts in ``experiments/`` are thin wrappers around this package. `train` runs four named steps:
`prepare` (checks, seed, precision), `start_model` (new, initialised or resumed), `fit_epochs` (checkpoints,
non-finite stop, TensorBoard) and the evaluation of `single_device_model`, then writes ``results.json``:

>>> from delta_keras.train import TrainConfig, train
>>> results = train(TrainConfig(sparsity="delta", epochs=3, logdir="runs/delta"))  # doctest: +SKIP
>>> results["evaluation"]["video_accuracy"], results["macs"]["summary"]["zero_delta_reduction"]  # doctest: +SKIP
"""

from delta_keras.train.builders import (build_classifier, build_model, build_optimizer, init_from_checkpoint,
                                       transfer_weights)
from delta_keras.train.config import (ConfigError, DataConfig, ModelConfig, OptimizationConfig, RunConfig,
                                     SparsityConfig, TrainConfig, add_config_arguments, config_from_args)
from delta_keras.train.evaluation import evaluate_clips, mac_report
from delta_keras.train.loop import (check_run, evaluate_checkpoint, evaluate_model, fit_epochs, prepare,
                                   single_device_model, start_model, summary_table, train)
from delta_keras.train.run_folder import EpochCheckpoint, RunFolder

__all__ = [
    "ConfigError",
    "DataConfig",
    "EpochCheckpoint",
    "ModelConfig",
    "OptimizationConfig",
    "RunConfig",
    "RunFolder",
    "SparsityConfig",
    "TrainConfig",
    "add_config_arguments",
    "build_classifier",
    "build_model",
    "build_optimizer",
    "check_run",
    "config_from_args",
    "evaluate_checkpoint",
    "evaluate_clips",
    "evaluate_model",
    "fit_epochs",
    "init_from_checkpoint",
    "mac_report",
    "prepare",
    "single_device_model",
    "start_model",
    "summary_table",
    "train",
    "transfer_weights",
]
