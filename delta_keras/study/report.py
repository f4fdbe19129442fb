"""``RESULTS.md`` written from study summaries: every number comes from a ``summary.json``.

`cell(field, value)` is the one formatting of a number, so a test can check that the report shows
exactly what the summary holds.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from delta_keras.study.plots import LABELS
from delta_keras.study.summary import COLUMNS, read_summary

# (field, header) of the run table, in order
TABLE = (
    ("name", "run"),
    ("clip_accuracy", "clip acc %"),
    ("video_accuracy", "video acc %"),
    ("sparsity_layer_temporal_density", "sparsity-layer temporal dens. (t≥1)"),
    ("temporal_density_neuron", "temporal dens. neuron (t≥1)"),
    ("temporal_density_neuron_first", "temporal dens. neuron (frame 0 charged)"),
    ("temporal_density_mac", "temporal dens. MAC (t≥1)"),
    ("temporal_density_mac_first", "temporal dens. MAC (frame 0 charged)"),
    ("spatial_density_neuron", "spatial dens. neuron"),
    ("spatial_density_mac", "spatial dens. MAC"),
    ("macs_zero_delta", "eff. MACs/clip zero_delta"),
    ("reduction_zero_delta", "reduction zero_delta"),
    ("macs_zero_activation", "eff. MACs/clip zero_activation"),
    ("reduction_zero_activation", "reduction zero_activation"),
    ("energy_uj_zero_delta", "energy µJ/clip zero_delta"),
    ("train_time_s", "time s"),
)
PERCENT = {"clip_accuracy", "video_accuracy"}
DENSITY = {"sparsity_layer_temporal_density", "temporal_density_neuron", "temporal_density_neuron_first", "temporal_density_mac",
           "temporal_density_mac_first", "spatial_density_neuron", "spatial_density_mac"}


def cell(field: str, value) -> str:
    """How the report prints ``value`` of ``field``."""
    if value is None:
        return "–"
    if field in PERCENT:
        return f"{100 * value:.1f}"
    if field in DENSITY:
        return f"{value:.4f}"
    if field.startswith("reduction"):
        return f"{value:.2f}x"
    if field.startswith("macs") or field == "dense_macs":
        return f"{value / 1e6:.3f}M" if value >= 1e5 else f"{value:,.0f}"
    if field.startswith("energy"):
        return f"{value:.2f}"
    if field == "train_time_s":
        return f"{value:.0f}"
    return str(value)


def row_cells(run: dict) -> list[str]:
    """The table cells of one run."""
    return [cell(field, run.get(field)) for field, _ in TABLE]


def limits(run: dict, shown: int = 5) -> str:
    """Each MAC layer's share of a run's remaining zero_delta MACs, with its share of the dense MACs and
    its input's temporal density: what bounds the reduction."""
    spent = [layer["zero_delta_fraction"] * layer["dense_share"] for layer in run["layers"]]
    total = sum(spent) or 1.0
    ranked = sorted(zip(run["layers"], spent), key=lambda item: -item[1])
    parts = [f"`{layer['name']}` {100 * s / total:.0f}% (dense share {100 * layer['dense_share']:.0f}%, "
             f"input temporal density {layer['delta_density']:.3f})" for layer, s in ranked[:shown]]
    rest = sum(s for _, s in ranked[shown:])
    if rest:
        parts.append(f"the other {len(ranked) - shown} layers {100 * rest / total:.0f}%")
    return "; ".join(parts)


def _classes(base: dict) -> int:
    from delta_keras.train import TrainConfig  # noqa: PLC0415
    from delta_keras.train.builders import num_classes  # noqa: PLC0415

    return num_classes(TrainConfig.from_dict(base))


def _setting(study: dict) -> str:
    base = study["base"]
    data = (f"{base['dataset']} data, {base['frames']}-frame clips of {base['image_size']}x{base['image_size']}, "
            f"{base['synthetic_videos']} training / {base['synthetic_test_videos']} test videos"
            if base["dataset"] == "synthetic" else f"{base['dataset']} fold {base['fold']}, {base['frames']}-frame "
            f"clips of {base['image_size']}x{base['image_size']}")
    steps = base["steps_per_epoch"] or "one pass"
    return (f"Backbone `{base['backbone']}` (alpha {base['alpha']}), {data}; batch {base['batch_size']}, "
            f"{steps} steps per epoch, {base['optimizer']} with {base['lr_schedule']} learning rate. Dense baseline "
            f"and DeltaActivation from scratch: {study['dense_epochs']} epochs at {base['learning_rate']:g}; "
            f"refinements (L1, DeltaActivation refined): {study['refine_epochs']} more epochs from the baseline at "
            f"{study['refine_learning_rate']:g}. DeltaActivation step init {study['step_init']:g}, one step per "
            f"channel{_input_quantiser(study)}. Evaluation: {base['eval_clips']} clips per test video; MACs counted on one batch of "
            f"{base['batch_size']} test clips (centre clips).")


