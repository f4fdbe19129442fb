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


def _reject_constant(name):
    raise ValueError(f"results.json holds {name}, which strict JSON parsers reject")


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
    if sparsity != "none":  # the whole model's density beside the loss, as the progress bar shows it
        assert {"epoch_delta_density", "epoch_activation_density"} <= set(curves["train"]) & set(curves["validation"])
    for split in curves.values():
        for tag, points in split.items():
            assert all(math.isfinite(value) for _, value in points), tag
    assert [step for step, _ in curves["train"]["loss/total"]] == [0, 1]

    saved = json.loads((tmp_path / "results.json").read_text(), parse_constant=_reject_constant)  # strict JSON
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
        (["--sparsity", "delta", "--unlabelled-dir", "."], "--unlabelled-dir: only with --distill-from"),
        (["--cache-max-gb", "1"], "--cache-max-gb needs --cache-dir"),
        (["--decode-threads", "0"], "--decode-threads must be >= 1"),
        (["--verify-videos", "deep"], "invalid choice"),
        (["--sparsity", "delta", "--sparsity-normalization", "per_mac"], "invalid choice"),
        (["--sparsity", "delta", "--step-rate", "0"], "--step-rate must be > 0"),
        (["--sparsity", "delta", "--distill-from", "missing-run"], "no such checkpoint or run folder"),
        (["--distill-from", "."], "refines a sparse student"),
        (["--sparsity", "delta", "--distill-from", ".", "--unlabelled-dir", ".", "--label-weight", "1"],
         "--unlabelled-dir has none"),
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


@pytest.mark.slow
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

    assert results["resumed_from"]["epoch"] == killed_at
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


@pytest.mark.slow
def test_distillation_on_unlabelled_videos_resumes_and_evaluates_the_student(tmp_path, capsys):
    from delta_keras.data import write_ucf101_folder
    from delta_keras.models import Distiller

    _train(tmp_path / "dense", "--epochs", "1")
    videos = write_ucf101_folder(tmp_path / "footage", num_videos_per_class=1, frames=8, image_size=16) / "UCF-101"
    broken = videos / "damaged.avi"
    broken.write_bytes(b"not a video")
    flags = ["--sparsity", "delta", "--step-init", "0.1", "--distill-from", str(tmp_path / "dense"),
             "--unlabelled-dir", str(videos), "--step-rate", "100", "--learning-rate", "1e-4",
             "--sparsity-normalization", "dense_macs", "--sparsity-weight", "0.1"]
    with pytest.warns(UserWarning, match="skipping video"):
        first = _train(tmp_path / "distilled", "--epochs", "1", *flags)
    assert {"distillation_loss", "sparsity_loss"} <= set(first["final_logs"]) and "accuracy" not in first["final_logs"]
    assert first["data"]["unlabelled_videos"] == len(list(videos.rglob("*.avi"))) - 1
    assert list(first["data"]["skipped"]) == [str(broken)]
    checkpoint = tmp_path / "distilled" / "checkpoints" / "epoch-0001.keras"
    assert isinstance(keras.models.load_model(checkpoint), Distiller)  # the whole state, to resume from
    # The steps moved at 100x the learning rate: far more than 1e-4 per update allows.
    from delta_keras.train.run_folder import load_model_from

    student = load_model_from(checkpoint)[1]
    steps = [float(keras.ops.max(keras.ops.abs(l.step_variable - 0.1))) for l in student.layers
             if isinstance(l, DeltaActivation)]
    assert max(steps) > 2 * 2e-4
    resumed = _train(tmp_path / "distilled", "--epochs", "2", "--resume", *flags)
    assert resumed["resumed_from"]["epoch"] == 1 and resumed["optimizer_iterations"] == 4
    evaluated = ucf101_eval.main([str(tmp_path / "distilled"), "--eval-clips", "1"])
    assert evaluated["evaluation"]["layers"] and evaluated["macs"]["summary"]["zero_delta_reduction"] > 1


# ---------------------------------------------------------------------------- bad input, divergence, resume


