"""`run_study`: every method of the study on the same backbone, data and budget, then summary and plots."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path

import keras
import numpy as np

from delta_keras.data import read_clip
from delta_keras.files import atomic_save, claim_folder, write_json
from delta_keras.study import methods, whole_clips
from delta_keras.study.summary import SCHEMA, best_points, headline_spread, run_record, targets, write_summary
from delta_keras.train import ConfigError, SparsityConfig, TrainConfig, evaluate_model, train
from delta_keras.train import builders
from delta_keras.train.run_folder import RunFolder, load_model_from

ALL_METHODS = ("dense", "posthoc", "posthoc_memory", "dense_refine", "l1", "delta_refine", "delta_memory_refine",
               "delta_scratch")
# With `StudyConfig.refine_from_posthoc`: the post-hoc kind each refinement starts from, and where its model is.
START_POINTS = {"delta_refine": "posthoc", "delta_memory_refine": "posthoc_memory"}
START_FOLDERS = {"posthoc": "posthoc-start", "posthoc_memory": "posthoc-memory-start"}
# Marks the study's own post-hoc folders (records, start models), which a rerun replaces.
POSTHOC_MARKER = ".delta_keras-posthoc"


@dataclasses.dataclass
class StudyConfig:
    """What a study runs.

    ``base`` fixes the data, backbone and budget shared by every run (its ``sparsity`` and ``logdir`` are
    ignored). The dense baseline and ``delta_scratch`` train ``dense_epochs`` epochs; the refinements (``l1``,
    ``delta_refine``) start from the baseline and train ``refine_epochs`` more, and so does ``dense_refine``
    (the baseline trained as long, without sparsity). Post-hoc conversion is applied to both dense models
    (runs named ``...-of-dense-refine`` for the second), so it gets the same training as the refinements.

    With ``refine_from_posthoc``, ``delta_refine`` starts from the post-hoc fixed-step point and
    ``delta_memory_refine`` from the post-hoc memory point chosen on the selection set (`START_POINTS`):
    refinement then has to beat what calibration alone reached, from where calibration left it. With
    ``whole_clips``, every model is measured on whole test videos instead of the training's evaluation clips.
    """

    base: TrainConfig
    out: str = "results/study"
    methods: tuple = ALL_METHODS
    dense_epochs: int = 12
    refine_epochs: int = 6
    refine_learning_rate: float = 1e-3
    posthoc_steps: tuple = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
    posthoc_agreements: tuple = (0.99, 0.97, 0.95)
    posthoc_thresholds: tuple = (0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
    l1_weights: tuple = (1e-4, 1e-3)
    delta_weights: tuple = (1e-3, 3e-3, 1e-2)
    # Memory mode's penalty counts changes in thresholds (half a step): a weight means more there.
    memory_weights: tuple = (0.0, 1e-4, 3e-4)
    step_gradients: tuple = ("lsq", "paper")
    scratch_step_gradients: tuple = ("lsq",)
    step_init: float = 0.5
    input_step_init: float | None = None
    tolerance: float = 0.01
    real_clip: str | None = None
    real_clip_frames: int = 32
    # The targets: the best delta point against the best post-hoc point (x fewer MACs); the dense accuracy.
    posthoc_target: float = 3.0
    dense_target: float | None = None
    # Other seeds of the headline rows (dense, each post-hoc kind's chosen point, the best DeltaActivation
    # point), each trained or converted again with that seed: the spread of what the study reports.
    headline_seeds: tuple = ()
    # At most this many selection videos in the memory calibration's agreement test (None: all).
    calibration_videos: int | None = None
    # Evaluate every model on whole test videos (`delta_keras.study.whole_clips`; file datasets only).
    whole_clips: bool = False
    # The refinements start from the post-hoc point chosen on the selection set (its steps or thresholds).
    refine_from_posthoc: bool = False

    def runs(self) -> list[tuple[str, str, dict, TrainConfig | None]]:
        """``(name, method, params, config)`` of every run in order (``config`` None for post-hoc points): the
        dense baseline and its post-hoc points, the trained sparse methods, then ``dense_refine`` and its
        post-hoc points."""
        out = Path(self.out)
        base = dataclasses.replace(self.base, sparsity="none", sparsity_weight=None, step_init=None, granularity=None,
                                   step_gradient=None, init_from=None, resume=False)
        # The dense models have no sparsity layer: every sparsity setting at its default (a study's step rate or
        # loss normalisation does not make its dense baseline another run).
        no_sparsity = {f.name: f.default for f in dataclasses.fields(SparsityConfig)}
        dense_base = dataclasses.replace(base, **no_sparsity)
        dense = dataclasses.replace(dense_base, epochs=self.dense_epochs, logdir=str(out / "dense"))
        refine = dict(epochs=self.refine_epochs, learning_rate=self.refine_learning_rate, init_from=dense.logdir)

        def posthoc(base_run: str) -> list:
            suffix = "" if base_run == "dense" else f"-of-{base_run}"
            points = []
            if "posthoc" in self.methods:
                points += [(f"posthoc-q{q:g}{suffix}", "posthoc", {"step": q, "base": base_run}, None)
                           for q in self.posthoc_steps]
            if "posthoc_memory" in self.methods:
                points += [(f"posthoc-memory-a{a:g}{suffix}", "posthoc_memory", {"agreement": a, "base": base_run},
                            None) for a in self.posthoc_agreements]
            return points

        runs = [("dense", "dense", {}, dense), *posthoc("dense")]
        if "l1" in self.methods:
            for w in self.l1_weights:
                runs.append((f"l1-w{w:g}", "l1", {"sparsity_weight": w},
                             dataclasses.replace(base, sparsity="l1", sparsity_weight=w, logdir=str(out / f"l1-w{w:g}"),
                                                 **refine)))
        for method, gradients, extra in (("delta_refine", self.step_gradients, refine),
                                         ("delta_memory_refine", ("lsq",), {**refine, "memory": True}),
                                         ("delta_scratch", self.scratch_step_gradients, {"epochs": self.dense_epochs})):
            if method not in self.methods:
                continue
            for gradient in gradients:
                memory = extra.get("memory", False)
                step_init = self.step_init * (methods.MEMORY_THRESHOLD_PER_STEP if memory else 1.0)
                start = START_POINTS.get(method) if self.refine_from_posthoc else None
                if start:
                    extra = {**extra, "init_from": str(out / START_FOLDERS[start] / "model.keras")}
                for w in self.memory_weights if memory else self.delta_weights:
                    name = f"{method.replace('_', '-')}-{gradient}-w{w:g}"
                    config = dataclasses.replace(base, sparsity="delta", sparsity_weight=w, step_init=step_init,
                                                 step_gradient=gradient, logdir=str(out / name),
                                                 **methods.input_quantiser(self.input_step_init, memory), **extra)
                    params = {"sparsity_weight": w, "step_gradient": gradient, **({"start": start} if start else {})}
                    runs.append((name, method, params, config))
        # Last: what the refinements' extra epochs alone give (the sparse runs, the study's point, come first).
        if "dense_refine" in self.methods:
            runs += [("dense-refine", "dense_refine", {},
                      dataclasses.replace(dense_base, logdir=str(out / "dense-refine"), **refine)),
                     *posthoc("dense-refine")]
        return runs

    def validate(self) -> None:
        """Raises ValueError for settings that cannot run together."""
        for method, start in START_POINTS.items():
            if self.refine_from_posthoc and method in self.methods and start not in self.methods:
                raise ValueError(f"refine_from_posthoc: {method} starts from a {start} point; add {start} to the methods")
        if self.base.seed in self.headline_seeds:
            raise ValueError(f"headline_seeds: {self.base.seed} is the study's own seed")
        if self.calibration_videos is not None and self.calibration_videos < 1:
            raise ValueError(f"calibration_videos must be >= 1, got {self.calibration_videos}")
        if self.whole_clips and self.base.dataset not in ("ucf101", "folder"):
            raise ValueError(f"whole_clips: needs video files (--dataset ucf101 or folder), not {self.base.dataset}")

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["base"] = self.base.to_dict()
        return values


def _cached(config: TrainConfig) -> dict | None:
    """The results of a run already completed in its folder (a study can be rerun after an interruption)."""
    path = Path(config.logdir) / "results.json"
    if not path.is_file():
        return None
    results = json.loads(path.read_text())
    try:  # settings added since the run was written take their defaults
        saved = TrainConfig.from_dict(results.get("config", {}))
    except (ConfigError, TypeError):
        return None
    return results if not config.differences(saved, ignore=("resume",)) else None


def _selection(config: TrainConfig) -> tuple[TrainConfig, str, int]:
    """Where post-hoc steps and thresholds are chosen, never the test set: ``(config, split, most videos)``.
    Synthetic test videos of another seed (unseen); a class folder's validation part; for UCF101, which has no
    third split, the training videos' centre clips."""
    if config.dataset == "synthetic":
        return dataclasses.replace(config, seed=config.seed + 1000), "test", config.synthetic_test_videos
    return config, "validation" if config.dataset == "folder" else "train", 512