def _input_quantiser(study: dict) -> str:
    step = study.get("input_step_init")
    return "" if step is None else (f"; the input frames of the delta and post-hoc runs quantised too, initial step "
                                    f"{step:g} (pixel units)")


STUDY_FLAGS = ("methods", "dense_epochs", "refine_epochs", "refine_learning_rate", "posthoc_steps", "l1_weights",
               "delta_weights", "step_gradients", "scratch_step_gradients", "step_init", "input_step_init", "tolerance",
               "real_clip_frames")
# Study settings whose flag is not their name.
FLAG_NAMES = {"step_init": "delta-step-init", "input_step_init": "delta-input-step"}


def study_command(study: dict) -> str:
    """A command line that reruns a study (from ``summary["study"]``): every study setting, and the data and
    training settings that differ from `TrainConfig`'s defaults."""
    from delta_keras.train import TrainConfig  # noqa: PLC0415

    defaults = TrainConfig().to_dict()
    flags = [f"--out {study['out']}"]
    for name in STUDY_FLAGS:
        value = study.get(name)
        if value is None:  # an unset option (or a summary written before the option existed)
            continue
        value = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) if isinstance(value, (list, tuple)) \
            else f"{value:g}" if isinstance(value, float) else value
        flags.append(f"--{FLAG_NAMES.get(name, name.replace('_', '-'))} {value}")
    for name, value in study["base"].items():
        shown = name in ("dataset", "backbone", "frames", "image_size") or value != defaults.get(name)
        if shown and name not in ("logdir", "sparsity", "epochs"):
            flags.append(f"--{name.replace('_', '-')}" + ("" if value is True else f" {value}"))
    return "python experiments/sparsity_study.py " + " ".join(flags)


def _study_section(summary: dict, figures: str | None) -> list[str]:
    study = summary["study"]
    runs = summary["runs"]
    total = sum(r["train_time_s"] for r in runs)
    lines = [f"## `{Path(study['out']).name}`", "", _setting(study), "", "Rerun (completed runs are reused):", "",
             "```", study_command(study), "```", "",
             f"Runs: {len(runs)}; summed run time {cell('train_time_s', total)} s "
             f"(this invocation: {cell('train_time_s', summary['wall_time_s'])} s wall). "
             f"Dense MACs per clip: {cell('dense_macs', runs[0]['dense_macs'])}.", ""]
    chance = 1 / _classes(study["base"])
    if runs[0]["method"] == "dense" and runs[0]["video_accuracy"] < 0.5:
        lines += [f"**Caution:** the dense baseline reaches only {cell('video_accuracy', runs[0]['video_accuracy'])} % "
                  f"video accuracy (chance {cell('video_accuracy', chance)} %): at this budget the accuracy side of "
                  "the comparison says little; the MAC and density figures stand. On the synthetic data only motion "
                  "tells classes apart, and a per-frame backbone whose scores are averaged over time sees no motion "
                  "unless given frame differences (only the `tiny` backbone is; see docs/models.md).", ""]
    targets = summary.get("targets") or {}
    if targets:
        ok = lambda flag: "**met**" if flag else "**not met**"  # noqa: E731
        lines += ["### Targets (zero_delta, video accuracy)", "",
                  f"- Best DeltaActivation point within {100 * targets['tolerance']:g} point of the baseline: "
                  f"`{targets['best_delta']}`" + ("" if targets["best_delta_within_tolerance"] else
                                                  " (none is within the tolerance: the most accurate is shown)")
                  + f", accuracy lost {100 * targets['accuracy_lost']:.1f} points"
                  + (f" ({100 * targets['accuracy_lost_vs_dense_refine']:.1f} against the dense model trained as "
                     "long as the refinements)" if "accuracy_lost_vs_dense_refine" in targets else "") + ".",
                  *([f"- Against the dense model trained as long as the refinements "
                     f"({cell('video_accuracy', targets['dense_refine_accuracy'])} %), the best DeltaActivation point "
                     f"within {100 * targets['tolerance']:g} point is `{targets['best_delta_vs_dense_refine']}`: "
                     f"{cell('reduction_zero_delta', targets['reduction_vs_dense_macs_vs_dense_refine'])} fewer "
                     "effective MACs than dense."] if "best_delta_vs_dense_refine" in targets else []),
                  f"- ≥ 10x fewer effective MACs than the dense baseline's dense count: "
                  f"{cell('reduction_zero_delta', targets['reduction_vs_dense_macs'])} — "
                  f"{ok(targets['target_10x_met'])}.",
                  f"- ≥ 10x fewer than the baseline's own effective MACs under delta inference: "
                  f"{cell('reduction_zero_delta', targets['reduction_vs_baseline_effective'])} — "
                  f"{ok(targets['target_10x_met_vs_baseline_effective'])}."]
        if "reduction_vs_posthoc" in targets:
            lines.append(
                f"- ≥ 3x fewer than post-hoc delta inference at the same accuracy (`{targets['posthoc_reference']}`"
                + ("" if targets["same_accuracy"] else ", the most accurate post-hoc point, less accurate than the "
                   "delta point") + f"): {cell('reduction_zero_delta', targets['reduction_vs_posthoc'])} — "
                f"{ok(targets['target_3x_posthoc_met'])}.")
        best = next(r for r in runs if r["name"] == targets["best_delta"])
        lines.append(f"- Where `{best['name']}`'s remaining zero_delta MACs are: " + limits(best) + ".")
        busy = [layer for layer in best["layers"] if layer["delta_density"] > 0.5 and layer["dense_share"] > 0.01]
        if busy:
            share = sum(layer["zero_delta_fraction"] * layer["dense_share"] for layer in busy)
            lines.append(
                "- Inputs that change almost everywhere (temporal density > 0.5) even at that point: "
                + ", ".join(f"`{layer['name']}`" for layer in busy)
                + f". No sparsity layer quantises them (the first convolution reads the raw frames, whose sensor "
                f"noise changes every pixel, unless the model is built with `include_input`), so they bound the "
                f"zero_delta reduction of every method at {cell('reduction_zero_delta', 1 / share)} even if every "
                "other layer skipped all its MACs.")
        lines.append("")
    lines += ["### Every run", "", "| " + " | ".join(h for _, h in TABLE) + " |",
              "|" + "---|" * len(TABLE)]
    lines += ["| " + " | ".join(row_cells(r)) + " |" for r in runs]
    lines.append("")
    posthoc = [r for r in runs if r["method"] == "posthoc"]
    chosen = [r for r in posthoc if r.get("chosen_on_selection_set")]
    if posthoc:
        lines += [f"Post-hoc steps were tried on held-out selection videos (not the test set): "
                  + ", ".join(f"`{r['name']}` {cell('video_accuracy', r['selection_accuracy'])} %" for r in posthoc)
                  + f" against the baseline's {cell('video_accuracy', posthoc[0]['dense_selection_accuracy'])} %; "
                  + (f"the step chosen (largest within the tolerance) is `{chosen[0]['name']}`." if chosen
                     else "no step stays within the tolerance."), ""]
    lines += ["Best point of each method (largest zero_delta reduction within the tolerance, else the most "
              "accurate run): " + ", ".join(f"{LABELS.get(m, m)} `{p['name']}`" for m, p in summary["best"].items()),
              ""]
    if figures:
        names = summary["figures"]
        lines += [f"![accuracy against MAC reduction]({figures}/{names['pareto']})", "",
                  f"![per-layer density]({figures}/{names['layers']})", ""]
        if "real_clip" in names:
            lines += [f"![density over frames of a real clip]({figures}/{names['real_clip']})", "",
                      f"Real clip: `{Path(summary['real_clip']['path']).name}`, "
                      f"{summary['real_clip']['frames']} frames, resized and centre-cropped to the model's input "
                      "(test data only, never trained on).", ""]
    return lines


