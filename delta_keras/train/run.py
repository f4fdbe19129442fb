"""The run folder: config, checkpoints, TensorBoard events and results of one training run.

Layout::

    <run>/config.json            the TrainConfig, the command line
    <run>/checkpoints/epoch-0003.keras   full models (weights + optimiser state), the last `keep`
    <run>/train/, <run>/validation/      TensorBoard events
    <run>/results.json           accuracy, densities, MAC report, versions, wall time

Every file is written to a temporary name in its folder and then moved into place with
``os.replace`` (atomic on POSIX and Windows), so a run killed at any moment leaves the previous
complete file intact and never a half-written one under the final name.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Callable

import keras

_CHECKPOINT = re.compile(r"^epoch-(\d+)\.keras$")


def atomic_save(path: str | os.PathLike, save: Callable[[Path], None]) -> Path:
    """Calls ``save(temporary_path)`` and then moves the result to ``path`` atomically.

    The temporary file lives in the same folder (``os.replace`` is atomic only within a file system)
    and keeps ``path``'s suffix, since Keras picks the format from it.

    Returns:
        ``path`` as a `Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        save(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def write_json(path: str | os.PathLike, value: object) -> Path:
    """Writes ``value`` as indented JSON, atomically."""
    text = json.dumps(value, indent=2, sort_keys=False, default=str) + "\n"
    return atomic_save(path, lambda temporary: temporary.write_text(text))


class RunFolder:
    """Paths and checkpoints of one run.

    Args:
        path: the run folder (created on first write).

    Example:

    >>> run = RunFolder("runs/dense")
    >>> last = run.last_checkpoint()   # (path, epoch) or None
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

    def checkpoint_path(self, epoch: int) -> Path:
        """Checkpoint written after ``epoch`` completed epochs."""
        return self.checkpoint_dir / f"epoch-{epoch:04d}.keras"

    def checkpoints(self) -> list[tuple[Path, int]]:
        """Complete checkpoints as ``(path, epochs completed)``, oldest first (temporary files ignored)."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = [(p, int(m.group(1))) for p in self.checkpoint_dir.iterdir() if (m := _CHECKPOINT.match(p.name))]
        return sorted(found, key=lambda item: item[1])

    def last_checkpoint(self) -> tuple[Path, int] | None:
        """The newest complete checkpoint as ``(path, epochs completed)``, or ``None``."""
        found = self.checkpoints()
        return found[-1] if found else None

    def save_checkpoint(self, model: keras.Model, epoch: int, keep: int = 2) -> Path:
        """Saves the full model (with its optimiser state) after ``epoch`` epochs; keeps the last ``keep``."""
        path = atomic_save(self.checkpoint_path(epoch), model.save)
        # Delete old ones only once the new one is in place.
        for old, _ in self.checkpoints()[:-keep]:
            old.unlink(missing_ok=True)
        return path


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the full model into a `RunFolder` at the end of every epoch, crash-safely.

    Why a full ``.keras`` model rather than `keras.callbacks.BackupAndRestore`: the ``.keras`` archive
    holds the architecture, the weights (including each sparsity layer's ``training_step``) and the
    optimiser state (``iterations``, which drives the learning-rate schedule, and momenta), so it is
    both the resume point and a model anyone can `keras.models.load_model`. BackupAndRestore writes
    in place (a kill mid-write corrupts it) and deletes its backup when training ends.

    Args:
        run: the run folder (or its path).
        keep: how many of the newest checkpoints to keep.
    """

    def __init__(self, run: RunFolder | str | os.PathLike, keep: int = 2):
        super().__init__()
        self.run = run if isinstance(run, RunFolder) else RunFolder(run)
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        self.run.save_checkpoint(self.model, epoch + 1, self.keep)
