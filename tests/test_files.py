"""delta_keras.files: atomic writes, strict JSON, and never touching a file the package did not create."""

import json
import os
import subprocess
import sys

import pytest

from delta_keras.files import (
    UnsafeWriteError,
    atomic_save,
    claim_folder,
    fresh_folder,
    is_generated_json,
    remove_stale_temporaries,
    write_json,
)


def _strict(text: str):
    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def test_write_json_writes_null_for_non_finite_numbers_and_says_where(tmp_path):
    path = write_json(tmp_path / "r.json", {"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": 2}})
    value = _strict(path.read_text())
    assert value["a"] is None and value["b"] == [1.0, None] and value["c"] == {"d": 2}
    assert value["null_values"]["a"] == "nan" and value["null_values"]["b[1]"] == "inf"
    assert "finite" in value["null_values"]["why"]
    assert value["generator"] == "delta_keras"


def test_write_json_replaces_its_own_files_but_never_a_users(tmp_path):
    ours = write_json(tmp_path / "ours.json", {"x": 1})
    write_json(ours, {"x": 2})
    assert _strict(ours.read_text())["x"] == 2
    theirs = tmp_path / "theirs.json"
    theirs.write_text('{"precious": true}')
    with pytest.raises(UnsafeWriteError, match="theirs.json: exists and was not written by delta_keras"):
        write_json(theirs, {"x": 1})
    assert theirs.read_text() == '{"precious": true}'
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UnsafeWriteError):
        write_json(tmp_path / "notes.txt", {})
    assert not is_generated_json(tmp_path / "notes.txt")


def test_atomic_save_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old")

    def crash(temporary):
        temporary.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_save(target, crash)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["results.json"]


def test_stale_temporaries_of_dead_processes_are_removed_and_nothing_else(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".tmp-{dead_pid}-0123abcd-epoch-0004.keras"
    alive = tmp_path / f".tmp-{os.getppid()}-0123abcd-epoch-0005.keras"  # a live process may still write it
    users = [tmp_path / ".tmp-notes.txt", tmp_path / "epoch-0001.keras", tmp_path / f".tmp-{dead_pid}-xyz-file"]
    for path in (stale, alive, *users):
        path.write_text("x")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert alive.exists() and all(path.exists() for path in users)


def test_claim_folder_refuses_a_users_non_empty_folder(tmp_path):
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(UnsafeWriteError, match="not empty and not made by this tool"):
        claim_folder(tmp_path, ".delta_keras_demo")
    assert (tmp_path / "thesis.tex").read_text() == "years of work"
    assert os.listdir(tmp_path) == ["thesis.tex"]


def test_fresh_folder_clears_only_what_the_tool_made(tmp_path):
    folder = fresh_folder(tmp_path / "demo", ".marker", ["dense", "delta"])
    (folder / "dense").mkdir()
    (folder / "dense" / "results.json").write_text("{}")
    (folder / "notes.txt").write_text("the user's")
    fresh_folder(folder, ".marker", ["dense", "delta"])
    assert not (folder / "dense").exists()
    assert (folder / "notes.txt").read_text() == "the user's"
