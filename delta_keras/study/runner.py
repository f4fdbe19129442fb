"""`run_study`: every method of the study on the same backbone, data and budget, then summary and plots."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import keras
import numpy as np

from delta_keras.data import read_clip
from delta_keras.study import methods
from delta_keras.study.summary import SCHEMA, best_points, run_record, targets, write_summary
from delta_keras.train import ConfigError, TrainConfig, evaluate_model, train
from delta_keras.train import builders
from delta_keras.train.run import RunFolder, load_model_from

ALL_METHODS = ("dense", "posthoc", "posthoc_memory", "dense_refine", "l1", "delta_refine", "delta_memory_refine",
               "delta_scratch")


@dataclasses.dataclass
class StudyConfig:
    """What a study runs.

    ``base`` fixes the data, backbone and budget shared by every run (its ``sparsity`` and ``logdir`` are
    ignored). The dense baseline and ``delta_scratch`` train ``dense_epochs`` epochs; the refinements (``l1``,
    ``delta_refine``) start from the baseline and train ``refine_epochs`` more, and so does ``dense_refine``
    (the baseline trained as long, without sparsity). Post-hoc conversion is applied to both dense models
    (runs named ``...-of-dense-refine`` for the second), so it gets the same training as the refinements.
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

    def runs(self) -> list[tuple[str, str, dict, TrainConfig | None]]:
        """``(name, method, params, config)`` of every run in order (``config`` None for post-hoc points)."""
        out = Path(self.out)
        base = dataclasses.replace(self.base, sparsity="none", sparsity_weight=None, step_init=None, granularity=None,
                                   step_gradient=None, init_from=None, resume=False)
        dense = dataclasses.replace(base, epochs=self.dense_epochs, logdir=str(out / "dense"))
        runs = [("dense", "dense", {}, dense)]
        refine = dict(epochs=self.refine_epochs, learning_rate=self.refine_learning_rate, init_from=dense.logdir)
        bases = ["dense"]
        if "dense_refine" in self.methods:
            runs.append(("dense-refine", "dense_refine", {},
                         dataclasses.replace(base, logdir=str(out / "dense-refine"), **refine)))
            bases.append("dense-refine")
        for name in bases:
            suffix = "" if name == "dense" else f"-of-{name}"
            if "posthoc" in self.methods:
                runs += [(f"posthoc-q{q:g}{suffix}", "posthoc", {"step": q, "base": name}, None)
                         for q in self.posthoc_steps]
            if "posthoc_memory" in self.methods:
                runs += [(f"posthoc-memory-a{a:g}{suffix}", "posthoc_memory", {"agreement": a, "base": name}, None)
                         for a in self.posthoc_agreements]
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
                for w in self.memory_weights if memory else self.delta_weights:
                    name = f"{method.replace('_', '-')}-{gradient}-w{w:g}"
                    config = dataclasses.replace(base, sparsity="delta", sparsity_weight=w, step_init=step_init,
                                                 step_gradient=gradient, logdir=str(out / name),
                                                 **methods.input_quantiser(self.input_step_init, memory), **extra)
                    runs.append((name, method, {"sparsity_weight": w, "step_gradient": gradient}, config))
        return runs

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


def _selection_clips(config: TrainConfig) -> np.ndarray:
    """The centre clips of the selection videos (see `_selection`), as one array."""
    selection, split, limit = _selection(config)
    dataset = builders.clip_source(selection, split, training=False).take(limit).batch(64)
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


