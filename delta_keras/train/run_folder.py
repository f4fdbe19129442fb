"""The run folder: config, checkpoints, TensorBoard events and results of one training run.

Layout::

    <run>/config.json                          the TrainConfig, the command line
    <run>/checkpoints/epoch-0003.keras          full model (weights + optimiser state) after 3 epochs
    <run>/checkpoints/epoch-0003-step-000050.keras   ... after 3 epochs and 50 steps of the 4th
    <run>/train/, <run>/validation/             TensorBoard events
    <run>/results.json                          accuracy, densities, MAC report, versions, wall time

Every file is written through `delta_keras.files.atomic_save`, so a run killed at any moment leaves the
previous complete file intact and never a half-written one under the final name; the temporary files
of a killed run are removed when the next run on the folder starts (`RunFolder.remove_stale_temporaries`).
A checkpoint that does not load (truncated, zero bytes, bad archive) is skipped with a warning naming it,
and the newest one that loads is used instead (`RunFolder.load_newest`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import time
import warnings
import zipfile
from pathlib import Path
from typing import Callable, TypeVar

import keras

from delta_keras import files
from delta_keras.models.distiller import deployed_model

_CHECKPOINT = re.compile(r"^epoch-(\d+)(?:-step-(\d+))?\.keras$")
T = TypeVar("T")


class CorruptCheckpointError(ValueError):
    """A checkpoint file that cannot be loaded; the message names the file and why."""


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the message says at which epoch and step."""

    def __init__(self, epoch: int, step: int, iteration: int, value: float, last: "Checkpoint | None" = None):
        self.epoch, self.step, self.iteration, self.value, self.last = epoch, step, iteration, value, last
        kept = (f"the last checkpoint before it, {last.path}, is intact" if last
                else "no checkpoint had been written before it")
        super().__init__(f"the training loss became {value} at epoch {epoch}, step {step} (optimizer step "
                         f"{iteration}); training stopped, {kept}")


@dataclasses.dataclass(frozen=True, order=True)
class Checkpoint:
    """A checkpoint file: the model after ``epoch`` complete epochs and ``step`` steps of the next."""

    epoch: int
    step: int
    path: Path = dataclasses.field(compare=False)