def _selection_clips(config: TrainConfig, videos: int | None = None) -> np.ndarray:
    """The centre clips of the selection videos (see `_selection`), as one array: of all, or of the first
    ``videos`` of each class in turn (a class-balanced sample)."""
    selection, split, limit = _selection(config)
    per_class = math.ceil(videos / builders.num_classes(config)) if videos else None
    dataset = builders.clip_source(selection, split, training=False, videos_per_class=per_class)
    dataset = dataset.take(min(limit, videos or limit)).batch(64)
    return np.concatenate([np.asarray(clips) for clips, _ in dataset])


def _selection_accuracy(model: keras.Model, config: TrainConfig) -> float:
    from delta_keras.train import evaluate_clips  # noqa: PLC0415

    selection, split, limit = _selection(config)
    dataset = builders.clip_source(selection, split, training=False, clips_per_video=1, with_video_id=True)
    return evaluate_clips(model, dataset.take(limit).batch(config.batch_size))["video_accuracy"]


def real_clip_density(model: keras.Model, clip: np.ndarray) -> dict:
    """Density over the frames of one real clip: MAC-weighted (zero_delta / dense MACs per frame) and
    neuron-weighted (nonzero input changes / inputs of the MAC layers per frame; frame 0: nonzero activations).

    Raises:
        ValueError: ``model`` was built for clips of another fixed length (models now take any length).
    """
    from delta_keras import sim  # noqa: PLC0415

    frames = model.inputs[0].shape[1]
    if frames not in (None, clip.shape[1]):
        raise ValueError(f"{model.name} takes clips of {frames} frames only, not the real clip's {clip.shape[1]} "
                         "(a checkpoint from before models took clips of any length: rerun its training)")
    report = sim.count_macs(model, clip, policies=("dense", "zero_activation", "zero_delta"))
    layers = report.layers
    dense = sum(layer.macs("dense") for layer in layers).astype(float)
    delta = sum(layer.macs("zero_delta") for layer in layers).astype(float)
    active = sum(layer.macs("zero_activation") for layer in layers).astype(float)
    changed = sum(layer.stages[0].input_changed for layer in layers).astype(float)
    size = float(sum(layer.stages[0].input_size * layer.samples for layer in layers))
    return {"mac_weighted": (delta / dense).tolist(), "spatial_mac_weighted": (active / dense).tolist(),
            "neuron_weighted": (changed / size).tolist()}


