"""`MacReport`: what `count_macs` found, as a table, JSON/CSV, figures, TensorBoard scalars and summaries."""

from __future__ import annotations

import csv
import dataclasses
import os

import numpy as np

from delta_keras.layers import density
from delta_keras.sim.energy import EnergyModel, traffic


@dataclasses.dataclass
class StageCount:
    """Counts of one linear stage of a layer; per-frame arrays are summed over samples.

    Attributes:
        name: stage name (``""`` for single-stage layers).
        macs: ``{policy: int64 array (frames,)}``.
        input_nonzero, input_changed: nonzero entries and nonzero changes (frame 0: its activations) per frame.
        input_size, output_size: entries of one input / output frame.
        weights: kernel entries.
        all_ones_macs: MACs of one all-ones frame (NeuroBench's ``Dense``: padding taps excluded).
        ternary: whether every input was in {-1, 0, 1} (NeuroBench counts such MACs as ACs).
        samples: clips counted.
    """

    name: str
    macs: dict
    input_nonzero: np.ndarray
    input_changed: np.ndarray
    input_size: int
    output_size: int
    weights: int
    all_ones_macs: int
    ternary: bool
    samples: int


@dataclasses.dataclass
class LayerCount:
    """Counts of one call of a MAC layer: its stages, and its layout (``"folded"``, ``"time"`` or ``"sample"``)."""

    name: str
    kind: str
    layout: str
    samples: int
    stages: list

    def macs(self, policy: str) -> np.ndarray:
        """Per-frame MACs (summed over samples and stages)."""
        return sum(stage.macs[policy] for stage in self.stages)

    def densities(self) -> dict:
        """Density of the layer's input (`delta_keras.layers.density` definitions): activation density,
        delta density (frames t >= 1) and delta density with frame 0 charged."""
        first = self.stages[0]
        frame = first.input_size * first.samples
        frames = len(first.input_nonzero)
        return density.densities({
            "nonzero_activations": first.input_nonzero.sum(),
            "activations": frame * frames,
            "nonzero_deltas": first.input_changed[1:].sum(),
            "deltas": frame * (frames - 1),
            "nonzero_first_frame": first.input_nonzero[0],
            "first_frame": frame,
        })


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def _reduction_cell(dense: float, kept: float) -> str:
    """A table cell for ``dense / kept``: ``all`` where nothing is kept (not ``inf``)."""
    return "all" if kept == 0 and dense > 0 else f"{_ratio(dense, kept):.2f}"


