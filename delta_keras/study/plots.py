"""The study's figures, drawn from its summary alone (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402

from delta_keras.study.summary import pareto_front  # noqa: E402

LABELS = {
    "dense": "dense baseline",
    "posthoc": "post-hoc delta (fixed step)",
    "posthoc_memory": "post-hoc delta with memory (calibrated thresholds)",
    "delta_memory_refine": "DeltaActivation with memory, refined",
    "dense_refine": "dense, trained as long as refinements",
    "l1": "L1 activity (spatial)",
    "delta_refine": "DeltaActivation, refined",
    "delta_scratch": "DeltaActivation, from scratch",
}
MARKERS = {"dense": "*", "dense_refine": "P", "posthoc": "s", "posthoc_memory": "X", "l1": "^", "delta_refine": "o",
           "delta_memory_refine": "v", "delta_scratch": "D"}
FIGURES = {"pareto": "pareto.png", "layers": "layer_density.png", "real_clip": "real_clip_density.png"}


def _methods(runs):
    return list(dict.fromkeys(r["method"] for r in runs))


def plot_pareto(summary: dict, path: str | os.PathLike, metric: str = "video_accuracy") -> Path:
    """Accuracy against effective-MAC reduction, zero_delta and zero_activation side by side: every run a
    marker, each method's Pareto front a line."""
    runs = summary["runs"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, policy in zip(axes, ("zero_delta", "zero_activation")):
        for method in _methods(runs):
            members = [r for r in runs if r["method"] == method]
            points = [(r[f"reduction_{policy}"], 100 * r[metric]) for r in members]
            line = ax.scatter(*zip(*points), marker=MARKERS.get(method, "o"), s=80 if method == "dense" else 36,
                              label=LABELS.get(method, method), alpha=0.8, zorder=3)
            front = pareto_front(points)
            if len(front) > 1:
                ax.plot([points[i][0] for i in front], [points[i][1] for i in front], color=line.get_facecolor()[0],
                        lw=1.2, zorder=2)
        dense = [r for r in runs if r["method"] == "dense"]
        if dense:
            tolerance = 100 * summary["study"].get("tolerance", 0.01)
            ax.axhline(100 * dense[0][metric] - tolerance, color="grey", ls=":", lw=1,
                       label=f"baseline - {tolerance:g} point")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%gx"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%gx"))
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_xlabel(f"effective-MAC reduction, {policy} (dense MACs / effective MACs)")
        ax.set_title(policy)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel(f"{metric.replace('_', ' ')} (%)")
    axes[1].legend(fontsize=7, loc="lower left")
    return _save(fig, path)


def plot_layers(summary: dict, path: str | os.PathLike) -> Path:
    """Per MAC layer, the temporal density of its input (frames t >= 1) at the best point of each method,
    and each layer's share of the dense MACs."""
    by_name = {r["name"]: r for r in summary["runs"]}
    best = summary["best"]
    names = [layer["name"] for layer in by_name[next(iter(best.values()))["name"]]["layers"]]
    fig, ax = plt.subplots(figsize=(max(7, 0.5 * len(names) * len(best) / 2) + 4, 4))
    width = 0.8 / (len(best) + 1)
    x = range(len(names))
    for i, (method, point) in enumerate(best.items()):
        layers = by_name[point["name"]]["layers"]
        ax.bar([j + i * width for j in x], [layer["delta_density"] for layer in layers], width,
               label=f"{LABELS.get(method, method)} ({point['name']})")
    ax.bar([j + len(best) * width for j in x], [layer["dense_share"] for layer in by_name[best[next(iter(best))]["name"]]["layers"]],
           width, color="lightgrey", edgecolor="grey", label="share of dense MACs")
    ax.set_xticks([j + 0.4 - width / 2 for j in x], names, rotation=60, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("input temporal density\n(nonzero changes / elements, t >= 1)")
    ax.set_ylim(bottom=1e-4)
    _legend_outside(ax)
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)


def plot_real_clip(summary: dict, path: str | os.PathLike) -> Path:
    """MAC-weighted density (zero_delta MACs / dense MACs) over the frames of a real clip, best point of
    each method; frame 0 is charged for its nonzero activations."""
    real = summary["real_clip"]
    fig, ax = plt.subplots(figsize=(10, 3.8))
    for method, values in real["densities"].items():
        ax.plot(values["mac_weighted"], marker=MARKERS.get(method, "o"), ms=3, lw=1.2,
                label=f"{LABELS.get(method, method)} ({values['name']})")
    ax.set_yscale("log")
    ax.set_xlabel("frame")
    ax.set_ylabel("zero_delta MACs / dense MACs")
    ax.set_title(f"{Path(real['path']).name}: density over frames (frame 0 charged in full)", fontsize=9)
    _legend_outside(ax)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, path)


def _legend_outside(ax) -> None:
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))


def _save(fig, path: str | os.PathLike) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def plot_all(summary: dict, folder: str | os.PathLike) -> dict[str, str]:
    """Draws every figure the summary allows into ``folder``; returns ``{figure: file name}``."""
    folder = Path(folder)
    drawn = {"pareto": plot_pareto(summary, folder / FIGURES["pareto"]).name,
             "layers": plot_layers(summary, folder / FIGURES["layers"]).name}
    if summary.get("real_clip"):
        drawn["real_clip"] = plot_real_clip(summary, folder / FIGURES["real_clip"]).name
    return drawn