def _digest(path: Path) -> str | None:
    """A short hash of a file's bytes (None when there is none): what a cached measurement was made from."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else None


def chosen_point(records: list[dict], method: str, tolerance: float, base: str = "dense") -> dict | None:
    """The post-hoc point a deployed engine would pick on the selection set (never the test set): of the points
    of ``method`` converted from ``base`` whose selection accuracy stays within ``tolerance`` of the dense
    model's, the largest step (``posthoc``) or the lowest agreement target (``posthoc_memory``); None when
    no point stays within it."""
    points = [r for r in records if r["method"] == method and r["base"] == base
              and r["selection_accuracy"] >= r["dense_selection_accuracy"] - tolerance - 1e-9]
    if not points:
        return None
    return max(points, key=lambda r: r["step"]) if method == "posthoc" else min(points, key=lambda r: r["agreement"])


def _start_point(records: list[dict], method: str, tolerance: float, base: str = "dense") -> dict:
    """Where a refinement starts: the `chosen_point`, else the most faithful point (smallest step, highest
    agreement target)."""
    chosen = chosen_point(records, method, tolerance, base)
    if chosen is not None:
        return chosen
    points = [r for r in records if r["method"] == method and r["base"] == base]
    return min(points, key=lambda r: r["step"]) if method == "posthoc" else max(points, key=lambda r: r["agreement"])


def _cached_json(path: Path, key: dict) -> dict | None:
    """The ``value`` of a study file written with this ``key`` (what it was measured from), else None."""
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    return saved.get("value") if saved.get("key") == json.loads(json.dumps(key)) else None


class _StudyRun:
    """One invocation of a study: the records so far and what its runs share (the dense models, the selection
    clips, the whole test videos), each loaded when first needed."""

    def __init__(self, study: StudyConfig, verbose: int | str, log):
        self.study, self.verbose, self.log = study, verbose, log
        self.out = Path(study.out)
        self.records: list[dict] = []
        self.seed_records: list[dict] = []  # the headline rows with other seeds (`headline_seeds`)
        self.models: dict[str, object] = {}  # per run: a model, its run folder, or a post-hoc record to rebuild
        self.trained: dict[str, TrainConfig] = {}  # the dense models post-hoc conversion starts from, by run name
        self.base_models: dict[str, keras.Model] = {}
        self.base_selection: dict[str, float] = {}  # their selection accuracy
        self.references: dict[str, np.ndarray] = {}  # their predicted classes on the selection clips
        self.selection: np.ndarray | None = None
        self.videos: list | None = None
        # The input's step (fixed-step points) or threshold (memory: half the step, the same worst-case error).
        self.input_steps = {memory: methods.input_quantiser(study.input_step_init, memory)["input_step_init"]
                            for memory in (False, True)}

    # ------------------------------------------------------------------ shared pieces
    def base_model(self, name: str) -> keras.Model:
        if name not in self.base_models:
            self.base_models[name] = load_model_from(self.trained[name].logdir)[1]
        return self.base_models[name]

    def posthoc_model(self, point: dict) -> keras.Model:
        """The post-hoc model of a point (its step; with memory, its calibrated thresholds when it has them)."""
        memory = point["method"] == "posthoc_memory"
        step = point.get("step", min(self.study.posthoc_thresholds))
        model = methods.posthoc_delta_model(self.base_model(point["base"]), self.trained["dense"], step,
                                            self.input_steps[memory], memory=memory)
        for layer in methods.delta_layers(model):
            if layer.name in point.get("thresholds", {}):
                layer.step_variable.assign(point["thresholds"][layer.name])
        return model

    def measure(self, model: keras.Model, config: TrainConfig) -> dict:
        """Accuracy and MACs: on whole test videos, or as training evaluates."""
        if not self.study.whole_clips:
            return evaluate_model(model, config)
        if self.videos is None:
            self.videos = whole_clips.test_videos(config)
        return whole_clips.evaluate_whole_clips(model, config, self.videos)

    def write_start(self, kind: str, base: str, folder: Path) -> None:
        """Saves the post-hoc point of ``base`` a refinement starts from (`_start_point`) where its config points."""
        point = _start_point([*self.records, *self.seed_records], kind, self.study.tolerance, base)
        folder = claim_folder(folder, POSTHOC_MARKER)
        atomic_save(folder / "model.keras", self.posthoc_model(point).save)
        write_json(folder / "record.json", {"point": point["name"]})

    # ------------------------------------------------------------------ the two kinds of run
    def posthoc_point(self, name: str, method: str, params: dict) -> dict:
        """A post-hoc point (calibrated on the selection set when with memory), or its record from a rerun."""
        study, dense_config = self.study, self.trained[params["base"]]
        folder = self.out / name
        key = {"params": params, "dense_results": _digest(Path(dense_config.logdir) / "results.json"),
               "thresholds": study.posthoc_thresholds, "input_step": study.input_step_init,
               "calibration_videos": study.calibration_videos, "whole_clips": study.whole_clips}
        record = _cached_json(folder / "record.json", key)
        if record is not None:
            self.models[name] = record  # rebuilt only if it is a best point
            return record
        started = time.time()
        base = params["base"]
        if base not in self.base_selection:
            self.base_selection[base] = _selection_accuracy(self.base_model(base), dense_config)
        model = self.posthoc_model({"method": method, **params})
        if method == "posthoc_memory":
            params = {**params, "thresholds": self.calibrate(model, params)}
        results = self.measure(model, dense_config)
        params = {**params, "selection_accuracy": _selection_accuracy(model, dense_config),
                  "dense_selection_accuracy": self.base_selection[base]}
        record = run_record(name, method, params, results, time.time() - started)
        claim_folder(folder, POSTHOC_MARKER)
        write_json(folder / "record.json", {"key": key, "value": record})
        self.models[name] = model
        return record

    def calibrate(self, model: keras.Model, params: dict) -> dict[str, float]:
        """Per-layer thresholds keeping ``params["agreement"]`` with the base model on the selection clips."""
        if self.selection is None:
            self.selection = _selection_clips(self.trained["dense"], self.study.calibration_videos)
        base = params["base"]
        if base not in self.references:
            self.references[base] = self.base_model(base).predict(self.selection, batch_size=32, verbose=0).argmax(-1)
        # The input's threshold (pixel units) is calibrated too, on a grid around its step.
        input_step = self.input_steps[True]
        grids = ({methods.delta_layers(model)[0].name: tuple(input_step * f for f in (0.25, 0.5, 1.0, 2.0))}
                 if input_step else None)
        accept = methods.agreement_test(model, self.selection, self.references[base], params["agreement"])
        return methods.calibrate_thresholds(model, accept, self.study.posthoc_thresholds, grids)

    def trained_run(self, name: str, method: str, params: dict, config: TrainConfig) -> dict:
        """A trained run (resumed from its newest checkpoint if killed, reused if complete), measured."""
        start = Path(config.init_from).parent if params.get("start") else None  # the start model's folder
        results = _cached(config)
        if results is None:
            resume = RunFolder(config.logdir).last_checkpoint() is not None
            if start and not resume:
                self.write_start(params["start"], params.get("start_base", "dense"), start)
            config = dataclasses.replace(config, resume=resume, init_from=None if resume else config.init_from)
            results = train(config, command_line=["delta_keras.study", name], verbose=self.verbose)
        if start:
            record = start / "record.json"
            params = {**params, "start_point": json.loads(record.read_text())["point"] if record.is_file() else None}
        measured = results
        if self.study.whole_clips:
            path = Path(config.logdir) / "whole-clips.json"
            key = {"results": _digest(Path(config.logdir) / "results.json")}
            measured = _cached_json(path, key)
            if measured is None:
                measured = self.measure(load_model_from(config.logdir)[1], config)
                write_json(path, {"key": key, "value": measured})
            params = {**params, "clips_video_accuracy": results["evaluation"]["video_accuracy"]}
        if method in ("dense", "dense_refine"):
            self.trained[name] = config
        self.models[name] = config.logdir  # its checkpoint, loaded only if it is a best point
        return run_record(name, method, params, measured, results["wall_time_s"], config.logdir)

    # ------------------------------------------------------------------ other seeds
    def headline_seeds(self) -> list[dict]:
        """The headline rows again with each of ``headline_seeds``: the dense baseline, each post-hoc kind's
        chosen point (the same step or agreement target, on that seed's model) and the best DeltaActivation
        point (the same settings, from that seed's own post-hoc start). Records carry their ``seed``."""
        study = self.study
        best = targets(self.records, study.tolerance).get("best_delta")
        configs = {name: config for name, _, _, config in study.runs() if config is not None}
        kinds = [kind for kind in ("posthoc", "posthoc_memory") if kind in study.methods]
        points = [_start_point(self.records, kind, study.tolerance) for kind in kinds]
        for seed in study.headline_seeds:
            suffix = f"-seed{seed}"
            base = f"dense{suffix}"
            dense = dataclasses.replace(configs["dense"], seed=seed, logdir=str(self.out / base))
            runs = [(base, "dense", {"seed": seed}, dense)]
            runs += [(f"{point['name']}{suffix}", point["method"],
                      {**{k: point[k] for k in ("step", "agreement") if k in point}, "base": base, "seed": seed}, None)
                     for point in points]
            if best is not None:
                record = next(r for r in self.records if r["name"] == best)
                params = {k: record[k] for k in ("sparsity_weight", "step_gradient", "start") if k in record}
                start = params.get("start")
                init_from = (self.out / f"{START_FOLDERS[start]}{suffix}" / "model.keras") if start else dense.logdir
                config = dataclasses.replace(configs[best], seed=seed, logdir=str(self.out / f"{best}{suffix}"),
                                             init_from=str(init_from))
                runs.append((f"{best}{suffix}", record["method"],
                             {**params, "seed": seed, **({"start_base": base} if start else {})}, config))
            for name, method, params, config in runs:
                self.log(f"=== {name}")
                record = (self.posthoc_point(name, method, params) if config is None
                          else self.trained_run(name, method, params, config))
                self.seed_records.append(record)  # the next runs of this seed start from its post-hoc points
        return self.seed_records

    # ------------------------------------------------------------------ the summary
    def mark_chosen_posthoc(self) -> None:
        """Post-hoc delta inference as a deployed engine would choose it, per dense model converted."""
        for base in self.trained:
            chosen = chosen_point(self.records, "posthoc", self.study.tolerance, base)
            for r in self.records:
                if r["method"] == "posthoc" and r["base"] == base:
                    r["chosen_on_selection_set"] = r is chosen

    def real_clip_densities(self, best: dict) -> dict | None:
        """Density over the frames of the study's real clip, for each method's best point."""
        study = self.study
        if not study.real_clip:
            return None
        clip = read_clip(study.real_clip, study.real_clip_frames, study.base.image_size)[None]
        densities = {}
        for method, point in best.items():
            model = self.models[point["name"]]
            if isinstance(model, dict):
                model = self.posthoc_model(model)
            elif not isinstance(model, keras.Model):
                model = load_model_from(model)[1]
            densities[method] = {"name": point["name"], **real_clip_density(model, clip)}
        return {"path": study.real_clip, "frames": study.real_clip_frames, "densities": densities}


def run_study(study: StudyConfig, verbose: int | str = 2, log=print) -> dict:
    """Runs every method of ``study`` (completed runs in ``study.out`` are reused), writes
    ``<out>/summary.json`` and the plots, and returns the summary.

    Reuse after an interruption: a trained run by its ``results.json`` (a killed one resumes from its newest
    checkpoint), a post-hoc point and a whole-clip measurement by the ``record.json`` / ``whole-clips.json``
    beside it, valid while the dense model it was made from is the same.

    The summary holds ``study`` (the settings), ``runs`` (one record per run, see
    `delta_keras.study.summary.COLUMNS`), ``best`` (per method), ``targets``, ``real_clip`` densities and
    ``figures`` (file names in ``out``).
    """
    from delta_keras.study import plots  # noqa: PLC0415

    study.validate()
    started = time.time()
    Path(study.out).mkdir(parents=True, exist_ok=True)
    run = _StudyRun(study, verbose, log)
    for name, method, params, config in study.runs():
        log(f"=== {name}")
        record = (run.posthoc_point(name, method, params) if config is None
                  else run.trained_run(name, method, params, config))
        log(f"    video accuracy {record['video_accuracy']:.3f}, zero_delta reduction "
            f"{record['reduction_zero_delta']:.2f}x")
        run.records.append(record)
    run.mark_chosen_posthoc()
    seed_runs = run.headline_seeds()
    best = best_points(run.records, study.tolerance)
    summary = {
        "schema": SCHEMA,
        "study": study.to_dict(),
        "runs": run.records,
        "best": best,
        "targets": targets(run.records, study.tolerance, posthoc_target=study.posthoc_target,
                           dense_target=study.dense_target),
        "seed_runs": seed_runs,
        "headline_spread": headline_spread(run.records, seed_runs, study.base.seed) if seed_runs else None,
        "real_clip": run.real_clip_densities(best),
        "wall_time_s": time.time() - started,
    }
    summary["figures"] = plots.plot_all(summary, Path(study.out))
    write_summary(Path(study.out) / "summary.json", summary)
    return summary
