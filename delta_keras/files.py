"""Every file the package writes goes through here: atomic, strict JSON, and never over a user's file.

Rules (docs/CONTRACTS.md):

- A file is written to a temporary name in its folder (``.tmp-<pid>-<random>-<name>``) and moved into
  place with ``os.replace``, so a kill leaves the previous complete file, never a half-written one.
  `remove_stale_temporaries` deletes such leftovers of dead processes, and nothing else.
- JSON is strict (no bare ``NaN``/``Infinity``): non-finite numbers are written as ``null`` and listed,
  with what they were, under ``"null_values"``. Every JSON object the package writes carries
  ``"generator": "delta_keras"``; `write_json` replaces an existing file only if it carries that mark.
- A folder the package fills and may later clear is claimed with a marker file (`claim_folder`); a
  non-empty folder without the marker is refused, and only the entries the package made are removed.

Standard library only: importable without Keras or TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Callable, Iterable

GENERATOR = "delta_keras"
_TEMPORARY = re.compile(r"^\.tmp-(\d+)-[0-9a-f]{8}-.+$")


class UnsafeWriteError(FileExistsError):
    """Writing would overwrite or delete a file the package did not create; the message names it."""


def atomic_save(path: str | os.PathLike, save: Callable[[Path], None]) -> Path:
    """Calls ``save(temporary_path)``, then moves the result to ``path`` atomically.

    The temporary file lives in the same folder (``os.replace`` is atomic only within a file system)
    and ends with ``path``'s name, so libraries that pick a format from the suffix (Keras, NumPy) see it.

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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Deletes the temporary files `atomic_save` left in ``folder`` when its process was killed.

    Only names of the form ``.tmp-<pid>-<8 hex>-<name>`` whose process no longer runs are removed.

    Returns:
        The files removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        match = _TEMPORARY.match(path.name)
        if match and path.is_file() and (int(match.group(1)) == os.getpid() or not _pid_alive(int(match.group(1)))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def json_safe(value: object, where: str = "", nulls: dict | None = None) -> object:
    """``value`` with every non-finite float replaced by ``None``; ``nulls`` collects ``{path: "nan"}``."""
    if isinstance(value, float) and not math.isfinite(value):
        if nulls is not None:
            nulls[where or "."] = repr(value)
        return None
    if isinstance(value, dict):
        return {k: json_safe(v, f"{where}.{k}" if where else str(k), nulls) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, f"{where}[{i}]", nulls) for i, v in enumerate(value)]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # NumPy scalars and arrays
        return json_safe(value.tolist(), where, nulls)
    return value


def is_generated_json(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a JSON object written by this package (it carries ``"generator"``)."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(value, dict) and value.get("generator") == GENERATOR


def check_replaceable(path: str | os.PathLike, ours: Callable[[Path], bool], what: str = "file") -> None:
    """Raises `UnsafeWriteError` when ``path`` exists and ``ours(path)`` says the package did not write it."""
    path = Path(path)
    if path.exists() and not (path.is_file() and ours(path)):
        raise UnsafeWriteError(f"{path}: exists and was not written by delta_keras; refusing to overwrite it "
                               f"(choose another {what} or move that one away)")


def to_json(value: object) -> str:
    """Strict JSON text of ``value``; a dict gets ``"generator"`` and, if any were nulled, ``"null_values"``."""
    nulls: dict[str, str] = {}
    safe = json_safe(value, nulls=nulls)
    if isinstance(safe, dict):
        safe = {"generator": GENERATOR, **safe}
        if nulls:
            safe["null_values"] = {"why": "not a finite number, written as null", **nulls}
    return json.dumps(safe, indent=1, allow_nan=False, default=str) + "\n"


def write_json(path: str | os.PathLike, value: object) -> Path:
    """Writes ``value`` as strict JSON (`to_json`), atomically, never over a file the package did not write."""
    check_replaceable(path, is_generated_json, "output file")
    text = to_json(value)
    return atomic_save(path, lambda temporary: temporary.write_text(text))


def claim_folder(folder: str | os.PathLike, marker: str) -> Path:
    """Makes ``folder`` the package's: creates it with a ``marker`` file, or checks an existing one.

    A folder that does not exist or is empty is claimed; one that already holds ``marker`` (a previous
    run of the same tool) is accepted; any other non-empty folder is refused.

    Raises:
        UnsafeWriteError: ``folder`` is a file, or a non-empty folder without ``marker``.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UnsafeWriteError(f"{folder}: is a file, expected a folder for the output")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / marker).is_file():
        raise UnsafeWriteError(f"{folder}: not empty and not made by this tool (no {marker} in it); "
                               "refusing to write there: choose a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / marker).write_text(f"made by {GENERATOR}; its entries may be replaced by the next run\n")
    return folder


def clear_entries(folder: str | os.PathLike, names: Iterable[str], marker: str) -> None:
    """Removes the named entries of a folder claimed with ``marker`` (what a previous run made there).

    Raises:
        UnsafeWriteError: ``folder`` does not hold ``marker``.
    """
    folder = Path(folder)
    if not (folder / marker).is_file():
        raise UnsafeWriteError(f"{folder}: not claimed by delta_keras (no {marker}); nothing removed")
    for name in names:
        entry = folder / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.exists() or entry.is_symlink():
            entry.unlink()


def fresh_folder(folder: str | os.PathLike, marker: str, entries: Iterable[str]) -> Path:
    """`claim_folder`, then `clear_entries`: a folder a tool fills anew on every run, e.g. ``runs/demo``.

    Only the named ``entries`` (what the tool itself makes there) are removed; anything else in the
    folder, and any folder not claimed by the same tool, is left alone.
    """
    folder = claim_folder(folder, marker)
    clear_entries(folder, entries, marker)
    return folder