def run_study(study: StudyConfig, verbose: int | str = 2, log=print) -> dict:
    """Runs every method of ``study`` (completed runs in ``study.out`` are reused), writes
    ``<out>/summary.json`` and the plots, and returns the summary.

    The summary holds ``study`` (the settings), ``runs`` (one record per run, see
    `delta_keras.study.summary.COLUMNS`), ``best`` (per method), ``targets``, ``real_clip`` densities and
    ``figures`` (file names in ``out``).
    """
    from delta_keras.study import plots  # noqa: PLC0415

    started = time.time()
    out = Path(study.out)
    out.mkdir(parents=True, exist_ok=True)
    records, models_for_clip = [], {}
    trained: dict[str, TrainConfig] = {}  # the dense models post-hoc conversion starts from, by run name
    bases: dict[str, tuple] = {}  # their (model, selection accuracy), loaded when first used
    references: dict[str, np.ndarray] = {}  # their predicted classes on the selection clips (memory calibration)
    selection = None
    clip = None
    if study.real_clip:
        clip = read_clip(study.real_clip, study.real_clip_frames, study.base.image_size)[None]

    for name, method, params, config in study.runs():
        log(f"=== {name}")
        if method in ("posthoc", "posthoc_memory"):
            dense_config = trained["dense"]
            if params["base"] not in bases:
                base_model = load_model_from(trained[params["base"]].logdir)[1]
                bases[params["base"]] = (base_model, _selection_accuracy(base_model, dense_config))
            dense_model, dense_selection = bases[params["base"]]
            t = time.time()
            memory = method == "posthoc_memory"
            step = params.get("step", min(study.posthoc_thresholds))
            input_step = methods.input_quantiser(study.input_step_init, memory)["input_step_init"]
            model = methods.posthoc_delta_model(dense_model, dense_config, step, input_step, memory=memory)
            if memory:
                if selection is None:
                    selection = _selection_clips(dense_config)
                if params["base"] not in references:
                    references[params["base"]] = dense_model.predict(selection, batch_size=32, verbose=0).argmax(-1)
                # The input's threshold (pixel units) is calibrated too, on a grid around its step.
                grids = ({methods.delta_layers(model)[0].name: tuple(input_step * f for f in (0.25, 0.5, 1.0, 2.0))}
                         if input_step else None)
                accept = methods.agreement_test(model, selection, references[params["base"]], params["agreement"])
                thresholds = methods.calibrate_thresholds(model, accept, study.posthoc_thresholds, grids)
                params = {**params, "thresholds": thresholds}
            results = evaluate_model(model, dense_config)
            params = {**params, "selection_accuracy": _selection_accuracy(model, dense_config),
                      "dense_selection_accuracy": dense_selection}
            record = run_record(name, method, params, results, time.time() - t)
            models_for_clip[name] = model
        else:
            results = _cached(config)
            if results is None:
                # A run killed mid-study continues from its newest checkpoint.
                resume = RunFolder(config.logdir).last_checkpoint() is not None
                config = dataclasses.replace(config, resume=resume, init_from=None if resume else config.init_from)
                results = train(config, command_line=["delta_keras.study", name], verbose=verbose)
            record = run_record(name, method, params, results, results["wall_time_s"], config.logdir)
            if method in ("dense", "dense_refine"):
                trained[name] = config
            models_for_clip[name] = config.logdir  # its checkpoint, loaded only if it is a best point
        log(f"    video accuracy {record['video_accuracy']:.3f}, zero_delta reduction "
            f"{record['reduction_zero_delta']:.2f}x")
        records.append(record)

    # Post-hoc delta inference as a deployed engine would choose it: the largest step whose accuracy on the
    # selection set stays within the tolerance of the baseline's.
    # Per dense model converted.
    for base in trained:
        posthoc = [r for r in records if r["method"] == "posthoc" and r["base"] == base]
        chosen = [r for r in posthoc if r["selection_accuracy"] >= r["dense_selection_accuracy"] - study.tolerance - 1e-9]
        for r in posthoc:
            r["chosen_on_selection_set"] = bool(chosen) and r["name"] == max(chosen, key=lambda c: c["step"])["name"]

    best = best_points(records, study.tolerance)
    real = {}
    if clip is not None:
        for method, point in best.items():
            model = models_for_clip[point["name"]]
            if not isinstance(model, keras.Model):
                model = load_model_from(model)[1]
            real[method] = {"name": point["name"], **real_clip_density(model, clip)}
    summary = {
        "schema": SCHEMA,
        "study": study.to_dict(),
        "runs": records,
        "best": best,
        "targets": targets(records, study.tolerance),
        "real_clip": {"path": study.real_clip, "frames": study.real_clip_frames, "densities": real} if real else None,
        "wall_time_s": time.time() - started,
    }
    summary["figures"] = plots.plot_all(summary, out)
    write_summary(out / "summary.json", summary)
    return summary
