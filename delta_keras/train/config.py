"""`TrainConfig`: every setting of a training run, its command-line form and its checks.

The config is the single source of truth of a run: the command line is generated from its fields,
it is saved as ``config.json`` in the run folder, and ``--resume`` and `evaluate_run` rebuild the
model and data from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import os
import re
from pathlib import Path

from delta_keras.data.video_files import VERIFY_LEVELS
from delta_keras.layers import DeltaActivation
from delta_keras.layers.base import NORMALIZATIONS
from delta_keras.models.video_classifier import BACKBONES, HEADS

DATASETS = ("synthetic", "ucf101", "ucf101-tfds", "folder")
SPARSITY_MODES = ("none", "l1", "delta")
SPARSITY_SCHEDULES = ("constant", "warmup", "step")
OPTIMIZERS = ("sgd", "adam")
# Settings that change how data is read or checked, not what a run computes: a resume may change them.
READING_FIELDS = ("verify_videos", "decode_threads", "opencv_threads", "cache_dir", "cache_max_gb")
LR_SCHEDULES = ("constant", "cosine")
STRATEGIES = ("default", "mirrored", "multiworker")
# Arguments of DeltaActivation only: giving them with another sparsity mode is a mistake.
DELTA_ONLY = ("step_init", "granularity", "step_gradient")
# ... and their defaults, the layer's own.
DELTA_DEFAULTS = {name: inspect.signature(DeltaActivation).parameters[name].default for name in DELTA_ONLY}
# Default sparsity weight per mode, for the fan-out-weighted per-element penalty of the layers.
DEFAULT_SPARSITY_WEIGHT = {"l1": 1e-4, "delta": 1e-4}


class ConfigError(ValueError):
    """A setting, or a combination of settings, that cannot work; the message says which and why."""


def _field(default, help: str, group: str, flag: str | None = None, **argparse_kwargs):
    metadata = {"help": help, "group": group, "flag": flag, "argparse": argparse_kwargs}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class TrainConfig:
    """Settings of one training run (see ``python experiments/ucf101_train.py --help``).

    Fields left at ``None`` take a default that depends on other fields (see `resolved`).
    `validate` checks the whole config, including that the dataset and files it names exist, so a
    bad run fails before it builds anything.

    Example:

    >>> config = TrainConfig(dataset="synthetic", backbone="tiny", sparsity="delta", epochs=2)
    >>> config.validate()
    """

    # data
    dataset: str = _field("synthetic", "Data source: the embedded synthetic actions, the UCF101 folder "
                          "(UCF-101/ and ucfTrainTestlist/ under --data-dir), tfds 'ucf101', or a folder of class "
                          "folders (<data-dir>/<class>/<video>: JHMDB, Kinetics-style, your own).", "data",
                          choices=DATASETS)
    data_dir: str | None = _field(None, "Root of the UCF101 folder or of the class folders, or the tfds data_dir.",
                                  "data")
    fold: int = _field(1, "UCF101 train/test split, or JHMDB's split files of --dataset folder (1, 2 or 3).", "data",
                       choices=(1, 2, 3))
    test_share: float = _field(0.3, "--dataset folder without split files: share of each class's clips in test "
                               "(whole source videos, so no video has clips on both sides).", "data")
    validation_share: float = _field(0.15, "--dataset folder: share of each class's clips carved from the training "
                                     "part for the per-epoch validation (whole source videos).", "data")
    group_pattern: str | None = _field(None, "--dataset folder: regular expression whose group 'group' names a "
                                       "clip's source video in its file name (default: JHMDB's rule, the name "
                                       "before _<class>_).", "data")
    frames: int = _field(8, "Frames per clip (>= 2: deltas need a previous frame).", "data")
    frame_stride: int = _field(1, "Take every n-th frame of a video.", "data")
    image_size: int = _field(32, "Height and width of the frames fed to the model.", "data")
    synthetic_videos: int = _field(480, "Synthetic training videos.", "data")
    synthetic_test_videos: int = _field(120, "Synthetic test videos.", "data")
    synthetic_video_frames: int | None = _field(None, "Length of each synthetic video (default: twice a clip's "
                                                "span, so clips differ and video-level accuracy means something).",
                                                "data")
    eval_clips: int = _field(4, "Clips per video, spread evenly, averaged for video-level accuracy.", "data")
    eval_videos_per_class: int | None = _field(None, "Final evaluation on the first N test videos of each class only "
                                               "(a quick, class-stratified evaluation; default: the whole split).",
                                               "data")
    cache_dir: str | None = _field(None, "Cache of decoded frames (lossless, about 4x smaller than raw; speeds up "
                                   "later epochs and runs); also where the video index is remembered.", "data")
    cache_max_gb: float | None = _field(None, "Bound of --cache-dir in GB (least recently used videos are evicted; "
                                        "default: no bound).", "data")
    verify_videos: str = _field("full", "How videos are checked when a folder is opened: full (decode the first and "
                                "last frames: catches truncated files), header (frame count only) or decode (decode "
                                "every frame in worker processes and read the decoder's errors: also catches damage "
                                "inside a file). Results are remembered by path, size and time, so a second run "
                                "checks nothing.", "data",
                                choices=VERIFY_LEVELS)
    decode_threads: int | None = _field(None, "Videos decoded at once, and threads checking videos (default: "
                                        "tf.data's autotuning, and the cores this process may use).", "data")
    opencv_threads: int | None = _field(None, "Threads OpenCV may use inside one decode (default: OpenCV's own).",
                                        "data")
    # model
    backbone: str = _field("tiny", "Image backbone run on every frame.", "model", choices=BACKBONES)
    alpha: float = _field(1.0, "Width multiplier of the MobileNet backbones.", "model")
    motion: bool = _field(False, "Feed every frame with its difference from the previous one (6 channels) to any "
                          "backbone, so motion-only classes can be learnt (always on for tiny).", "model",
                          action="store_true")
    weights: str = _field("none", "Backbone initialisation: none, imagenet, bsds500 (HED's, for hed_vgg16) or the "
                          "path of a weights file.", "model", metavar="none|imagenet|bsds500|PATH")
    blocks: int = _field(5, "hed_vgg16: VGG16 blocks kept (1-5).", "model")
    frozen_blocks: int = _field(0, "hed_vgg16: the first N blocks are not trained (their sparsity layers are).",
                                "model")
    head: str = _field("average", "Clip head: average (frame logits averaged) or temporal (a ReLU convolution over "
                       "3 frames' pooled features, then averaged).", "model", choices=HEADS)
    dropout: float = _field(0.5, "Dropout rate of the temporal head.", "model")
    # sparsity
    sparsity: str = _field("none", "Sparsity layers: none (dense), l1 (ActivitySparsity, spatial baseline) "
                           "or delta (DeltaActivation, temporal).", "sparsity", choices=SPARSITY_MODES)
    sparsity_weight: float | None = _field(None, "Weight of the sparsity loss (default: 1e-4 for l1 and delta).",
                                           "sparsity")
    sparsity_schedule: str = _field("constant", "How the sparsity weight evolves with the training step: "
                                    "constant, warmup (0 -> weight linearly over --sparsity-warmup-steps after "
                                    "--sparsity-start-step) or step (0, then weight from --sparsity-start-step).",
                                    "sparsity", choices=SPARSITY_SCHEDULES)
    sparsity_start_step: int = _field(0, "Training step at which the sparsity weight starts to rise.", "sparsity")
    sparsity_warmup_steps: int = _field(0, "Length of the linear warm-up of the sparsity weight.", "sparsity")
    step_init: float | None = _field(None, "Initial quantisation step of DeltaActivation (default 1.0).", "sparsity")
    granularity: str | None = _field(None, "One step per layer, channel (default) or neuron.", "sparsity",
                                     choices=("layer", "channel", "neuron"))
    step_gradient: str | None = _field(None, "Step-size gradient: lsq (default) or paper.", "sparsity",
                                       choices=("lsq", "paper"))
    memory: bool = _field(False, "DeltaActivation with memory: each neuron sends its new value only when it has moved "
                          "more than a learnable threshold (the step) from what it last sent (no flicker, no drift).",
                          "sparsity", action="store_true")
    input_memory: bool | None = _field(None, "With --memory and --include-input: whether the input's layer uses memory "
                                       "too (default) or per-frame quantisation (--input-memory 0).", "sparsity",
                                       type=lambda v: v.lower() in ("1", "true", "yes"), metavar="0|1")
    include_input: bool = _field(False, "Also put a sparsity layer on the frames entering the backbone "
                                 "(the paper does for ResNet50): the first convolution then sees sparse changes too.",
                                 "sparsity", action="store_true")
    input_step_init: float | None = _field(None, "Initial step of the input's DeltaActivation, in the units of the "
                                           "input (raw pixels, 0-255); default: --step-init.", "sparsity")
    init_from: str | None = _field(None, "Refinement: start from the weights of this trained checkpoint "
                                   "(a .keras file or a run folder), matched by layer name; DeltaActivation "
                                   "steps too where the checkpoint has them (e.g. a post-hoc calibrated model).",
                                   "sparsity",
                                   metavar="CHECKPOINT")
    sparsity_normalization: str = _field("mean", "How each layer's sparsity loss is normalised: mean (per neuron and "
                                         "frame, times the fan-out), frame, sample, or dense_macs (the summed loss is "
                                         "the weight times the share of the model's dense MACs the deltas trigger: a "
                                         "weight means the same on any network; try 0.01-1).", "sparsity",
                                         choices=NORMALIZATIONS)
    step_rate: float = _field(1.0, "The quantisation steps (and memory thresholds) learn at this multiple of the "
                              "learning rate (Adam moves a variable by about the learning rate per update, so a "
                              "fine-tuning rate leaves the steps where they start).", "sparsity")
    # distillation
    distill_from: str | None = _field(None, "Refine by distillation: start from this dense checkpoint (a .keras file "
                                      "or a run folder) and learn to reproduce its logits (KL at --temperature) "
                                      "instead of the labels.", "distillation", metavar="CHECKPOINT")
    unlabelled_dir: str | None = _field(None, "With --distill-from: train on every video under this folder (.avi, "
                                        ".mp4...; any names, no labels); --dataset then only validates and "
                                        "evaluates.", "distillation")
    label_weight: float = _field(0.0, "With --distill-from: weight of the label loss mixed into the distillation "
                                 "loss (0: labels are not used).", "distillation")
    temperature: float = _field(1.0, "With --distill-from: softmax temperature of the KL distillation loss.",
                                "distillation")
    # training
    epochs: int = _field(5, "Epochs to train (in total, when resuming).", "training")
    batch_size: int = _field(16, "Global batch size (split over replicas).", "training")
    optimizer: str = _field("adam", "sgd (momentum 0.9) or adam.", "training", choices=OPTIMIZERS)
    lr_schedule: str = _field("cosine", "Learning rate over the run: constant or cosine decay to 0.", "training",
                              choices=LR_SCHEDULES)
    learning_rate: float = _field(3e-3, "Initial learning rate.", "training")
    head_rate: float = _field(1.0, "The classification head (its layer norm, temporal convolution and logits) "
                              "learns at this multiple of the learning rate: a pretrained backbone fine-tunes at a "
                              "rate 10-100x below a fresh head's (e.g. --learning-rate 1e-5 --head-rate 30).",
                              "training")
    seed: int = _field(0, "Seed of weights, data order and augmentation.", "training")
    steps_per_epoch: int | None = _field(None, "Batches per epoch (default: one pass over the training set).",
                                         "training")
    validation_steps: int | None = _field(None, "Validation batches per epoch, from a fixed, class-stratified "
                                          "sample of test videos (the first ones of each class; default: the whole "
                                          "test set). Validation clips are decoded each epoch, never held in memory.",
                                          "training")
    mixed_precision: bool = _field(False, "Compute in float16 (GPU) or bfloat16 (CPU).", "training",
                                   action="store_true")
    strategy: str = _field("default", "default (one device), mirrored (every local GPU) or multiworker "
                           "(MultiWorkerMirroredStrategy, cluster from TF_CONFIG).", "training", choices=STRATEGIES)
    # output
    logdir: str = _field("runs/latest", "Run folder: TensorBoard events, checkpoints, config.json, results.json.",
                         "output")
    resume: bool = _field(False, "Continue the run in --logdir from its newest checkpoint that loads (a finished "
                          "run is left as it is, or extended when --epochs is larger).", "output", action="store_true")
    checkpoint_every_steps: int | None = _field(None, "Also save a checkpoint every N training steps, so a killed "
                                                "run loses at most N steps.", "output")
    checkpoint_every_minutes: float = _field(5.0, "Also save a checkpoint at the first step after this many minutes "
                                             "of training since the last one, so a killed run loses minutes, not an "
                                             "epoch (0: at epoch ends and --checkpoint-every-steps only).", "output")

    # ---------------------------------------------------------------- derived values
    def resolved(self) -> "TrainConfig":
        """Returns a copy with the ``None`` defaults that depend on other fields filled in."""
        changes = {}
        if self.sparsity_weight is None and self.sparsity != "none":
            changes["sparsity_weight"] = DEFAULT_SPARSITY_WEIGHT[self.sparsity]
        if self.sparsity == "delta":
            changes.update({k: v for k, v in DELTA_DEFAULTS.items() if getattr(self, k) is None})
        return dataclasses.replace(self, **changes)

    # ---------------------------------------------------------------- checks
    def validate(self) -> None:
        """Checks every setting and combination, and that the data and files named exist.

        Raises:
            ConfigError: with a message naming the flags involved.
        """
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"--{_flag(field.name)} must be a finite number, got {value}")
        if self.frames < 2:
            raise ConfigError(f"--frames must be >= 2 (a temporal delta needs two frames), got {self.frames}")
        positive = ("frame_stride", "image_size", "synthetic_videos", "synthetic_test_videos", "eval_clips",
                    "epochs", "batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"--{_flag(name)} must be >= 1, got {getattr(self, name)}")
        for name in ("steps_per_epoch", "validation_steps", "synthetic_video_frames", "checkpoint_every_steps",
                     "eval_videos_per_class", "decode_threads", "opencv_threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"--{_flag(name)} must be >= 1, got {getattr(self, name)}")
        if self.checkpoint_every_minutes < 0:
            raise ConfigError(f"--checkpoint-every-minutes must be >= 0, got {self.checkpoint_every_minutes}")
        if self.head_rate <= 0:
            raise ConfigError(f"--head-rate must be > 0, got {self.head_rate}")
        if self.learning_rate <= 0 or self.alpha <= 0:
            raise ConfigError("--learning-rate and --alpha must be > 0")
        if self.cache_max_gb is not None and (self.cache_max_gb <= 0 or self.cache_dir is None):
            raise ConfigError("--cache-max-gb needs --cache-dir and a bound > 0")
        self._validate_sparsity()
        self._validate_data()
        self._validate_weights()
        if self.strategy == "multiworker" and not os.environ.get("TF_CONFIG"):
            raise ConfigError("--strategy multiworker needs the cluster in the TF_CONFIG environment variable")
        if self.resume and self.init_from:
            raise ConfigError("--resume continues a run, --init-from starts a new one: give only one")
        self._validate_distillation()

    def _validate_sparsity(self) -> None:
        if self.sparsity == "none":
            given = [f"--{_flag(n)}" for n in ("sparsity_weight", *DELTA_ONLY) if getattr(self, n) is not None]
            given += ["--include-input"] if self.include_input else []
            given += ["--memory"] if self.memory else []
            if given or self.sparsity_schedule != "constant":
                raise ConfigError(f"{' '.join(given) or '--sparsity-schedule'}: only with --sparsity l1 or delta")
        elif self.sparsity == "l1":
            given = [f"--{_flag(n)}" for n in DELTA_ONLY if getattr(self, n) is not None]
            given += ["--memory"] if self.memory else []
            if given:
                raise ConfigError(f"{' '.join(given)} only apply to --sparsity delta")
        if self.sparsity_weight is not None and self.sparsity_weight < 0:
            raise ConfigError(f"--sparsity-weight must be >= 0, got {self.sparsity_weight}")
        if self.step_init is not None and self.step_init <= 0:
            raise ConfigError(f"--step-init must be > 0, got {self.step_init}")
        if self.input_step_init is not None and (self.sparsity != "delta" or not self.include_input):
            raise ConfigError("--input-step-init needs --sparsity delta and --include-input")
        if self.input_memory is not None and not (self.memory and self.include_input):
            raise ConfigError("--input-memory needs --memory and --include-input")
        if self.input_step_init is not None and self.input_step_init <= 0:
            raise ConfigError(f"--input-step-init must be > 0, got {self.input_step_init}")
        if self.sparsity_schedule == "warmup" and self.sparsity_warmup_steps < 1:
            raise ConfigError("--sparsity-schedule warmup needs --sparsity-warmup-steps >= 1")
        if self.sparsity_schedule == "step" and self.sparsity_start_step < 1:
            raise ConfigError("--sparsity-schedule step needs --sparsity-start-step >= 1")
        if self.sparsity_schedule == "constant" and (self.sparsity_start_step or self.sparsity_warmup_steps):
            raise ConfigError("--sparsity-start-step/--sparsity-warmup-steps need --sparsity-schedule warmup or step")
        if self.init_from and not Path(self.init_from).exists():
            raise ConfigError(f"--init-from {self.init_from}: no such checkpoint or run folder")

    def _validate_distillation(self) -> None:
        if self.step_rate <= 0:
            raise ConfigError(f"--step-rate must be > 0, got {self.step_rate}")
        if self.distill_from is None:
            given = [f"--{_flag(n)}" for n, default in (("unlabelled_dir", None), ("label_weight", 0.0),
                                                         ("temperature", 1.0)) if getattr(self, n) != default]
            if given:
                raise ConfigError(f"{' '.join(given)}: only with --distill-from")
            return
        if not Path(self.distill_from).exists():
            raise ConfigError(f"--distill-from {self.distill_from}: no such checkpoint or run folder")
        if self.sparsity == "none":
            raise ConfigError("--distill-from refines a sparse student: give --sparsity delta or l1")
        if self.init_from:
            raise ConfigError("--distill-from already starts from the teacher's weights: drop --init-from")
        if self.label_weight < 0 or self.temperature <= 0:
            raise ConfigError(f"--label-weight must be >= 0 and --temperature > 0, got {self.label_weight}, "
                              f"{self.temperature}")
        if self.unlabelled_dir is not None:
            if not Path(self.unlabelled_dir).is_dir():
                raise ConfigError(f"--unlabelled-dir {self.unlabelled_dir}: no such folder")
            if self.label_weight:
                raise ConfigError("--label-weight needs labels, and --unlabelled-dir has none")

    def _validate_data(self) -> None:
        if self.dataset == "synthetic":
            if self.data_dir is not None:
                raise ConfigError("--data-dir is for --dataset ucf101, ucf101-tfds or folder, not synthetic")
            return
        if self.dataset == "ucf101":
            if self.data_dir is None:
                raise ConfigError("--dataset ucf101 needs --data-dir, the folder holding UCF-101/ and ucfTrainTestlist/")
            root = Path(self.data_dir)
            missing = [name for name in ("UCF-101", "ucfTrainTestlist") if not (root / name).is_dir()]
            if missing:
                raise ConfigError(f"--data-dir {root}: missing {', '.join(missing)} (the UCF101 folder layout)")
        if self.dataset == "folder":
            if self.data_dir is None or not Path(self.data_dir).is_dir():
                raise ConfigError(f"--dataset folder needs --data-dir, a folder of class folders, got {self.data_dir}")
            if not (0 < self.test_share < 1 and 0 <= self.validation_share < 1
                    and self.test_share + self.validation_share < 1):
                raise ConfigError("need 0 < --test-share < 1, 0 <= --validation-share < 1 and their sum < 1, got "
                                  f"{self.test_share} and {self.validation_share}")
            if self.group_pattern is not None:
                from delta_keras.data.class_folder import group_by_pattern  # noqa: PLC0415

                try:
                    group_by_pattern(self.group_pattern)
                except (ValueError, re.error) as error:
                    raise ConfigError(f"--group-pattern {self.group_pattern!r}: {error}") from error
        if self.dataset == "ucf101-tfds":
            from delta_keras.data.ucf101_tfds import tfds_ready  # noqa: PLC0415 (tfds is slow to import)

            problem = tfds_ready(self.tfds_config, self.data_dir)
            if problem:
                raise ConfigError(f"--dataset ucf101-tfds: {problem}")

    @property
    def tfds_config(self) -> str:
        """The tfds builder name of the fold: ``ucf101/ucf101_1`` ... ``ucf101/ucf101_3``."""
        return f"ucf101/ucf101_{self.fold}"

    def _validate_weights(self) -> None:
        if (self.blocks != 5 or self.frozen_blocks) and self.backbone != "hed_vgg16":
            raise ConfigError("--blocks and --frozen-blocks: only with --backbone hed_vgg16")
        if not 1 <= self.blocks <= 5 or not 0 <= self.frozen_blocks <= self.blocks:
            raise ConfigError(f"need 1 <= --blocks <= 5 and 0 <= --frozen-blocks <= --blocks, got {self.blocks} "
                              f"and {self.frozen_blocks}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.backbone == "hed_vgg16" and self.motion:
            raise ConfigError("--motion feeds 6 channels; the hed_vgg16 backbone takes 3")
        if self.weights == "bsds500":
            if self.backbone != "hed_vgg16":
                raise ConfigError("--weights bsds500 are HED's: only with --backbone hed_vgg16")
        elif self.weights in ("none", "imagenet"):
            if self.weights == "imagenet" and self.backbone == "tiny":
                raise ConfigError("--weights imagenet: the tiny backbone has no pretrained weights")
        elif not Path(self.weights).is_file():
            raise ConfigError(f"--weights {self.weights}: no such file (expected none, imagenet or a weights file)")

    # ---------------------------------------------------------------- files and command line
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config entries: {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def differences(self, other: "TrainConfig",
                    ignore: tuple[str, ...] = ("resume", "epochs", "logdir", "checkpoint_every_steps",
                                               "checkpoint_every_minutes", "init_from",
                                               "eval_videos_per_class", *READING_FIELDS)) -> list[str]:
        """Flags whose values differ from ``other``'s (``--name: mine != theirs``), except ``ignore``.

        Paths are compared resolved (``runs/a``, ``./runs/a/`` and its absolute form are the same); the run
        folder itself is ignored by default, since a run may be resumed from wherever it was moved, and so is
        ``init_from``, which only the run's start used, and the settings of how data is read and checked
        (`READING_FIELDS`) and of the final evaluation's size.
        """
        return [
            f"--{_flag(f.name)}: {getattr(self, f.name)!r} != {getattr(other, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.name not in ignore and _comparable(f.name, getattr(self, f.name)) != _comparable(f.name, getattr(other, f.name))
        ]


PATH_FIELDS = ("data_dir", "cache_dir", "init_from", "weights", "logdir", "distill_from", "unlabelled_dir")


def _comparable(name: str, value):
    if name in PATH_FIELDS and isinstance(value, str) and value not in ("none", "imagenet"):
        return os.path.realpath(os.path.expanduser(value))
    return value


def _flag(name: str) -> str:
    return name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """Adds one ``--flag`` per `TrainConfig` field to ``parser``, grouped and with the field's help.

    Args:
        parser: the parser to extend.
        exclude: field names not to add.
    """
    groups = {}
    for field in dataclasses.fields(TrainConfig):
        if field.name in exclude:
            continue
        meta = field.metadata
        group = groups.setdefault(meta["group"], parser.add_argument_group(meta["group"]))
        kwargs = dict(meta["argparse"])
        if kwargs.get("action") != "store_true" and "type" not in kwargs:
            kwargs["type"] = _field_type(field)
            if "choices" not in kwargs:
                kwargs.setdefault("metavar", {int: "N", float: "X"}.get(kwargs["type"], "PATH"))
        default = "" if field.default is None or field.default is False else f" (default: {field.default})"
        group.add_argument(f"--{_flag(field.name)}", dest=field.name, default=field.default,
                           help=meta["help"] + default, **kwargs)


def _field_type(field: dataclasses.Field):
    annotation = str(field.type)
    return int if annotation.startswith("int") else float if annotation.startswith("float") else str


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The `TrainConfig` of parsed arguments (extra attributes of ``args`` are ignored)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
