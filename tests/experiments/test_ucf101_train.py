"""experiments/ucf101_train.py and ucf101_eval.py end to end, on tiny synthetic runs."""

import json
import math
import signal
import subprocess
import sys
import time

import keras
import pytest
import ucf101_eval
import ucf101_train
from conftest import REPO, TINY_FLAGS

from delta_keras import DeltaActivation
from delta_keras.callbacks import read_scalars


def _train(logdir, *flags):
    return ucf101_train.main([*TINY_FLAGS, "--logdir", str(logdir), *flags])


@pytest.mark.parametrize("sparsity", ["none", "l1", "delta"])
def test_each_sparsity_mode_writes_curves_checkpoints_and_results(sparsity, tmp_path, capsys):
    results = _train(tmp_path, "--sparsity", sparsity, "--epochs", "2")

    curves = read_scalars(tmp_path)
    expected = {"loss/total", "loss/task", "loss/sparsity", "epoch_loss", "epoch_accuracy"}
    if sparsity != "none":
        expected |= {f"density/conv0_relu_{sparsity}", f"spatial_density/conv0_relu_{sparsity}"}
    for split in ("train", "validation"):
        missing = expected - set(curves[split])
        assert not missing, (split, missing)
    assert {"macs/zero_activation_reduction", "macs/zero_delta_reduction",
            "macs/zero_delta_fraction"} <= set(curves["validation"])
    if sparsity == "delta":
        assert any(tag.startswith("step/") for tag in curves["train"])
    for split in curves.values():
        for tag, points in split.items():
            assert all(math.isfinite(value) for _, value in points), tag
    assert [step for step, _ in curves["train"]["loss/total"]] == [0, 1]

    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["config"]["sparsity"] == sparsity and saved["versions"]["keras"] == keras.__version__
    assert 0 <= saved["evaluation"]["video_accuracy"] <= 1 and saved["evaluation"]["videos"] == 4
    assert saved["macs"]["summary"]["zero_delta_reduction"] > 0 and saved["wall_time_s"] > 0
    assert saved["optimizer_iterations"] == 4 == results["optimizer_iterations"]
    assert [p.name for p in sorted((tmp_path / "checkpoints").iterdir())] == ["epoch-0001.keras", "epoch-0002.keras"]
    assert "video accuracy" in capsys.readouterr().out


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--sparsity", "l1", "--step-init", "0.5"], "only apply to --sparsity delta"),
        (["--sparsity", "none", "--sparsity-weight", "0.1"], "only with --sparsity l1 or delta"),
        (["--dataset", "ucf101"], "needs --data-dir"),
        (["--backbone", "vgg"], "invalid choice"),
        (["--resume"], "no checkpoint to resume"),
        (["--init-from", "missing-run"], "no such checkpoint"),
    ],
)
def test_bad_flags_fail_at_once_with_exit_code_2(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _train(tmp_path / "run", *flags)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_missing_dataset_exits_2_before_training(tmp_path, script_env):
    command = [sys.executable, str(REPO / "experiments" / "ucf101_train.py"), "--dataset", "ucf101",
               "--data-dir", str(tmp_path), "--logdir", str(tmp_path / "run")]
    done = subprocess.run(command, env=script_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "missing UCF-101, ucfTrainTestlist" in done.stderr


def test_resume_after_a_kill_continues_from_the_last_checkpoint(tmp_path, script_env):
    logdir = tmp_path / "run"
    flags = [*TINY_FLAGS, "--sparsity", "delta", "--lr-schedule", "constant", "--logdir", str(logdir)]
    command = [sys.executable, str(REPO / "experiments" / "ucf101_train.py"), *flags]
    process = subprocess.Popen(command, env=script_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not list(logdir.glob("checkpoints/epoch-*.keras")) and time.monotonic() < deadline:
            assert process.poll() is None, "the run ended before its first checkpoint"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    (_, killed_at), = [(p, int(p.stem.split("-")[1])) for p in logdir.glob("checkpoints/epoch-*.keras")][-1:]
    assert not (logdir / "results.json").exists()

    # Same command (--epochs may grow), plus --resume.
    results = ucf101_train.main([*flags, "--epochs", str(killed_at + 1), "--resume"])

    assert results["resumed_from_epoch"] == killed_at
    steps = (killed_at + 1) * 2
    assert results["optimizer_iterations"] == steps
    model = keras.models.load_model(logdir / "checkpoints" / f"epoch-{killed_at + 1:04d}.keras")
    deltas = [layer for layer in model.layers if isinstance(layer, DeltaActivation)]
    assert deltas and all(int(layer.training_step.numpy()) == steps for layer in deltas)
    assert [step for step, _ in read_scalars(logdir)["train"]["loss/total"]][-1] == killed_at


def test_refinement_then_evaluation_of_the_checkpoint(tmp_path, capsys):
    dense = _train(tmp_path / "dense", "--epochs", "1")
    assert dense["evaluation"]["layers"] == {}
    delta = _train(tmp_path / "delta", "--epochs", "1", "--sparsity", "delta", "--step-init", "0.1",
                   "--init-from", str(tmp_path / "dense"))
    assert delta["config"]["init_from"] == str(tmp_path / "dense")
    assert set(delta["evaluation"]["layers"]) == {f"conv{i}_relu_delta" for i in range(4)}

    evaluated = ucf101_eval.main([str(tmp_path / "delta"), "--eval-clips", "3"])
    assert evaluated["evaluation"]["clips"] == 12 and evaluated["config"]["eval_clips"] == 3
    assert json.loads((tmp_path / "delta" / "eval_results.json").read_text())["checkpoint"].endswith("epoch-0001.keras")
    assert "clip accuracy" in capsys.readouterr().out