def write_report(studies: list[str | os.PathLike], path: str | os.PathLike = "docs/RESULTS.md",
                 figures_dir: str | os.PathLike | None = None, preamble: str = "") -> Path:
    """Writes the report of one or more studies.

    Args:
        studies: study folders (or their ``summary.json``).
        path: the Markdown file to write.
        figures_dir: where the figures are copied (``<figures_dir>/<study name>/``), referenced relative to
            the report; default: next to the report, under ``results/``.
        preamble: Markdown put after the title (e.g. the command that produced the studies).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figures_dir = Path(figures_dir) if figures_dir is not None else path.parent / "results"
    lines = ["# Results: temporal sparsity against accuracy", "",
             "_Generated by `experiments/sparsity_study.py` from `summary.json`: do not edit by hand._", ""]
    if preamble:
        lines += [preamble, ""]
    for study in studies:
        folder = Path(study).parent if Path(study).suffix == ".json" else Path(study)
        summary = read_summary(study)
        target = figures_dir / folder.name
        target.mkdir(parents=True, exist_ok=True)
        for name in summary["figures"].values():
            shutil.copyfile(folder / name, target / name)
        lines += _study_section(summary, os.path.relpath(target, path.parent))
    lines += ["## What each column counts", "",
              "MAC figures come from `delta_keras.sim.count_macs`, densities from `delta_keras.layers.density` "
              "(the same definitions as the layers' statistics and the TensorBoard curves). Densities are "
              "measured on the inputs of the MAC layers (convolutions, dense), so a dense model has them too.", ""]
    lines += [f"- **{header}** (`{field}`): {COLUMNS.get(field, 'the run name: method, step gradient, weight or step')}."
              for field, header in TABLE]
    lines += ["", "Methods:", ""]
    from delta_keras.study.methods import METHODS  # noqa: PLC0415

    lines += [f"- `{m}`: {text}." for m, text in METHODS.items()]
    path.write_text("\n".join(lines) + "\n")
    return path