def load_checkpoint(path: str | os.PathLike, load: Callable[[Path], T] | None = None) -> T:
    """``load(path)`` (default: `keras.models.load_model` without compiling), with any failure to read the
    file turned into a `CorruptCheckpointError` that names it.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CorruptCheckpointError: it exists but does not load.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    load = load or (lambda p: keras.models.load_model(p, compile=False))
    size = path.stat().st_size
    if path.suffix not in (".keras", ".h5"):
        raise CorruptCheckpointError(f"{path}: not a model file (expected a .keras archive saved by Keras 3)")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        # Keras itself would say "File not found" here, which sends the user looking in the wrong place.
        raise CorruptCheckpointError(f"{path}: corrupt checkpoint ({size} bytes; not a .keras zip archive)")
    try:
        return load(path)
    except Exception as error:  # noqa: BLE001 (zip, HDF5 and Keras errors alike mean: this file is damaged)
        raise CorruptCheckpointError(f"{path}: corrupt checkpoint ({size} bytes; {type(error).__name__}: "
                                     f"{str(error).splitlines()[0] if str(error) else 'no detail'})") from error


def load_model_from(path: str | os.PathLike) -> tuple[Path, keras.Model]:
    """Loads a ``.keras`` checkpoint, or a run folder's newest checkpoint that loads.

    Returns:
        ``(checkpoint file, model)`` (uncompiled); of a distillation run's checkpoint (a `Distiller`), the student.
    """
    path = Path(path)
    if path.is_dir():
        checkpoint, model = RunFolder(path).load_newest()
        path = checkpoint.path
    else:
        model = load_checkpoint(path)
    return path, deployed_model(model)


class RunFolder:
    """Paths and checkpoints of one run.

    Args:
        path: the run folder (created on first write).

    Example:

    >>> run = RunFolder("runs/dense")
    >>> last = run.last_checkpoint()   # a Checkpoint (epoch, step, path) or None
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def results_path(self) -> Path:
        return self.path / "results.json"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint_path(self, epoch: int, step: int = 0) -> Path:
        """Checkpoint written after ``epoch`` completed epochs and ``step`` steps of the next one."""
        return self.checkpoint_dir / (f"epoch-{epoch:04d}.keras" if not step else f"epoch-{epoch:04d}-step-{step:06d}.keras")

    def checkpoints(self) -> list[Checkpoint]:
        """Complete checkpoints, oldest first (temporary files ignored)."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = [Checkpoint(int(m.group(1)), int(m.group(2) or 0), p)
                 for p in self.checkpoint_dir.iterdir() if (m := _CHECKPOINT.match(p.name))]
        return sorted(found)

    def last_checkpoint(self) -> Checkpoint | None:
        """The newest complete checkpoint, or ``None`` (it may still be damaged: see `load_newest`)."""
        found = self.checkpoints()
        return found[-1] if found else None

    def load_newest(self, load: Callable[[Path], T] | None = None) -> tuple[Checkpoint, T]:
        """``load`` (default as `load_checkpoint`'s) applied to the newest checkpoint that loads; each one
        skipped is warned about by name.

        Raises:
            FileNotFoundError: the run has no checkpoint.
            CorruptCheckpointError: none of them loads (the message lists them).
        """
        found = self.checkpoints()
        if not found:
            raise FileNotFoundError(f"{self.path}: no checkpoint in this run folder")
        problems = []
        for checkpoint in reversed(found):
            try:
                return checkpoint, load_checkpoint(checkpoint.path, load)
            except CorruptCheckpointError as error:
                warnings.warn(f"skipping {error}; trying the previous checkpoint", stacklevel=2)
                problems.append(str(error))
        raise CorruptCheckpointError(f"{self.path}: no checkpoint loads:\n  " + "\n  ".join(problems))

    def remove_stale_temporaries(self) -> list[Path]:
        """Deletes what a killed run left half-written here (see `delta_keras.files.remove_stale_temporaries`)."""
        return [*files.remove_stale_temporaries(self.path), *files.remove_stale_temporaries(self.checkpoint_dir)]

    def save_checkpoint(self, model: keras.Model, epoch: int, keep: int = 2, step: int = 0) -> Path:
        """Saves the full model (with its optimiser state); keeps the newest ``keep`` checkpoints."""
        path = files.atomic_save(self.checkpoint_path(epoch, step), model.save)
        # Delete old ones only once the new one is in place.
        for old in self.checkpoints()[:-keep]:
            old.path.unlink(missing_ok=True)
        return path


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the full model into a `RunFolder` at the end of every epoch and, with ``every_steps``, every
    ``every_steps`` optimiser steps within an epoch, crash-safely.

    Why a full ``.keras`` model rather than `keras.callbacks.BackupAndRestore`: the ``.keras`` archive
    holds the architecture, the weights (including each sparsity layer's ``training_step``) and the
    optimiser state (``iterations``, which drives the learning-rate schedule, and momenta), so it is
    both the resume point and a model anyone can `keras.models.load_model`. BackupAndRestore writes
    in place (a kill mid-write corrupts it) and deletes its backup when training ends.

    Args:
        run: the run folder (or its path).
        keep: how many of the newest checkpoints to keep.
        every_steps: also save every this many optimiser steps (``None``: at epoch ends only).
        steps_per_epoch: the run's epoch length, to name a mid-epoch checkpoint by epoch and step.
        every_minutes: also save at the first step after this many minutes of training since the last save
            (``None``: no time bound), so a killed run loses minutes, not an epoch, whatever the epoch's length.
    """

    def __init__(self, run: RunFolder | str | os.PathLike, keep: int = 2, every_steps: int | None = None,
                 steps_per_epoch: int | None = None, every_minutes: float | None = None):
        super().__init__()
        if (every_steps is not None or every_minutes is not None) and not steps_per_epoch:
            raise ValueError("every_steps and every_minutes need steps_per_epoch")
        if (every_steps is not None and every_steps < 1) or (every_minutes is not None and not every_minutes > 0):
            raise ValueError(f"need every_steps >= 1 and every_minutes > 0, got {every_steps} and {every_minutes}")
        self.run = run if isinstance(run, RunFolder) else RunFolder(run)
        self.keep = keep
        self.every_steps = every_steps
        self.every_seconds = every_minutes * 60 if every_minutes is not None else None
        self.steps_per_epoch = steps_per_epoch
        self._saved_at = time.monotonic()

    def on_train_begin(self, logs=None):
        self._saved_at = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if not (self.every_steps or self.every_seconds):
            return
        iteration = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        epoch, step = divmod(iteration, self.steps_per_epoch)
        due = (self.every_steps and iteration % self.every_steps == 0) or (
            self.every_seconds is not None and time.monotonic() - self._saved_at >= self.every_seconds)
        if step and due:  # a step at an epoch's end is saved by on_epoch_end
            self._save(epoch, step)

    def on_epoch_end(self, epoch, logs=None):
        self._save(epoch + 1, 0)

    def _save(self, epoch: int, step: int) -> None:
        self.run.save_checkpoint(self.model, epoch, self.keep, step)
        self._saved_at = time.monotonic()


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` as soon as a training batch's loss is NaN or infinite.

    Unlike `keras.callbacks.TerminateOnNaN`, which ends ``fit`` normally, it raises: a caller cannot
    mistake a diverged run for a finished one, and callbacks after it in the list (checkpoints) never
    save the broken weights. Put it first.

    Args:
        run: the run folder whose checkpoints the error names (the last one before the failure), if any.
    """

    def __init__(self, run: RunFolder | None = None):
        super().__init__()
        self.run = run
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(keras.ops.convert_to_numpy(loss))):
            iteration = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            last = self.run.last_checkpoint() if self.run else None
            raise NonFiniteLossError(self.epoch + 1, batch + 1, iteration, float(keras.ops.convert_to_numpy(loss)), last)
