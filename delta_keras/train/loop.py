"""`train` and `evaluate_checkpoint`: whole runs from a `TrainConfig`, with resume and results."""

from __future__ import annotations

import dataclasses
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
from delta_keras.files import UnsafeWriteError, check_replaceable, is_generated_json, write_json
from delta_keras.models.distiller import deployed_model
from delta_keras.train import builders, distribute
from delta_keras.train.config import ConfigError, TrainConfig
from delta_keras.train.evaluation import evaluate_clips, mac_report, result_warnings
from delta_keras.train.run_folder import Checkpoint, EpochCheckpoint, RunFolder, StopOnNonFiniteLoss, load_model_from


def check_run(config: TrainConfig) -> None:
    """`TrainConfig.validate` plus the run folder's state: a new run must not overwrite checkpoints,
    and ``resume`` needs a checkpoint and the same settings as the interrupted run.

    Raises:
        ConfigError: before anything is built.
    """
    config.validate()
    run = RunFolder(config.logdir)
    # Every file the run will replace, checked now: not after hours of training.
    for path in (run.config_path, run.results_path):
        try:
            check_replaceable(path, is_generated_json)
        except UnsafeWriteError as error:
            raise ConfigError(f"--logdir {run.path}: {path.name} exists and was not written by delta_keras; "
                              "refusing to overwrite it (choose another --logdir or move that file away)") from error
    if not config.resume:
        if run.last_checkpoint() is not None:
            raise ConfigError(f"--logdir {run.path} already holds checkpoints: pass --resume to continue that run, "
                              "or choose another --logdir")
        return
    if run.last_checkpoint() is None or not run.config_path.is_file():
        raise ConfigError(f"--resume: {run.path} holds no checkpoint to resume from")
    differences = config.differences(_saved_config(run))
    if differences:
        raise ConfigError("--resume needs the settings of the interrupted run; these differ: " + "; ".join(differences))


def _saved_config(run: RunFolder) -> TrainConfig:
    """The settings a run folder's ``config.json`` records.

    Raises:
        ConfigError: the file is not a run's ``config.json`` (names it and why).
    """
    try:
        saved = json.loads(run.config_path.read_text())["config"]
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{run.config_path}: not the config.json of a delta_keras run (no valid \"config\" entry)") from error
    if not isinstance(saved, dict):
        raise ConfigError(f"{run.config_path}: its \"config\" entry is not a mapping of settings")
    return TrainConfig.from_dict(saved)


