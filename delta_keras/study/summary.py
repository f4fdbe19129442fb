"""The study's summary: one flat record per run, the best point of each method, the targets.

Every figure of a record comes from `delta_keras.train.evaluate_model` (accuracy, and
`delta_keras.sim.count_macs` for MACs, densities and energy), so densities follow the one definition in
`delta_keras.layers.density`. What each field counts is in `COLUMNS`.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from delta_keras.files import write_json

SCHEMA = 1

# field -> what it counts (the report prints these definitions under its table)
COLUMNS = {
    "clip_accuracy": "test clips classified correctly, each clip alone",
    "video_accuracy": "test videos classified correctly, softmax averaged over the video's evaluation clips",
    "temporal_density_neuron": "nonzero changes x[t]-x[t-1] / elements of the MAC layers' inputs, frames t>=1 "
                               "(frame 0 not charged), weighted by neurons",
    "temporal_density_neuron_first": "as temporal_density_neuron, frame 0 charged for its nonzero activations",
    "temporal_density_mac": "zero_delta MACs / dense MACs over frames t>=1 (frame 0 not charged): "
                            "temporal density weighted by the MACs each element triggers",
    "temporal_density_mac_first": "zero_delta MACs / dense MACs over all frames, frame 0 charged "
                                  "(= 1 / reduction_zero_delta)",
    "spatial_density_neuron": "nonzero activations / elements of the MAC layers' inputs, all frames, by neurons",
    "spatial_density_mac": "zero_activation MACs / dense MACs (= 1 / reduction_zero_activation)",
    "sparsity_layer_temporal_density": "nonzero temporal changes / elements of the sparsity layers' outputs "
                                       "(DeltaActivation, ActivitySparsity), frames t>=1, by neurons, over the whole "
                                       "test evaluation: the figure the paper reports; none for the dense models",
    "dense_macs": "MACs per clip with nothing skipped (padding taps included)",
    "macs_zero_delta": "effective MACs per clip under delta inference (frame 0 charged in full)",
    "macs_zero_activation": "effective MACs per clip skipping zero activations",
    "reduction_zero_delta": "dense_macs / macs_zero_delta",
    "reduction_zero_activation": "dense_macs / macs_zero_activation",
    "energy_uj_zero_delta": "energy estimate per clip under zero_delta, microjoules (delta_keras.sim.energy: "
                            "int8 MACs, 32 KB SRAM traffic, delta state; Horowitz 45 nm)",
    "energy_uj_dense": "the same energy model with nothing skipped",
    "train_time_s": "wall time of the run (training + its final evaluation); post-hoc: evaluation only",
}


def _per_clip(value: float, samples: int) -> float:
    return float(value) / max(samples, 1)


def padded_sum(arrays: list) -> np.ndarray:
    """Per-frame arrays of different lengths summed frame by frame (frame k over the arrays that have one): a
    layer that sees one frame per sample (a temporal convolution over a clip's features) has one entry."""
    total = np.zeros(max(len(a) for a in arrays))
    for array in arrays:
        total[:len(array)] += array
    return total


def mac_densities(macs: dict) -> dict:
    """MAC- and neuron-weighted densities of a `MacReport.to_dict()` (the ``macs`` entry of a run's results)."""
    layers = macs["layers"]
    dense_frames = padded_sum([layer["macs_per_frame"]["dense"] for layer in layers])
    delta_frames = padded_sum([layer["macs_per_frame"]["zero_delta"] for layer in layers])
    sizes = np.array([layer["input_size"] for layer in layers], float)

    def neuron(key):
        return float(np.dot([layer[key] for layer in layers], sizes) / sizes.sum())

    return {
        "temporal_density_neuron": neuron("delta_density"),
        "temporal_density_neuron_first": neuron("delta_density_first_charged"),
        "temporal_density_mac": float(delta_frames[1:].sum() / dense_frames[1:].sum()),
        "temporal_density_mac_first": float(delta_frames.sum() / dense_frames.sum()),
        "spatial_density_neuron": neuron("activation_density"),
        "spatial_density_mac": float(macs["totals"]["zero_activation"] / macs["totals"]["dense"]),
    }


def layer_rows(macs: dict) -> list[dict]:
    """Per MAC layer: its input densities and its share of the model's dense MACs."""
    total = macs["totals"]["dense"]
    rows = []
    for layer in macs["layers"]:
        dense = float(np.sum(layer["macs_per_frame"]["dense"]))
        rows.append({
            "name": layer["name"],
            "delta_density": layer["delta_density"],
            "delta_density_first_charged": layer["delta_density_first_charged"],
            "activation_density": layer["activation_density"],
            "zero_delta_fraction": float(np.sum(layer["macs_per_frame"]["zero_delta"])) / dense if dense else 0.0,
            "dense_share": dense / total if total else 0.0,
        })
    return rows


def run_record(name: str, method: str, params: dict, results: dict, train_time_s: float,
               run_dir: str | None = None) -> dict:
    """One flat record of a run, from `delta_keras.train.train`'s results (or `evaluate_model`'s)."""
    evaluation, macs = results["evaluation"], results["macs"]
    samples = macs["samples"]
    totals = macs["totals"]
    record = {
        "name": name,
        "method": method,
        **params,
        "clip_accuracy": evaluation["clip_accuracy"],
        "video_accuracy": evaluation["video_accuracy"],
        "test_clips": evaluation["clips"],
        "test_videos": evaluation["videos"],
        **mac_densities(macs),
        "dense_macs": _per_clip(totals["dense"], samples),
        "macs_zero_delta": _per_clip(totals["zero_delta"], samples),
        "macs_zero_activation": _per_clip(totals["zero_activation"], samples),
        "reduction_zero_delta": totals["dense"] / totals["zero_delta"],
        "reduction_zero_activation": totals["dense"] / totals["zero_activation"],
        "energy_uj_zero_delta": macs["energy_pj"]["zero_delta"] * 1e-6,
        "energy_uj_dense": macs["energy_pj"]["dense"] * 1e-6,
        "sparsity_layer_density": evaluation.get("density") or None,
        "sparsity_layer_temporal_density": (evaluation.get("density") or {}).get("delta_density"),
        "train_time_s": float(train_time_s),
        "mac_clips": samples,
        "layers": layer_rows(macs),
        "run_dir": run_dir,
    }
    return record


def best_points(runs: list[dict], tolerance: float = 0.01, policy: str = "zero_delta",
                metric: str = "video_accuracy") -> dict[str, dict]:
    """The best run of each method: the largest MAC reduction among runs within ``tolerance`` of the dense
    baseline's accuracy; a method with no such run gives its most accurate run (marked ``within=False``)."""
    dense = [r for r in runs if r["method"] == "dense"]
    reference = dense[0][metric] if dense else max(r[metric] for r in runs)
    best = {}
    for method in dict.fromkeys(r["method"] for r in runs):
        members = [r for r in runs if r["method"] == method]
        within = [r for r in members if r[metric] >= reference - tolerance - 1e-9]
        if within:
            chosen = max(within, key=lambda r: r[f"reduction_{policy}"])
        else:
            chosen = max(members, key=lambda r: (r[metric], r[f"reduction_{policy}"]))
        best[method] = {"name": chosen["name"], "within_tolerance": bool(within)}
    return best


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points (reduction, accuracy) no other point beats in both, by increasing reduction."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front, best_accuracy = [], -math.inf
    for i in order:
        if points[i][1] > best_accuracy:
            front.append(i)
            best_accuracy = points[i][1]
    return sorted(front, key=lambda i: points[i][0])


def targets(runs: list[dict], tolerance: float = 0.01, metric: str = "video_accuracy", posthoc_target: float = 3.0,
            dense_target: float | None = None) -> dict:
    """The study's targets under ``zero_delta``, measured.

    1. DeltaActivation (either training mode) reaches >= 10x fewer effective MACs than the dense baseline with
       at most ``tolerance`` accuracy lost. Two readings are checked: against the baseline's dense MAC count
       (``reduction_zero_delta``), and against the baseline's own effective MACs under delta inference
       (float activations: only exact repeats, e.g. ReLU zeros in both frames, are skipped).
    2. At the same accuracy, >= ``posthoc_target`` x fewer effective MACs than post-hoc delta inference: the
       best delta point against the post-hoc point with at least its accuracy and the fewest MACs (if no
       post-hoc point is that accurate, against the most accurate post-hoc point, and ``same_accuracy`` is False).
    3. With ``dense_target``: the dense baseline reaches that accuracy.
    """
    by_method = lambda m: [r for r in runs if r["method"] == m]  # noqa: E731
    dense = by_method("dense")
    delta = by_method("delta_refine") + by_method("delta_memory_refine") + by_method("delta_scratch")
    if not dense or not delta:
        return {}
    dense = dense[0]
    within = [r for r in delta if r[metric] >= dense[metric] - tolerance - 1e-9]
    best = max(within, key=lambda r: r["reduction_zero_delta"]) if within else max(delta, key=lambda r: r[metric])
    result = {
        "tolerance": tolerance,
        "metric": metric,
        "best_delta": best["name"],
        "best_delta_within_tolerance": bool(within),
        "accuracy_lost": dense[metric] - best[metric],
        "reduction_vs_dense_macs": best["reduction_zero_delta"],
        "reduction_vs_baseline_effective": dense["macs_zero_delta"] / best["macs_zero_delta"],
    }
    longer = by_method("dense_refine")
    if longer:
        result["dense_refine_accuracy"] = longer[0][metric]
        result["accuracy_lost_vs_dense_refine"] = longer[0][metric] - best[metric]
        # The stricter reading: the baseline given the refinements' extra epochs too.
        strict = [r for r in delta if r[metric] >= longer[0][metric] - tolerance - 1e-9]
        if strict:
            chosen = max(strict, key=lambda r: r["reduction_zero_delta"])
            result["best_delta_vs_dense_refine"] = chosen["name"]
            result["reduction_vs_dense_macs_vs_dense_refine"] = chosen["reduction_zero_delta"]
        result["target_10x_met_vs_dense_refine"] = bool(strict) and result.get(
            "reduction_vs_dense_macs_vs_dense_refine", 0) >= 10
    result["target_10x_met"] = bool(within) and best["reduction_zero_delta"] >= 10
    result["target_10x_met_vs_baseline_effective"] = bool(within) and result["reduction_vs_baseline_effective"] >= 10
    posthoc = by_method("posthoc") + by_method("posthoc_memory")  # the best post-hoc method, whichever it is
    if posthoc:
        as_good = [r for r in posthoc if r[metric] >= best[metric] - 1e-9]
        reference = (min(as_good, key=lambda r: r["macs_zero_delta"]) if as_good
                     else max(posthoc, key=lambda r: (r[metric], -r["macs_zero_delta"])))
        result.update({
            "posthoc_reference": reference["name"],
            "same_accuracy": bool(as_good),
            "reduction_vs_posthoc": reference["macs_zero_delta"] / best["macs_zero_delta"],
        })
        result["posthoc_target"] = posthoc_target
        result["target_posthoc_met"] = (bool(within) and bool(as_good)
                                        and result["reduction_vs_posthoc"] >= posthoc_target)
    if dense_target is not None:
        result.update(dense_target=dense_target, target_dense_met=dense[metric] >= dense_target)
    return result


def headline_spread(runs: list[dict], seed_runs: list[dict], seed: int) -> list[dict]:
    """The headline rows over seeds: each row of ``runs`` that was run again with other seeds (``seed_runs``,
    named ``<row>-seed<k>``), with its video accuracy and zero_delta reduction per seed (``seed`` is the
    study's own), their mean and range.

    Returns:
        ``[{"name", "method", "seeds": [{"seed", "video_accuracy", "reduction_zero_delta"}], "mean_video_accuracy",
        "video_accuracy_range", "mean_reduction_zero_delta", "reduction_range"}]``.
    """
    rows = []
    for run in runs:
        again = [r for r in seed_runs if r["name"] == f"{run['name']}-seed{r['seed']}"]
        if not again:
            continue
        points = [{"seed": seed, **{k: run[k] for k in ("video_accuracy", "reduction_zero_delta")}}] + [
            {"seed": r["seed"], **{k: r[k] for k in ("video_accuracy", "reduction_zero_delta")}} for r in again]
        accuracy = [p["video_accuracy"] for p in points]
        reduction = [p["reduction_zero_delta"] for p in points]
        rows.append({"name": run["name"], "method": run["method"], "seeds": points,
                     "mean_video_accuracy": float(np.mean(accuracy)),
                     "video_accuracy_range": [min(accuracy), max(accuracy)],
                     "mean_reduction_zero_delta": float(np.mean(reduction)),
                     "reduction_range": [min(reduction), max(reduction)]})
    return rows


def write_summary(path: str | os.PathLike, summary: dict) -> Path:
    """Writes the summary as strict JSON, atomically and never over a file the package did not write
    (`delta_keras.files.write_json`); the report and plots read it back."""
    return write_json(path, summary)


def read_summary(path: str | os.PathLike) -> dict:
    """Reads a ``summary.json`` (a file or the study folder holding it)."""
    path = Path(path)
    return json.loads((path / "summary.json" if path.is_dir() else path).read_text())