@pytest.mark.parametrize("flag", ["--learning-rate", "--step-init", "--sparsity-weight"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_numbers_are_refused(flag, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _train(tmp_path / "run", "--sparsity", "delta", flag, value)
    assert exit_info.value.code == 2
    assert f"{flag} must be a finite number" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_non_finite_loss_stops_the_run_with_exit_3_and_saves_nothing_broken(tmp_path, capsys, monkeypatch):
    from delta_keras.train import builders

    real = builders.train_dataset
    monkeypatch.setattr(builders, "train_dataset", lambda config: real(config).map(lambda x, y: (x * float("nan"), y)))
    with pytest.raises(SystemExit) as exit_info:
        _train(tmp_path, "--epochs", "2")
    assert exit_info.value.code == 3
    err = capsys.readouterr().err
    assert "loss became nan at epoch 1, step 1" in err and "no checkpoint had been written before it" in err
    assert not list(tmp_path.glob("checkpoints/*.keras")) and not (tmp_path / "results.json").exists()


def test_fewer_training_videos_than_a_batch_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _train(tmp_path, "--synthetic-videos", "3")  # TINY_FLAGS: batch size 4
    assert exit_info.value.code == 2
    assert "3 usable training video(s) but --batch-size 4" in capsys.readouterr().err


def test_help_shows_defaults_of_zero(capsys):
    with pytest.raises(SystemExit):
        ucf101_train.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 0)" in out  # --seed, --sparsity-start-step


def test_resume_accepts_the_same_folder_written_differently_and_a_moved_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _train("run", "--epochs", "1")
    results = _train(str(tmp_path / "run") + "/", "--epochs", "2", "--resume")
    assert results["resumed_from"]["epoch"] == 1 and results["epochs_completed"] == 2
    (tmp_path / "run").rename(tmp_path / "moved")
    results = _train(tmp_path / "moved", "--epochs", "3", "--resume")
    assert results["resumed_from"]["epoch"] == 2 and results["optimizer_iterations"] == 6


def test_resume_of_a_finished_run_leaves_its_results_intact(tmp_path, capsys):
    _train(tmp_path, "--epochs", "1")
    before = (tmp_path / "results.json").read_bytes()
    results = _train(tmp_path, "--epochs", "1", "--resume")
    assert (tmp_path / "results.json").read_bytes() == before
    assert "nothing to do" in capsys.readouterr().out
    assert results["epochs_completed"] == 1 and results["final_logs"]


def test_resume_falls_back_past_a_corrupt_checkpoint_and_removes_stale_temporaries(tmp_path):
    _train(tmp_path, "--epochs", "2")
    newest = tmp_path / "checkpoints" / "epoch-0002.keras"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated by a crash of the disk
    stale = tmp_path / "checkpoints" / ".tmp-999999999-0123abcd-epoch-0003.keras"
    stale.write_bytes(b"killed mid-write")
    with pytest.warns(UserWarning, match="epoch-0002.keras: corrupt checkpoint"):
        results = _train(tmp_path, "--epochs", "3", "--resume")
    assert results["resumed_from"]["epoch"] == 1 and results["optimizer_iterations"] == 6
    assert not stale.exists()


def test_evaluating_a_corrupt_checkpoint_names_it_as_corrupt(tmp_path, capsys):
    _train(tmp_path, "--epochs", "1")
    checkpoint = tmp_path / "checkpoints" / "epoch-0001.keras"
    checkpoint.write_bytes(b"")
    with pytest.raises(SystemExit) as exit_info:
        ucf101_eval.main([str(checkpoint)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "epoch-0001.keras: corrupt checkpoint (0 bytes" in err and "not found" not in err.lower()


def test_checkpoints_every_n_steps_and_resume_mid_epoch(tmp_path):
    _train(tmp_path, "--epochs", "1", "--steps-per-epoch", "3", "--checkpoint-every-steps", "1")
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["epoch-0000-step-000002.keras", "epoch-0001.keras"]
    # A kill after step 2 of epoch 1: only the mid-epoch checkpoint remains.
    (tmp_path / "checkpoints" / "epoch-0001.keras").unlink()
    (tmp_path / "results.json").unlink()
    results = _train(tmp_path, "--epochs", "2", "--steps-per-epoch", "3", "--resume")
    assert (results["resumed_from"]["epoch"], results["resumed_from"]["step"]) == (0, 2)
    assert results["optimizer_iterations"] == 6  # 1 step to finish epoch 1, then 3


def test_a_ucf101_folder_sets_the_class_count_and_reports_skipped_videos(tmp_path, capsys):
    from delta_keras.data import write_ucf101_folder

    root = write_ucf101_folder(tmp_path / "ucf", num_videos_per_class=4, frames=8, image_size=16)
    lists = root / "ucfTrainTestlist"
    kept = lists.joinpath("classInd.txt").read_text().splitlines()[:3]
    names = [line.split()[1] for line in kept]
    lists.joinpath("classInd.txt").write_text("\n".join(kept) + "\n")
    for name in ("trainlist01.txt", "testlist01.txt"):
        lines = [l for l in lists.joinpath(name).read_text().splitlines() if l.split("/")[0] in names]
        lists.joinpath(name).write_text("\n".join(lines) + "\n")
    broken = root / "UCF-101" / lines[0].split()[0]
    broken.write_bytes(b"not a video")  # one test video corrupt
    flags = ["--dataset", "ucf101", "--data-dir", str(root), "--frames", "4", "--image-size", "16",
             "--batch-size", "2", "--steps-per-epoch", "1", "--eval-clips", "1", "--epochs", "1"]
    with pytest.warns(UserWarning, match="skipping video"):
        results = ucf101_train.main([*flags, "--logdir", str(tmp_path / "run")])
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["data"]["num_classes"] == 3 and saved["data"]["num_classes_from"] == "classInd.txt"
    assert list(saved["data"]["skipped"]) == [str(broken)] and saved["data"]["skipped_videos"] == 1
    assert "skipped videos" in capsys.readouterr().out
    model = keras.models.load_model(tmp_path / "run" / "checkpoints" / "epoch-0001.keras", compile=False)
    assert model.output.shape[-1] == 3 == results["data"]["num_classes"]


def test_a_class_folder_trains_validates_on_its_validation_part_and_tests_on_its_test_part(tmp_path):
    from delta_keras.data import write_class_folder
    from delta_keras.train import TrainConfig, builders

    root = write_class_folder(tmp_path / "clips", num_classes=3, sources_per_class=4, clips_per_source=2, frames=8,
                              image_size=16)
    flags = ["--dataset", "folder", "--data-dir", str(root), "--frames", "4", "--image-size", "16", "--batch-size", "2",
             "--steps-per-epoch", "2", "--eval-clips", "1", "--epochs", "1", "--head", "temporal"]
    results = ucf101_train.main([*flags, "--logdir", str(tmp_path / "run")])
    data = results["data"]
    assert data["num_classes"] == 3 and data["num_classes_from"] == "the class folders"
    assert data["train_videos"] + data["validation_videos"] + data["test_videos"] == 24
    assert results["evaluation"]["videos"] == data["test_videos"]
    config = TrainConfig(dataset="folder", data_dir=str(root), batch_size=2)
    assert builders.validation_split(config) == "validation"
    assert builders.validation_steps(config) == -(-data["validation_videos"] // 2)


@pytest.mark.parametrize("flags, message", [
    (["--dataset", "folder"], "--dataset folder needs --data-dir"),
    (["--backbone", "tiny", "--frozen-blocks", "2"], "only with --backbone hed_vgg16"),
    (["--weights", "bsds500"], "only with --backbone hed_vgg16"),
    (["--backbone", "hed_vgg16", "--blocks", "6"], "need 1 <= --blocks <= 5"),
    (["--dataset", "folder", "--data-dir", ".", "--group-pattern", "no-group"], "needs a group"),
])
def test_class_folder_and_backbone_flags_are_checked(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _train(tmp_path / "run", *flags)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_layout_error_is_one_line_naming_file_and_line(tmp_path, capsys):
    from delta_keras.data import write_ucf101_folder

    root = write_ucf101_folder(tmp_path / "ucf", num_videos_per_class=1, frames=4, image_size=16)
    listing = root / "ucfTrainTestlist" / "trainlist01.txt"
    listing.write_text(listing.read_text() + "NoSuchClass/v_NoSuchClass_g01_c01.avi 99\n")
    with pytest.raises(SystemExit) as exit_info:
        ucf101_train.main(["--dataset", "ucf101", "--data-dir", str(root), "--logdir", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{listing}:" in err[0] and "'NoSuchClass' is not in" in err[0]
    assert "Traceback" not in err[0]


def test_scripts_print_no_tensorflow_start_up_noise(tmp_path, script_env):
    env = {k: v for k, v in script_env.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    command = [sys.executable, str(REPO / "experiments" / "ucf101_train.py"), *TINY_FLAGS, "--epochs", "1",
               "--logdir", str(tmp_path / "run")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for noise in ("cuInit", "I0000", "cudart_stub", "oneDNN"):
        assert noise not in done.stderr, done.stderr[-2000:]