@dataclasses.dataclass
class MacReport:
    """Exact MAC counts of a clip model, per layer, frame and policy (returned by `count_macs`).

    Attributes:
        layers: `LayerCount` per counted MAC layer call, in graph order.
        uncounted: ``{layer: reason}`` for MAC layers the simulator could not count.
        policies: the policies reported.
        granularity: the skipping granularity counted.
        samples, frames: clips counted and frames per clip.
        activation_nonzero, activation_size: nonzero and total outputs of activation layers (NeuroBench).
        clip_macs: ``{policy: MACs of each clip}`` (arrays of ``samples`` entries, in the order of the clips),
            so a study can show the spread over clips or videos.
    """

    layers: list
    uncounted: dict
    policies: tuple
    granularity: str
    samples: int
    frames: int
    activation_nonzero: float
    activation_size: float
    clip_macs: dict = dataclasses.field(default_factory=dict)

    def total(self, policy: str) -> float:
        """Total MACs over layers, frames and samples."""
        return float(sum(layer.macs(policy).sum() for layer in self.layers))

    def reduction(self, policy: str) -> float:
        """``dense / policy`` MACs over the whole model."""
        return _ratio(self.total("dense"), self.total(policy))

    def clip_reductions(self, policy: str) -> np.ndarray:
        """``dense / policy`` MACs of each clip (one entry a clip, in the order counted)."""
        with np.errstate(divide="ignore"):  # a clip that triggers no MAC saves them all: infinity
            return self.clip_macs["dense"] / self.clip_macs[policy]

    def rows(self) -> list[dict]:
        """One dict per layer (MACs per sample), then a ``"total"`` row."""
        rows = []
        for layer in self.layers:
            row = {"layer": layer.name, "type": layer.kind, **layer.densities()}
            for policy in self.policies:
                row[policy] = float(layer.macs(policy).sum()) / self.samples
            rows.append(row)
        total = {"layer": "total", "type": ""}
        total.update({p: self.total(p) / self.samples for p in self.policies})
        return rows + [total]

    def table(self) -> str:
        """A readable per-layer table: MACs per sample under each policy, reduction vs dense, input density."""
        shown = [p for p in self.policies if p != "dense"]
        header = ["layer", "type", "dense"] + shown + [f"x {p}" for p in shown] + ["act.dens", "delta.dens"]
        lines = []
        for row in self.rows():
            cells = [row["layer"], row["type"], _human(row.get("dense", np.nan))]
            cells += [_human(row[p]) for p in shown]
            cells += [_reduction_cell(row.get("dense", np.nan), row[p]) for p in shown]
            cells += [f"{row[k]:.3f}" if k in row else "" for k in ("activation_density", "delta_density_first_charged")]
            lines.append(cells)
        widths = [max(len(str(c)) for c in col) for col in zip(header, *lines)]
        fmt = lambda cells: "  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)  # noqa: E731
                                      for i, (c, w) in enumerate(zip(cells, widths)))
        out = [f"MACs per sample, {self.samples} sample(s) x {self.frames} frames, granularity {self.granularity}",
               fmt(header), fmt(["-" * w for w in widths])]
        out += [fmt(cells) for cells in lines[:-1]] + [fmt(["-" * w for w in widths]), fmt(lines[-1])]
        out += [f"uncounted: {name} ({reason})" for name, reason in self.uncounted.items()]
        if any(row[p] == 0 < row.get("dense", 0) for row in self.rows() for p in shown):
            out.append("all: every MAC of the layer skipped under that policy (no reduction factor exists)")
        dead = self.dead_layers()
        if dead:
            out.append(f"warning: {len(dead)} of {len(self.layers)} MAC layers received no nonzero input on any frame "
                       f"({', '.join(dead)}): a network dead there skips those MACs trivially")
        return "\n".join(out)

    def dead_layers(self) -> list[str]:
        """The MAC layers whose input was zero everywhere (every frame, every sample): a dead network skips
        their MACs under every policy, which says nothing of what a working one would save."""
        return [layer.name for layer in self.layers if not layer.stages[0].input_nonzero.any()]

    def __str__(self) -> str:
        return self.table()

    def to_dict(self) -> dict:
        """Everything, JSON-ready: per-layer per-frame MACs (summed over samples), totals, summaries."""
        layers = []
        for layer in self.layers:
            layers.append({
                "name": layer.name,
                "type": layer.kind,
                "layout": layer.layout,
                **layer.densities(),
                "macs_per_frame": {p: layer.macs(p).tolist() for p in self.policies},
                "input_nonzero_per_frame": layer.stages[0].input_nonzero.tolist(),
                "input_changed_per_frame": layer.stages[0].input_changed.tolist(),
                "input_size": layer.stages[0].input_size,
            })
        return {
            "samples": self.samples,
            "frames": self.frames,
            "granularity": self.granularity,
            "policies": list(self.policies),
            "totals": {p: self.total(p) for p in self.policies},
            "layers": layers,
            "uncounted": self.uncounted,
            "neurobench": self.neurobench(),
            "energy_pj": {p: self.energy(p)["energy_pj"] for p in self.policies},
        }

    def to_json(self, path: str | os.PathLike) -> None:
        """Writes `to_dict` as strict JSON (`delta_keras.files.write_json`: never over a file it did not write)."""
        from delta_keras.files import write_json  # noqa: PLC0415

        write_json(path, self.to_dict())

    def to_csv(self, path: str | os.PathLike) -> None:
        """The table's rows (MACs per sample) as CSV."""
        rows = self.rows()
        fields = list(dict.fromkeys(k for row in rows for k in row))
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    def neurobench(self) -> dict:
        """NeuroBench's workload metrics, per sample (a clip).

        ``ActivationSparsity``: zeros / outputs of activation layers, over layers, frames and samples.
        ``Dense``: MACs with every input and weight set to one (padding taps not counted).
        ``Effective_MACs`` / ``Effective_ACs``: MACs skipping zero inputs and zero weights (policy
        ``both``); a layer whose inputs are all in {-1, 0, 1} counts as ACs.
        """
        stages = [s for layer in self.layers for s in layer.stages]
        effective = {True: 0.0, False: 0.0}
        for stage in stages:
            effective[stage.ternary] += float(stage.macs["both"].sum())
        dense = sum(s.all_ones_macs * len(s.input_nonzero) for s in stages)
        return {
            "ActivationSparsity": 1.0 - self.activation_nonzero / self.activation_size if self.activation_size else 0.0,
            "Dense": dense,
            "Effective_MACs": effective[False] / self.samples,
            "Effective_ACs": effective[True] / self.samples,
        }

    def energy(self, policy: str, model: EnergyModel | None = None) -> dict:
        """Memory traffic and energy per sample under ``policy`` (see `delta_keras.sim.energy`)."""
        model = model or EnergyModel()
        stages = [s for layer in self.layers for s in layer.stages]
        totals = {}
        for stage in stages:
            for key, value in traffic(stage, policy).items():
                totals[key] = totals.get(key, 0.0) + value / self.samples
        totals["energy_pj"] = model.energy_pj(totals)
        totals["state_bytes"] = sum(model.state_bytes(s) for s in stages) if policy == "zero_delta" else 0.0
        return totals

    def plot(self, path: str | os.PathLike | None = None):
        """Per-layer reduction bars (dense / policy) and input density over frames; saved to ``path`` if given.

        Returns:
            The matplotlib `Figure` (Agg backend: no display needed).
        """
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        shown = [p for p in self.policies if p != "dense"]
        fig, (bars, curves) = plt.subplots(2, 1, figsize=(max(8, len(self.layers) * 0.3), 8))
        x = np.arange(len(self.layers))
        width = 0.8 / max(len(shown), 1)
        for i, policy in enumerate(shown):
            ratios = [_ratio(layer.macs("dense").sum(), layer.macs(policy).sum()) for layer in self.layers]
            bars.bar(x + i * width, np.minimum(ratios, 1e3), width, label=policy)
        bars.set_xticks(x + 0.4 - width / 2, [layer.name for layer in self.layers], rotation=90, fontsize=6)
        bars.set_yscale("log")
        bars.set_ylabel("MAC reduction (dense / policy)")
        bars.legend(fontsize=7)
        for layer in self.layers:
            first = layer.stages[0]
            if len(first.input_changed) > 1:
                curves.plot(first.input_changed / (first.input_size * first.samples), alpha=0.5, lw=1)
        curves.set_xlabel("frame")
        curves.set_ylabel("input change density per layer\n(frame 0: activation density)")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig

    def write_tensorboard(self, logdir_or_writer, step: int = 0, prefix: str = "sim") -> None:
        """Writes scalars: ``<prefix>/<layer>/macs_<policy>`` and ``<prefix>/total/...`` (per sample),
        ``reduction_<policy>`` and the NeuroBench summary."""
        import tensorflow as tf

        writer = (tf.summary.create_file_writer(str(logdir_or_writer))
                  if isinstance(logdir_or_writer, (str, os.PathLike)) else logdir_or_writer)
        with writer.as_default():
            for row in self.rows():
                for policy in self.policies:
                    tf.summary.scalar(f"{prefix}/{row['layer']}/macs_{policy}", row[policy], step=step)
            for policy in self.policies:
                tf.summary.scalar(f"{prefix}/total/reduction_{policy}", self.reduction(policy), step=step)
            for key, value in self.neurobench().items():
                tf.summary.scalar(f"{prefix}/neurobench/{key}", value, step=step)
        writer.flush()


def _human(value: float) -> str:
    """MAC counts with a unit prefix: 568.74M, 3.86G, 900."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"