def versions() -> dict[str, str]:
    """Versions of the libraries a result depends on."""
    return {"delta_keras": delta_keras.__version__, "keras": keras.__version__, "tensorflow": tf.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def _set_precision(config: TrainConfig) -> None:
    if config.mixed_precision:
        # float16 needs a GPU to be fast; bfloat16 is the CPU's mixed type.
        keras.config.set_dtype_policy("mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16")


def _resumed_model(config: TrainConfig, run: RunFolder) -> tuple[Checkpoint, keras.Model]:
    """The config's model with the weights and optimiser state of the newest checkpoint that loads."""

    def load(path: Path) -> keras.Model:
        model = builders.compiled_model(config)
        model.optimizer.build(model.trainable_variables)  # so the checkpoint's optimiser state has a home
        model.load_weights(path)
        return model

    return run.load_newest(load)


def train(config: TrainConfig, command_line: list[str] | None = None, verbose: str | int = "auto") -> dict:
    """Trains (or resumes) the run a config describes, evaluates it and writes ``results.json``.

    The run folder (``config.logdir``) receives ``config.json``, a checkpoint after every epoch (and every
    ``checkpoint_every_steps`` steps), TensorBoard events (Keras' own and `SparsityTensorBoard`'s) and
    ``results.json``. Under ``strategy="multiworker"`` the chief (worker 0) writes there; worker ``i``
    keeps its checkpoints in ``<logdir>/workers/<i>``.

    Resuming (``config.resume``) continues from the newest checkpoint that loads, mid-epoch too; a run
    whose checkpoints already cover ``config.epochs`` is not trained again: its ``results.json`` is
    returned untouched (or written, if the run was killed before writing it).

    Args:
        config: the settings; checked with `check_run` first.
        command_line: recorded in the results (default ``sys.argv``).
        verbose: Keras' progress-bar setting.

    Returns:
        The results (as written to ``results.json``).

    Raises:
        ConfigError: bad settings, or fewer usable training videos than a batch.
        NonFiniteLossError: the training loss became NaN or infinite (the last good checkpoint stays).
    """
    started = time.time()
    prepare(config)
    strategy = distribute.build_strategy(config.strategy)
    index = distribute.worker_index()
    chief = index == 0
    run = RunFolder(config.logdir if chief else Path(config.logdir) / "workers" / str(index))
    run.remove_stale_temporaries()
    with strategy.scope():
        last, model = start_model(config)
    if last and chief:
        print(resume_message(last, builders.epoch_steps(config)))
    finished = (last.epoch if last else 0) >= config.epochs
    if finished and chief and run.results_path.is_file():
        print(f"{run.path}: already trained for {last.epoch} epoch(s) (--epochs {config.epochs}); nothing to do, "
              f"{run.results_path} left as it is")
        return json.loads(run.results_path.read_text())
    if chief and not config.resume:
        write_json(run.config_path, {"config": config.to_dict(), "command_line": command_line or sys.argv})
    mac_clips = builders.mac_clips(config)
    history = {} if finished else fit_epochs(model, config, run, strategy, last, chief, mac_clips, verbose)
    if not chief:
        return {}
    results = {
        "command_line": command_line or sys.argv,
        "config": config.to_dict(),
        "versions": versions(),
        "epochs_completed": max(config.epochs, last.epoch if last else 0),
        "resumed_from": {"epoch": last.epoch, "step": last.step, "checkpoint": os.fspath(last.path)} if last else None,
        "optimizer_iterations": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        "final_logs": {k: float(v[-1]) for k, v in history.items()},
        **evaluate_model(single_device_model(model, config), config, mac_clips),
        "data": builders.data_summary(config),
        "wall_time_s": time.time() - started,
    }
    write_json(run.results_path, results)
    return results


def resume_message(last: Checkpoint, steps_per_epoch: int) -> str:
    """What a resumed run starts from, and what the interrupted run did after it (lost and redone)."""
    written = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last.path.stat().st_mtime))
    where = f"epoch {last.epoch + 1}, step {last.step} of {steps_per_epoch}" if last.step else f"the end of epoch {last.epoch}"
    return (f"resuming from {last.path} ({where}; optimizer step {last.epoch * steps_per_epoch + last.step}, "
            f"saved {written}): training the interrupted run did after that time is redone")


def prepare(config: TrainConfig) -> None:
    """Step 1 of `train`: checks the settings and the run folder, the training videos, and sets the decoding
    threads, the random seed and the precision policy.

    Raises:
        ConfigError: before anything is built.
    """
    check_run(config)
    builders.configure_decoding(config)
    builders.check_training_videos(config)
    keras.utils.set_random_seed(config.seed)
    _set_precision(config)


def start_model(config: TrainConfig) -> tuple[Checkpoint | None, keras.Model]:
    """Step 2 of `train` (inside the strategy's scope): the compiled model, from the newest checkpoint that
    loads when resuming (with that checkpoint), else new, with ``--init-from``'s weights or, when
    distilling, the teacher's as the student's start (and no checkpoint)."""
    if config.resume:
        return _resumed_model(config, RunFolder(config.logdir))
    model = builders.compiled_model(config)
    if config.init_from:
        builders.init_from_checkpoint(model, config.init_from)
    if config.distill_from:
        builders.transfer_weights(model.teacher, model.student)  # the student starts as the teacher
    return None, model


