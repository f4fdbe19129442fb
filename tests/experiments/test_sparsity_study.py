"""The sparsity study end to end on a tiny budget (its modules' own tests are in tests/study)."""

import json
import re

import numpy as np

import pytest

from delta_keras.study.report import TABLE, row_cells

from conftest import REPO, TINY_FLAGS

pytestmark = pytest.mark.slow  # many seconds each: `make quick` leaves them out

REAL_CLIP = REPO.parent / "shared" / "data" / "real_clips" / "v_ApplyEyeMakeup_g01_c01.avi"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A fast study: dense baseline and the same trained as long, one post-hoc point of each kind on each,
    DeltaActivation refined at one weight in each mode; report written."""
    import sparsity_study  # experiments/, on sys.path via conftest

    root = tmp_path_factory.mktemp("study")
    out, report = root / "results" / "fast", root / "docs" / "RESULTS.md"
    flags = [*TINY_FLAGS, "--validation-steps", "1", "--out", str(out), "--methods",
             "dense,dense_refine,posthoc,posthoc_memory,delta_refine,delta_memory_refine", "--dense-epochs", "1", "--refine-epochs", "1",
             "--posthoc-steps", "0.5", "--posthoc-agreements", "0.9", "--posthoc-thresholds", "0.1,0.5,2",
             "--delta-weights", "1e-3", "--memory-weights", "1e-4",
             "--step-gradients", "lsq", "--delta-input-step", "32", "--real-clip",
             str(REAL_CLIP) if REAL_CLIP.is_file() else "",
             "--real-clip-frames", "4", "--report", str(report)]
    sparsity_study.main(flags)
    return out, report, json.loads((out / "summary.json").read_text())


def test_summary_holds_every_run_with_consistent_figures(study):
    _, _, summary = study
    runs = {r["name"]: r for r in summary["runs"]}
    assert list(runs) == ["dense", "posthoc-q0.5", "posthoc-memory-a0.9", "delta-refine-lsq-w0.001",
                          "delta-memory-refine-lsq-w0.0001", "dense-refine", "posthoc-q0.5-of-dense-refine",
                          "posthoc-memory-a0.9-of-dense-refine"]
    # Post-hoc conversion of both dense models: each point compared with its own model on the selection videos.
    assert runs["posthoc-q0.5"]["base"] == "dense" and runs["posthoc-q0.5-of-dense-refine"]["base"] == "dense-refine"
    assert (runs["posthoc-q0.5-of-dense-refine"]["dense_selection_accuracy"]
            == runs["posthoc-memory-a0.9-of-dense-refine"]["dense_selection_accuracy"])
    thresholds = dict(runs["posthoc-memory-a0.9"]["thresholds"])
    # The input's threshold is calibrated on a pixel grid around half the input step (32 / 2).
    assert thresholds.pop("images_delta") in (4.0, 8.0, 16.0, 32.0)
    assert thresholds and set(thresholds.values()) <= {0.1, 0.5, 2.0}
    assert runs["posthoc-memory-a0.9"]["selection_accuracy"] >= 0
    for run in runs.values():
        assert 0 <= run["video_accuracy"] <= 1 and 0 <= run["clip_accuracy"] <= 1
        assert run["reduction_zero_delta"] == pytest.approx(run["dense_macs"] / run["macs_zero_delta"])
        assert run["temporal_density_mac_first"] == pytest.approx(1 / run["reduction_zero_delta"])
        assert run["spatial_density_mac"] == pytest.approx(1 / run["reduction_zero_activation"])
        assert sum(layer["dense_share"] for layer in run["layers"]) == pytest.approx(1)
        for key in ("temporal_density_neuron", "temporal_density_neuron_first", "temporal_density_mac",
                    "spatial_density_neuron"):
            assert 0 <= run[key] <= 1
    # Same backbone and data for every method: the same dense MAC count.
    assert len({r["dense_macs"] for r in runs.values()}) == 1
    assert runs["dense"]["sparsity_layer_density"] is None
    assert runs["delta-refine-lsq-w0.001"]["sparsity_layer_density"]["delta_density"] >= 0
    assert set(summary["best"]) == {"dense", "dense_refine", "posthoc", "posthoc_memory", "delta_refine",
                                    "delta_memory_refine"}
    best = summary["targets"]["best_delta"]
    assert best in ("delta-refine-lsq-w0.001", "delta-memory-refine-lsq-w0.0001")
    assert summary["targets"]["reduction_vs_dense_macs"] == runs[best]["reduction_zero_delta"]
    assert summary["targets"]["posthoc_reference"] in [name for name in runs if name.startswith("posthoc")]


def test_plots_are_written(study):
    out, report, summary = study
    expected = {"pareto", "layers"} | ({"real_clip"} if REAL_CLIP.is_file() else set())
    assert set(summary["figures"]) == expected
    for name in summary["figures"].values():
        for folder in (out, report.parent / "results" / out.name):
            assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if REAL_CLIP.is_file():
        densities = summary["real_clip"]["densities"]["delta_refine"]
        assert len(densities["mac_weighted"]) == 4 and all(0 <= d <= 1 for d in densities["mac_weighted"])


def test_report_numbers_are_the_summarys(study):
    _, report, summary = study
    text = report.read_text()
    table = {line.split("|")[1].strip(): [c.strip() for c in line.strip().strip("|").split("|")]
             for line in text.splitlines() if line.startswith("| ") and not line.startswith("| run")}
    assert set(table) == {r["name"] for r in summary["runs"]}
    for run in summary["runs"]:
        assert table[run["name"]] == row_cells(run)
        assert len(table[run["name"]]) == len(TABLE)
    # A reported accuracy parses back to the summary's value at the printed precision.
    dense = summary["runs"][0]
    assert float(table["dense"][2]) == pytest.approx(100 * dense["video_accuracy"], abs=0.05)
    # Every figure the report shows exists next to it.
    for target in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (report.parent / target).is_file()
    for field, _ in TABLE[1:]:
        assert f"`{field}`" in text  # each column's definition is stated


def test_report_command_reruns_the_same_study(study):
    import shlex

    import sparsity_study
    from delta_keras.study.report import study_command

    _, _, summary = study
    command = study_command(summary["study"])
    args = sparsity_study.parser().parse_args(shlex.split(command)[2:] + ["--real-clip", summary["study"]["real_clip"] or ""])
    rebuilt = sparsity_study.study_from_args(args).to_dict()
    assert json.loads(json.dumps(rebuilt)) == summary["study"]


def test_seed_spread_of_studies_that_differ_only_in_seed(study, tmp_path):
    import copy

    from delta_keras.study.report import seed_spread, write_report

    out, _, summary = study
    other = copy.deepcopy(summary)
    other["study"]["base"]["seed"] = 7
    other["study"]["out"] = str(tmp_path / "seed7")
    for run in other["runs"]:
        run["video_accuracy"] = run["video_accuracy"] / 2
    spread = seed_spread([summary, other])
    assert spread["seeds"] == [0, 7]
    dense = spread["methods"]["dense"]
    assert [p["seed"] for p in dense] == [0, 7] and dense[1]["video_accuracy"] == dense[0]["video_accuracy"] / 2
    (tmp_path / "seed7").mkdir()
    (tmp_path / "seed7" / "summary.json").write_text(json.dumps(other))
    for name in other["figures"].values():
        (tmp_path / "seed7" / name).write_bytes((out / name).read_bytes())
    report = write_report([out, tmp_path / "seed7"], tmp_path / "RESULTS.md").read_text()
    assert "## Spread over seeds" in report and "| seed 0 | seed 7 |" in report


@pytest.mark.slow
def test_a_class_folder_study_calibrates_post_hoc_on_its_validation_part(tmp_path, monkeypatch):
    import sparsity_study

    from delta_keras.data import write_class_folder
    from delta_keras.study import runner

    root = write_class_folder(tmp_path / "clips", num_classes=3, sources_per_class=4, clips_per_source=2, frames=8,
                              image_size=16)
    chosen = []
    real = runner._selection
    monkeypatch.setattr(runner, "_selection", lambda config: chosen.append(real(config)[1]) or real(config))
    out = tmp_path / "study"
    sparsity_study.main(["--dataset", "folder", "--data-dir", str(root), "--frames", "4", "--image-size", "16",
                         "--batch-size", "2", "--steps-per-epoch", "2", "--validation-steps", "1", "--eval-clips", "1",
                         "--out", str(out), "--methods", "dense,posthoc,posthoc_memory", "--dense-epochs", "1",
                         "--posthoc-steps", "0.5", "--posthoc-agreements", "0.9", "--posthoc-thresholds", "0.1,0.5",
                         "--real-clip", ""])
    summary = json.loads((out / "summary.json").read_text())
    assert [r["name"] for r in summary["runs"]] == ["dense", "posthoc-q0.5", "posthoc-memory-a0.9"]
    assert chosen and set(chosen) == {"validation"}  # never the test part
    test_part = runner.builders.class_folder(runner.TrainConfig(dataset="folder", data_dir=str(root)), "test")
    assert all(r["test_videos"] == len(test_part.videos) for r in summary["runs"])


@pytest.mark.slow
def test_whole_clip_study_refines_from_the_chosen_post_hoc_points(tmp_path):
    """Whole test videos of different lengths: every frame counted once (frame 0 charged), and the refinements
    start from the post-hoc steps and thresholds chosen on the validation part, not from the dense model."""
    import sparsity_study

    from delta_keras.data import write_class_folder
    from delta_keras.study import runner

    root = write_class_folder(tmp_path / "clips", num_classes=3, sources_per_class=4, clips_per_source=2,
                              frames=(6, 11), image_size=16)
    out = tmp_path / "study"
    args = ["--dataset", "folder", "--data-dir", str(root), "--frames", "4", "--frame-stride", "2",
            "--image-size", "16", "--batch-size", "2", "--steps-per-epoch", "2", "--validation-steps", "1",
            "--eval-clips", "1", "--out", str(out), "--methods", "dense,posthoc,posthoc_memory,delta_refine,"
            "delta_memory_refine", "--dense-epochs", "1", "--refine-epochs", "1", "--posthoc-steps", "0.25,4",
            "--posthoc-agreements", "0.9", "--posthoc-thresholds", "0.1,0.5", "--delta-weights", "0.01",
            "--memory-weights", "0.001", "--step-gradients", "lsq", "--whole-clips", "--refine-from-posthoc",
            "--headline-seeds", "1", "--real-clip", ""]
    sparsity_study.main(args)
    summary = json.loads((out / "summary.json").read_text())
    runs = {r["name"]: r for r in summary["runs"]}

    config = runner.TrainConfig(dataset="folder", data_dir=str(root), frame_stride=2, image_size=16)
    videos = runner.whole_clips.test_videos(config)
    lengths = sorted({len(frames) for frames, _ in videos})
    assert len(lengths) > 1  # the merge across lengths is exercised
    dense = runs["dense"]
    assert dense["test_videos"] == len(videos) and dense["mac_clips"] == len(videos)
    # Dense MACs per video are the per-frame cost times the mean length: every frame of every video counted once.
    per_frame = dense["dense_macs"] * len(videos) / sum(len(frames) for frames, _ in videos)
    assert per_frame * min(lengths) < dense["dense_macs"] < per_frame * max(lengths)
    assert dense["reduction_zero_delta"] == pytest.approx(1 / dense["temporal_density_mac_first"])

    START = {"delta-refine-lsq-w0.01": "posthoc-start", "delta-memory-refine-lsq-w0.001": "posthoc-memory-start"}
    start = json.loads((out / "posthoc-start" / "record.json").read_text())["point"]
    assert runs["delta-refine-lsq-w0.01"]["start_point"] == start
    assert start == next(r["name"] for r in summary["runs"] if r.get("chosen_on_selection_set")) or start == "posthoc-q0.25"
    steps = {l.name: float(np.mean(l.step_variable)) for l in runner.methods.delta_layers(
        runner.load_model_from(out / "posthoc-start" / "model.keras")[1])}
    assert set(steps.values()) == {runs[start]["step"]}
    memory_start = json.loads((out / "posthoc-memory-start" / "record.json").read_text())["point"]
    assert runs["delta-memory-refine-lsq-w0.001"]["start_point"] == memory_start == "posthoc-memory-a0.9"

    # The headline rows again with seed 1, the refinement from seed 1's own post-hoc point.
    best = summary["targets"]["best_delta"]
    seeded = {r["name"]: r for r in summary["seed_runs"]}
    assert set(seeded) == {"dense-seed1", f"{start}-seed1", f"{memory_start}-seed1", f"{best}-seed1"}
    assert all(r["seed"] == 1 for r in seeded.values()) and seeded[f"{start}-seed1"]["base"] == "dense-seed1"
    first = json.loads((out / "dense-seed1" / "config.json").read_text())["config"]
    assert first["seed"] == 1 and first["frames"] == 4
    begun = seeded[f"{best}-seed1"]["start_point"]
    assert begun and begun.endswith("-seed1") and (out / f"{START[best]}-seed1" / "model.keras").is_file()
    assert [row["name"] for row in summary["headline_spread"]] == ["dense", start, memory_start, best]
    assert [p["seed"] for p in summary["headline_spread"][0]["seeds"]] == [0, 1]

    # A rerun measures nothing again: post-hoc records and whole-clip measurements are reused.
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.json") if p.name in ("record.json", "whole-clips.json")}
    sparsity_study.main(args)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert json.loads((out / "summary.json").read_text())["runs"] == summary["runs"]

    # The report: the whole-clip setting said, the rerun command gives back this study, old sections kept.
    import shlex

    from delta_keras.study.report import GENERATED, study_command, write_report

    report = tmp_path / "docs" / "RESULTS.md"
    report.parent.mkdir()
    report.write_text(f"# old\n\n{GENERATED}\n\n## `an-earlier-study`\n\nits table\n\n## What each column counts\n\nold\n")
    text = write_report([out], report, preamble="Two studies.", keep=True).read_text()
    assert text.index("## `an-earlier-study`\n\nits table") < text.index(f"## `{out.name}`") < text.index(
        "## What each column counts") and "\nold\n" not in text and "Two studies." in text
    assert "Evaluation on whole test videos" in text and "start from the post-hoc points chosen" in text
    assert "### Headline rows over seeds" in text and "| seed 0 | seed 1 |" in text
    assert json.loads((report.parent / "results" / out.name / "summary.json").read_text())["runs"] == summary["runs"]
    rerun = sparsity_study.parser().parse_args(shlex.split(study_command(summary["study"]))[2:])
    assert json.loads(json.dumps(sparsity_study.study_from_args(rerun).to_dict())) == summary["study"]


@pytest.mark.parametrize("extra, message", [
    (["--methods", "dense,delta_refine", "--refine-from-posthoc"], "delta_refine starts from a posthoc point"),
    (["--headline-seeds", "0,1"], "headline_seeds: 0 is the study's own seed"),
    (["--calibration-videos", "0"], "calibration_videos must be >= 1"),
    (["--whole-clips"], "whole_clips: needs video files"),
])
def test_settings_that_cannot_run_together_are_one_line_before_any_work(tmp_path, capsys, extra, message):
    import sparsity_study

    with pytest.raises(SystemExit) as stopped:
        sparsity_study.main(["--out", str(tmp_path / "study"), "--real-clip", "", *extra])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert not (tmp_path / "study").exists()
