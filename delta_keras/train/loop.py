"""`train` and `evaluate_checkpoint`: whole runs from a `TrainConfig`, with resume and results."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import delta_keras
from delta_keras.callbacks import SparsityTensorBoard
from delta_keras.train import builders, distribute
from delta_keras.train.config import ConfigError, TrainConfig
from delta_keras.train.evaluation import evaluate_clips, mac_report
from delta_keras.train.run import EpochCheckpoint, RunFolder, write_json


def check_run(config: TrainConfig) -> None:
    """`TrainConfig.validate` plus the run folder's state: a new run must not overwrite checkpoints,
    and ``resume`` needs a checkpoint and the same settings as the interrupted run.

    Raises:
        ConfigError: before anything is built.
    """
    config.validate()
    run = RunFolder(config.logdir)
    if not config.resume:
        if run.last_checkpoint() is not None:
            raise ConfigError(f"--logdir {run.path} already holds checkpoints: pass --resume to continue that run, "
                              "or choose another --logdir")
        return
    if run.last_checkpoint() is None or not run.config_path.is_file():
        raise ConfigError(f"--resume: {run.path} holds no checkpoint to resume from")
    differences = config.differences(TrainConfig.from_dict(_saved_config(run)))
    if differences:
        raise ConfigError("--resume needs the settings of the interrupted run; these differ:\n  "
                          + "\n  ".join(differences))


def _saved_config(run: RunFolder) -> dict:
    return json.loads(run.config_path.read_text())["config"]


def versions() -> dict[str, str]:
    """Versions of the libraries a result depends on."""
    return {"delta_keras": delta_keras.__version__, "keras": keras.__version__, "tensorflow": tf.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def _set_precision(config: TrainConfig) -> None:
    if config.mixed_precision:
        # float16 needs a GPU to be fast; bfloat16 is the CPU's mixed type.
        keras.config.set_dtype_policy("mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16")


def _load_model(config: TrainConfig, checkpoint: Path | None = None) -> keras.Model:
    """The config's model, compiled, with the weights and optimiser state of ``checkpoint`` if given."""
    model = builders.build_model(config)
    builders.compile_model(model, builders.build_optimizer(config))
    if checkpoint is not None:
        model.optimizer.build(model.trainable_variables)  # so the checkpoint's optimiser state has a home
        model.load_weights(checkpoint)
    return model


def train(config: TrainConfig, command_line: list[str] | None = None, verbose: str | int = "auto") -> dict:
    """Trains (or resumes) the run a config describes, evaluates it and writes ``results.json``.

    The run folder (``config.logdir``) receives ``config.json``, a checkpoint after every epoch,
    TensorBoard events (Keras' own and `SparsityTensorBoard`'s) and ``results.json``. Under
    ``strategy="multiworker"`` the chief (worker 0) writes there; worker ``i`` keeps its checkpoints in
    ``<logdir>/workers/<i>``.

    Args:
        config: the settings; checked with `check_run` first.
        command_line: recorded in the results (default ``sys.argv``).
        verbose: Keras' progress-bar setting.

    Returns:
        The results (as written to ``results.json``).
    """
    started = time.time()
    check_run(config)
    keras.utils.set_random_seed(config.seed)
    _set_precision(config)
    strategy = distribute.build_strategy(config.strategy)
    index = distribute.worker_index()
    chief = index == 0
    run = RunFolder(config.logdir if chief else Path(config.logdir) / "workers" / str(index))
    last = RunFolder(config.logdir).last_checkpoint() if config.resume else None
    initial_epoch = last[1] if last else 0

    train_data = builders.train_dataset(config)
    validation_data = builders.validation_dataset(config)
    with strategy.scope():
        model = _load_model(config, last[0] if last else None)
        if config.init_from:
            builders.init_from_checkpoint(model, config.init_from)
    if distribute.is_multiworker(strategy):
        distribute.prepare_for_multiworker(model, strategy, next(iter(train_data)))
    if chief and not config.resume:
        write_json(run.config_path, {"config": config.to_dict(), "command_line": command_line or sys.argv})

    mac_clips = builders.mac_clips(config)
    callbacks = [EpochCheckpoint(run)]
    if chief:
        # MAC curves call the model outside the strategy: not under multiworker, where every call is collective.
        clips = None if distribute.is_multiworker(strategy) else mac_clips
        callbacks += [keras.callbacks.TensorBoard(os.fspath(run.path), write_graph=False),
                      SparsityTensorBoard(run.path, validation_clips=clips)]
    history = model.fit(
        train_data,
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=builders.epoch_steps(config),
        validation_data=validation_data,
        validation_steps=builders.validation_steps(config),
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the data sources shuffle; Keras cannot shuffle a tf.data.Dataset anyway
    )
    if not chief:
        return {}
    if config.strategy != "default":
        # Evaluate a single-device copy: evaluation and the simulator run plain calls, no collectives.
        evaluated = builders.build_model(config)
        evaluated.set_weights(model.get_weights())
    else:
        evaluated = model
    results = {
        "command_line": command_line or sys.argv,
        "config": config.to_dict(),
        "versions": versions(),
        "epochs_completed": config.epochs,
        "resumed_from_epoch": initial_epoch if config.resume else None,
        "optimizer_iterations": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        "final_logs": {k: float(v[-1]) for k, v in history.history.items()} if history.history else {},
        **evaluate_model(evaluated, config, mac_clips),
        "wall_time_s": time.time() - started,
    }
    write_json(run.results_path, results)
    return results