def fit_epochs(model: keras.Model, config: TrainConfig, run: RunFolder, strategy, last: Checkpoint | None,
               chief: bool, mac_clips, verbose: str | int = "auto") -> dict:
    """Step 3 of `train`: fits the remaining epochs (a run killed mid-epoch first finishes that epoch's
    remaining steps), with checkpoints, the non-finite-loss stop and, on the chief, TensorBoard logs (MAC
    curves on ``mac_clips``). Returns Keras' history."""
    steps_per_epoch = builders.epoch_steps(config)
    train_data = builders.train_dataset(config)
    if distribute.is_multiworker(strategy):
        distribute.prepare_for_multiworker(model, strategy, next(iter(train_data)))
    callbacks = [StopOnNonFiniteLoss(run),  # first: nothing after it sees a diverged step
                 EpochCheckpoint(run, every_steps=config.checkpoint_every_steps, steps_per_epoch=steps_per_epoch,
                                 every_minutes=config.checkpoint_every_minutes or None)]
    if chief:
        # MAC curves call the model outside the strategy: not under multiworker, where every call is collective.
        clips = None if distribute.is_multiworker(strategy) else mac_clips
        # SparsityTensorBoard first: it adds the whole model's delta and activation densities to the epoch's
        # logs, which Keras' TensorBoard then writes as epoch_delta_density curves beside the loss.
        callbacks += [SparsityTensorBoard(run.path, validation_clips=clips),
                      keras.callbacks.TensorBoard(os.fspath(run.path), write_graph=False)]
    fit = dict(x=train_data, validation_data=builders.validation_dataset(config),
               validation_steps=builders.validation_steps(config), callbacks=callbacks, verbose=verbose,
               shuffle=False)  # the data sources shuffle; Keras cannot shuffle a tf.data.Dataset anyway
    return fit_resumed(model, last, config.epochs, steps_per_epoch, **fit)


def fit_resumed(model: keras.Model, last: Checkpoint | None, epochs: int, steps_per_epoch: int, **fit) -> dict:
    """``model.fit(**fit)`` up to ``epochs`` from where checkpoint ``last`` stopped (``None``: from the start).
    A run killed mid-epoch first finishes that epoch's remaining steps; the schedules follow the optimiser's
    step count, so they continue where they stopped. Returns Keras' history."""
    initial_epoch, initial_step = (last.epoch, last.step) if last else (0, 0)
    history = {}
    if initial_step:
        history.update(model.fit(epochs=initial_epoch + 1, initial_epoch=initial_epoch,
                                 steps_per_epoch=steps_per_epoch - initial_step, **fit).history)
        initial_epoch += 1
    if initial_epoch < epochs:
        history.update(model.fit(epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
                                 **fit).history)
    return history


def single_device_model(model: keras.Model, config: TrainConfig) -> keras.Model:
    """Step 4 of `train`: the model evaluation and the simulator run: a `Distiller`'s student, and under a
    distribution strategy a single-device copy (their plain calls would otherwise need collectives)."""
    trained = deployed_model(model)
    if config.strategy == "default":
        return trained
    evaluated = builders.build_model(config)
    evaluated.set_weights(trained.get_weights())
    return evaluated


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
        checkpoint: a run folder (its newest checkpoint that loads) or a ``.keras`` checkpoint inside one; the
            run's ``config.json`` says how to build the data.
        **overrides: `TrainConfig` fields to change, e.g. ``eval_clips=10`` or ``data_dir=...``.

    Returns:
        ``checkpoint``, ``config``, ``versions``, ``evaluation``, ``macs``, ``wall_time_s``.
    """
    started = time.time()
    path, model = load_model_from(checkpoint)
    run = RunFolder(path.parent.parent)
    if not run.config_path.is_file():
        raise ConfigError(f"{path}: not inside a run folder (no {run.config_path})")
    config = dataclasses.replace(_saved_config(run), **overrides, resume=False, init_from=None,
                                 weights="none")  # the checkpoint holds the weights
    config.validate()
    builders.configure_decoding(config)
    return {"checkpoint": os.fspath(path), "config": config.to_dict(), "versions": versions(),
            **evaluate_model(model, config), "data": builders.data_summary(config), "wall_time_s": time.time() - started}


def _skipped(results: dict) -> str:
    skipped = results.get("data", {}).get("skipped", {})
    return f"{len(skipped)}" + "".join(f"\n    {path}: {reason}" for path, reason in skipped.items())


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
        ("skipped videos", _skipped(results)),
        ("wall time", f"{results['wall_time_s']:.0f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join([f"{name:<{width}}  {value}" for name, value in rows]
                     + [f"warning: {line}" for line in result_warnings(results)])
