"""The installed commands as a new user meets them: exit status, one-line errors, quiet and readable output,
every backend, and the files a run checks before it trains."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import ucf101_train
from conftest import TINY_FLAGS

from delta_keras.cli import sim_main, tensorboard_command
from delta_keras.data import synthetic_video

BIN = Path(sys.executable).parent
ANSI_OR_CARRIAGE_RETURN = re.compile(r"\x1b\[|\r")


def _command(name: str) -> str:
    path = shutil.which(name, path=str(BIN))
    assert path, f"{name} is not installed next to {sys.executable}"
    return path


def _run(args: list[str], env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _write_avi(path: Path, frames: int = 12, size: int = 32) -> Path:
    """A real Motion-JPEG AVI file of a moving synthetic action."""
    import cv2

    clip = synthetic_video(0, 0, np.arange(frames), size, frames)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (size, size))
    for frame in clip:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _one_error_line(stderr: str, prog: str, message: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"{prog}: error: ") and message in lines[0], lines[0]


@pytest.fixture
def trained(tmp_path_factory) -> Path:
    """A tiny finished run of the training script (in-process)."""
    logdir = tmp_path_factory.mktemp("trained") / "run"
    ucf101_train.main([*TINY_FLAGS, "--epochs", "1", "--logdir", str(logdir)])
    return logdir


@pytest.mark.slow
def test_train_and_eval_commands_exit_0_quietly_with_output_readable_in_a_file(tmp_path, script_env):
    logdir = tmp_path / "run"
    done = _run([_command("delta-keras-train"), *TINY_FLAGS, "--sparsity", "delta", "--epochs", "1",
                 "--logdir", str(logdir)], script_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""  # no results dict, no AutoGraph or Keras warnings, no TensorFlow start-up lines
    assert not ANSI_OR_CARRIAGE_RETURN.search(done.stdout)  # a line per epoch, not a live bar, in a file
    assert "video accuracy" in done.stdout and f"{BIN / 'tensorboard'}" in done.stdout
    done = _run([_command("delta-keras-eval"), str(logdir), "--eval-clips", "1"], script_env)
    assert done.returncode == 0 and done.stderr == "", done.stderr[-3000:]
    assert json.loads((logdir / "eval_results.json").read_text())["evaluation"]["videos"] == 4


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_training_script_and_simulator_run_end_to_end_on_other_backends(backend, tmp_path, script_env):
    pytest.importorskip(backend)
    env = {**script_env, "KERAS_BACKEND": backend}
    logdir = tmp_path / "run"
    done = _run([_command("delta-keras-train"), *TINY_FLAGS, "--sparsity", "delta", "--epochs", "1",
                 "--logdir", str(logdir)], env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((logdir / "results.json").read_text())
    assert results["macs"]["summary"]["zero_delta_reduction"] > 1
    assert 0 <= results["evaluation"]["video_accuracy"] <= 1
    video = _write_avi(tmp_path / "clip.avi")
    done = _run([_command("delta-keras-sim"), str(logdir / "checkpoints" / "epoch-0001.keras"), str(video),
                 "--frames", "4", "--json", str(tmp_path / "sim.json")], env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "sim.json").read_text())["totals"]["dense"] > 0
    assert "total" in done.stdout and not ANSI_OR_CARRIAGE_RETURN.search(done.stdout)


def test_a_results_file_the_package_did_not_write_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "results.json").write_text('{"accuracy": "the user\'s"}')
    with pytest.raises(SystemExit) as exit_info:
        ucf101_train.main([*TINY_FLAGS, "--logdir", str(tmp_path)])
    assert exit_info.value.code == 2
    _one_error_line(capsys.readouterr().err, "delta-keras-train", "results.json exists and was not written by delta_keras")
    assert not (tmp_path / "checkpoints").exists()  # nothing trained
    assert json.loads((tmp_path / "results.json").read_text()) == {"accuracy": "the user's"}


@pytest.mark.parametrize("config_text, message", [
    ('{"settings": 1}', "config.json exists and was not written by delta_keras"),
    ('{"generator": "delta_keras", "command_line": []}', "not the config.json of a delta_keras run"),
    ('{"generator": "delta_keras", "config": [1, 2]}', "is not a mapping of settings"),
])
def test_resume_of_a_folder_with_a_foreign_config_is_one_line(config_text, message, trained, capsys):
    (trained / "config.json").write_text(config_text)
    with pytest.raises(SystemExit) as exit_info:
        ucf101_train.main([*TINY_FLAGS, "--epochs", "2", "--logdir", str(trained), "--resume"])
    assert exit_info.value.code == 2
    _one_error_line(capsys.readouterr().err, "delta-keras-train", message)


def test_resume_says_which_checkpoint_it_loaded(trained, capsys):
    ucf101_train.main([*TINY_FLAGS, "--epochs", "2", "--logdir", str(trained), "--resume"])
    out = capsys.readouterr().out
    assert f"resuming from {trained / 'checkpoints' / 'epoch-0001.keras'} (the end of epoch 1; optimizer step 2" in out


@pytest.mark.parametrize("flags, message", [
    (["--frames", "1"], "--frames must be >= 2 (a temporal delta needs two frames), got 1"),
    (["--frames", "0"], "--frames must be >= 2 (a temporal delta needs two frames), got 0"),
    (["--resume"], "holds no checkpoint to resume from"),
    (["--checkpoint-every-minutes", "-1"], "--checkpoint-every-minutes must be >= 0"),
    (["--batch-size", "x"], "invalid int value"),
])
def test_errors_are_one_line_without_the_usage_block(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ucf101_train.main([*TINY_FLAGS, "--logdir", str(tmp_path / "run"), *flags])
    assert exit_info.value.code == 2
    _one_error_line(capsys.readouterr().err, "delta-keras-train", message)


def test_simulator_gives_one_line_and_exit_2_for_every_bad_path(tmp_path, trained, capsys):
    model = str(trained / "checkpoints" / "epoch-0001.keras")
    video = _write_avi(tmp_path / "good.avi")
    data = video.read_bytes()
    (tmp_path / "empty.avi").write_bytes(b"")
    (tmp_path / "text.avi").write_text("not a video")
    (tmp_path / "truncated.avi").write_bytes(data[: len(data) // 2])
    (tmp_path / "model.txt").write_text("not a model")
    (tmp_path / "broken.keras").write_text("not a zip archive")
    cases = [
        ([model, str(tmp_path / "empty.avi")], "empty.avi: cannot be opened as a video"),
        ([model, str(tmp_path / "text.avi")], "text.avi: cannot be opened as a video"),
        ([model, str(tmp_path / "truncated.avi"), "--frames", "12"], "truncated.avi: frame"),
        ([model, str(tmp_path / "missing.avi")], "missing.avi: no such file"),
        ([str(tmp_path / "model.txt"), str(video)], "model.txt: not a model file"),
        ([str(tmp_path / "broken.keras"), str(video)], "broken.keras: corrupt checkpoint"),
        ([str(tmp_path), str(video)], f"{tmp_path}: is a folder, expected a file"),
        ([model, str(video), "--frames", "0"], "--frames must be >= 1"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            sim_main(argv)
        assert exit_info.value.code == 2, argv
        _one_error_line(capsys.readouterr().err, "delta-keras-sim", message)
    assert sim_main([model, str(video), "--frames", "4"]) == 0


@pytest.mark.slow
def test_a_damaged_video_is_one_line_without_the_decoders_own_messages(tmp_path, trained, script_env):
    data = bytearray(_write_avi(tmp_path / "good.avi", frames=20, size=64).read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 3000, 7):
        data[i] = (data[i] * 31 + 7) % 256  # bytes overwritten mid-stream: FFmpeg complains per packet
    (tmp_path / "damaged.avi").write_bytes(bytes(data))
    shell = {k: v for k, v in script_env.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}  # as a user's shell has it
    done = _run([sys.executable, "-m", "delta_keras.sim", str(trained / "checkpoints" / "epoch-0001.keras"),
                 str(tmp_path / "damaged.avi"), "--frames", "20"], shell)
    assert done.returncode == 2
    _one_error_line(done.stderr, "delta-keras-sim", "damaged.avi: ")


def test_the_tensorboard_hint_works_as_printed():
    program = tensorboard_command("runs/demo").split(" --logdir ")[0]
    assert shutil.which(program) or os.access(program, os.X_OK), program