def evaluate_model(model: keras.Model, config: TrainConfig, mac_clips=None) -> dict:
    """``evaluation`` (clip/video accuracy, densities; see `evaluate_clips`) and ``macs`` (simulator
    report on ``mac_clips``, default: `builders.mac_clips`) of a model built from ``config``."""
    if mac_clips is None:
        mac_clips = builders.mac_clips(config)
    return {"evaluation": evaluate_clips(model, builders.evaluation_dataset(config)),
            "macs": mac_report(model, mac_clips)}


def evaluate_checkpoint(checkpoint: str | os.PathLike, **overrides) -> dict:
    """Evaluates a checkpoint as `train` evaluates a finished run.

    Args:
        checkpoint: a run folder (its last checkpoint) or a ``.keras`` checkpoint inside one; the
            run's ``config.json`` says how to build the data.
        **overrides: `TrainConfig` fields to change, e.g. ``eval_clips=10`` or ``data_dir=...``.

    Returns:
        ``checkpoint``, ``config``, ``versions``, ``evaluation``, ``macs``, ``wall_time_s``.
    """
    started = time.time()
    path = builders.checkpoint_path(checkpoint)
    run = RunFolder(path.parent.parent)
    if not run.config_path.is_file():
        raise ConfigError(f"{path}: not inside a run folder (no {run.config_path})")
    config = TrainConfig.from_dict({**_saved_config(run), **overrides, "resume": False, "init_from": None,
                                   "weights": "none"})  # the checkpoint holds the weights
    config.validate()
    model = keras.models.load_model(path, compile=False)
    return {"checkpoint": os.fspath(path), "config": config.to_dict(), "versions": versions(),
            **evaluate_model(model, config), "wall_time_s": time.time() - started}


def summary_table(results: dict) -> str:
    """A short, readable table of a run's results."""
    evaluation, macs = results["evaluation"], results["macs"]["summary"]
    density = evaluation["density"]
    rows = [
        ("clip accuracy", f"{evaluation['clip_accuracy']:.3f}  ({evaluation['clips']} clips)"),
        ("video accuracy", f"{evaluation['video_accuracy']:.3f}  ({evaluation['videos']} videos)"),
        ("temporal density, sparsity layers", f"{density['delta_density']:.3f}" if density else "n/a (none)"),
        ("spatial density, sparsity layers", f"{density['activation_density']:.3f}" if density else "n/a (none)"),
        ("temporal density, MAC-layer inputs", f"{macs['input_delta_density']:.3f}"),
        ("MAC reduction, zero_activation", f"{macs['zero_activation_reduction']:.2f}x"),
        ("MAC reduction, zero_delta", f"{macs['zero_delta_reduction']:.2f}x"),
        ("wall time", f"{results['wall_time_s']:.0f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
