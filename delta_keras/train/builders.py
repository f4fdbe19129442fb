"""Builders that turn a `TrainConfig` into the data, model, optimiser and distribution strategy of a run."""

from __future__ import annotations

import collections
import math
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from delta_keras import data, models, regularizers
from delta_keras.layers import DeltaActivation, SparsityLayer
from delta_keras.models.walk import all_layers, child_layers
from delta_keras.optimizers import with_step_rate
from delta_keras.train.config import ConfigError, TrainConfig
from delta_keras.train.run_folder import load_model_from

# Opened UCF101 splits, so that a process checks each split's videos once (see `video_folder`).
_FOLDERS: dict[tuple, data.VideoFolder] = {}


# ---------------------------------------------------------------------------- data
def video_index(config: TrainConfig) -> Path:
    """Where what probing found is remembered across runs (`delta_keras.data.ProbeIndex`): in ``--cache-dir``,
    else in the user's cache folder (``$XDG_CACHE_HOME/delta_keras``, default ``~/.cache/delta_keras``)."""
    if config.cache_dir:
        return Path(config.cache_dir) / "video-index.json"
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return home / "delta_keras" / "video-index.json"


def _opened(key: tuple, open_videos):
    # Each split is listed, checked and probed once per process (the validation set, the MAC-count batch
    # and the final evaluation share it), and across runs through `video_index`.
    if key not in _FOLDERS:
        _FOLDERS[key] = open_videos()
    return _FOLDERS[key]


def _probing(config: TrainConfig) -> dict:
    return dict(verify=config.verify_videos, index=video_index(config), workers=config.decode_threads)


def video_folder(config: TrainConfig, split: str) -> data.VideoFolder:
    """The opened (listed, checked and probed) UCF101 split of the config, opened once per process.

    The key includes the list files' modification times, so an edited list is read again.
    """
    root = Path(config.data_dir).resolve()
    lists = root / "ucfTrainTestlist"
    stamps = tuple(f.stat().st_mtime_ns if f.exists() else None
                   for f in (lists / "classInd.txt", lists / f"{split}list0{config.fold}.txt"))
    return _opened((root, split, config.fold, stamps, config.verify_videos),
                   lambda: data.VideoFolder(root, split, fold=config.fold, **_probing(config)))


def class_folder(config: TrainConfig, split: str) -> data.ClassFolder:
    """The opened (split, checked and probed) part of ``--dataset folder``: ``"train"``, ``"validation"`` or
    ``"test"``, opened once per process."""
    root = Path(config.data_dir).resolve()
    settings = (config.fold, config.test_share, config.validation_share, config.group_pattern)
    return _opened((root, split, settings, config.verify_videos),
                   lambda: data.ClassFolder(root, split, fold=config.fold, test_share=config.test_share,
                                            validation_share=config.validation_share, group=config.group_pattern,
                                            **_probing(config)))


def file_source(config: TrainConfig, split: str) -> data.ProbedVideos:
    """The opened split of a video-file dataset (``ucf101`` or ``folder``)."""
    return class_folder(config, split) if config.dataset == "folder" else video_folder(config, split)


def validation_split(config: TrainConfig) -> str:
    """The split validated on after every epoch: a class folder's validation part, else the test split (UCF101
    and the synthetic actions have no other)."""
    return "validation" if config.dataset == "folder" else "test"


def unlabelled_videos(config: TrainConfig) -> data.VideoFiles:
    """The checked and probed videos of ``--unlabelled-dir``, opened once per process."""
    root = Path(config.unlabelled_dir).resolve()
    return _opened((root, "unlabelled", config.verify_videos), lambda: data.VideoFiles(root, **_probing(config)))


def configure_decoding(config: TrainConfig) -> None:
    """Applies ``--opencv-threads`` (threads OpenCV may use inside one decode)."""
    if config.opencv_threads is not None:
        import cv2  # noqa: PLC0415 (only the video sources need OpenCV)

        cv2.setNumThreads(config.opencv_threads)


def num_classes(config: TrainConfig) -> int:
    """Classes of the config's dataset, as its source says (``classInd.txt``, tfds' label feature)."""
    if config.dataset == "synthetic":
        return len(data.SYNTHETIC_CLASSES)
    if config.dataset in ("ucf101", "folder"):
        return len(file_source(config, "train").classes)
    import tensorflow_datasets as tfds  # noqa: PLC0415 (slow import, only for this source)

    return tfds.builder(config.tfds_config, data_dir=config.data_dir).info.features["label"].num_classes


def data_summary(config: TrainConfig) -> dict:
    """What a run's results say about its data: the source, class count, usable videos and skipped files."""
    summary = {"dataset": config.dataset, "num_classes": num_classes(config),
               "num_classes_from": {"synthetic": "the embedded synthetic actions",
                                    "ucf101": "classInd.txt", "ucf101-tfds": "tfds' label feature",
                                    "folder": "the class folders"}[config.dataset]}
    skipped = {}
    if config.dataset in ("ucf101", "folder"):
        for split in ("train", "validation", "test") if config.dataset == "folder" else ("train", "test"):
            folder = file_source(config, split)
            summary[f"{split}_videos"] = len(folder.videos)
            skipped.update(folder.report.skipped)
    if config.unlabelled_dir:
        videos = unlabelled_videos(config)
        summary["unlabelled_videos"] = len(videos.videos)
        skipped.update(videos.report.skipped)
    summary["skipped_videos"] = len(skipped)
    summary["skipped"] = skipped
    return summary


def check_training_videos(config: TrainConfig) -> None:
    """Raises `ConfigError` when fewer usable training videos than a batch exist (nothing would train)."""
    usable = training_videos(config)
    if usable < config.batch_size:
        raise ConfigError(f"{usable} usable training video(s) but --batch-size {config.batch_size}: every batch "
                          "drops its remainder, so nothing would train; lower --batch-size or add videos")


def _reading(config: TrainConfig) -> dict:
    """How a video-file source reads: cache, its bound, decode parallelism."""
    return dict(cache_dir=config.cache_dir, cache_max_gb=config.cache_max_gb, parallel_reads=config.decode_threads)


def clip_sampling(config: TrainConfig, training: bool, clips_per_video: int = 1,
                  labelled: bool = True) -> data.ClipSampling:
    """How the run cuts clips: the config's frames, stride, size and seed; flips except on the synthetic actions'
    labelled clips (their labels are directions of motion). ``labelled=False``: ``--unlabelled-dir``'s videos."""
    return data.ClipSampling(frames=config.frames, frame_stride=config.frame_stride, image_size=config.image_size,
                             training=training, clips_per_video=clips_per_video, seed=config.seed,
                             flip=not (labelled and config.dataset == "synthetic"))


def clip_source(config: TrainConfig, split: str, training: bool, clips_per_video: int = 1,
                with_video_id: bool = False, videos_per_class: int | None = None) -> tf.data.Dataset:
    """The unbatched ``(clip, label[, video_id])`` dataset of one split, as the config describes it.

    Args:
        config: the run's settings (dataset, frames, stride, size, seed).
        split: ``"train"``, ``"validation"`` (``--dataset folder`` only) or ``"test"``.
        training: random clips and augmentation (training) or evenly spread centre clips (evaluation).
        clips_per_video: clips taken from each video.
        with_video_id: add the video id (for video-level accuracy).
        videos_per_class: only the first this many videos of each class (a fixed, stratified sample).
    """
    sampling = clip_sampling(config, training, clips_per_video)
    common = dict(with_video_id=with_video_id, videos_per_class=videos_per_class)
    if config.dataset == "synthetic":
        video_frames = config.synthetic_video_frames or 2 * config.frames * config.frame_stride
        return data.synthetic_actions(split, videos_in_split(config, split), sampling, video_frames=video_frames,
                                      **common)
    if config.dataset in ("ucf101", "folder"):
        return file_source(config, split).dataset(sampling, **_reading(config), **common)
    return data.ucf101_tfds(config.tfds_config.split("/")[1], split, config.data_dir, sampling, download=False,
                            **common)


def videos_in_split(config: TrainConfig, split: str) -> int:
    """Videos in a split, as listed (a UCF101 video that fails to decode is skipped later)."""
    if config.dataset == "synthetic":
        return config.synthetic_videos if split == "train" else config.synthetic_test_videos
    if config.dataset == "ucf101":
        # The official list file has one line per video; reading it avoids probing 13k videos twice.
        list_file = Path(config.data_dir) / "ucfTrainTestlist" / f"{split}list0{config.fold}.txt"
        return sum(1 for line in list_file.read_text().splitlines() if line.strip())
    if config.dataset == "folder":
        return len(class_folder(config, split).videos)
    import tensorflow_datasets as tfds  # noqa: PLC0415 (slow import, only for this source)

    return tfds.builder(config.tfds_config, data_dir=config.data_dir).info.splits[split].num_examples


def training_videos(config: TrainConfig) -> int:
    """Usable training videos: those of ``--unlabelled-dir``, else of the dataset's training split."""
    if config.unlabelled_dir:
        return len(unlabelled_videos(config).videos)
    if config.dataset in ("ucf101", "folder"):
        return len(file_source(config, "train").videos)
    return videos_in_split(config, "train")


def epoch_steps(config: TrainConfig) -> int:
    """Batches per epoch: ``steps_per_epoch``, else one pass over the training videos."""
    videos = len(unlabelled_videos(config).videos) if config.unlabelled_dir else videos_in_split(config, "train")
    return config.steps_per_epoch or max(videos // config.batch_size, 1)


def train_dataset(config: TrainConfig) -> tf.data.Dataset:
    """Batched training clips (with labels, or alone from ``--unlabelled-dir``), repeated forever:
    `epoch_steps` cuts it into epochs, so an epoch has a known length (for the progress bar and the cosine
    schedule) even when bad videos are skipped."""
    if config.unlabelled_dir:
        source = unlabelled_videos(config).clips(clip_sampling(config, training=True, labelled=False),
                                                 **_reading(config))
    else:
        source = clip_source(config, "train", training=True)
    return source.batch(config.batch_size, drop_remainder=True).repeat().prefetch(tf.data.AUTOTUNE)


def validation_steps(config: TrainConfig) -> int:
    """Validation batches per epoch: one centre clip of every video of the `validation_split`, or with
    ``validation_steps`` that many batches of the first videos of each class, as many as there are (a
    class with fewer videos than its share leaves the batches short)."""
    split = validation_split(config)
    every = math.ceil(videos_in_split(config, split) / config.batch_size)
    if not config.validation_steps:
        return every
    if config.dataset in ("ucf101", "folder"):
        per_class = _per_class(config, config.validation_steps * config.batch_size)
        videos = collections.Counter(video.label for video in file_source(config, split).videos)
        every = math.ceil(sum(min(per_class, count) for count in videos.values()) / config.batch_size)
    return min(config.validation_steps, every)


def _per_class(config: TrainConfig, videos: int) -> int:
    """Videos of each class that make at least ``videos`` in all."""
    return math.ceil(videos / num_classes(config))


def validation_dataset(config: TrainConfig) -> tf.data.Dataset:
    """Batched centre clips of the `validation_split` (one per video), for the per-epoch validation: every video,
    or with ``validation_steps`` the first videos of each class (a fixed, stratified sample). Decoded each
    epoch and never cached in memory, so memory does not grow with the validation set (``--cache-dir`` makes
    the decoding cheap)."""
    per_class = _per_class(config, config.validation_steps * config.batch_size) if config.validation_steps else None
    dataset = clip_source(config, validation_split(config), training=False, videos_per_class=per_class)
    dataset = dataset.batch(config.batch_size)
    return dataset.take(validation_steps(config)).prefetch(tf.data.AUTOTUNE)


def mac_clips(config: TrainConfig):
    """The fixed batch of test clips the simulator counts MACs on: centre clips of the first video of each class
    (of as many classes as a batch holds, in list order)."""
    source = clip_source(config, "test", training=False, videos_per_class=_per_class(config, config.batch_size))
    return next(iter(source.batch(config.batch_size)))[0]


def evaluation_dataset(config: TrainConfig) -> tf.data.Dataset:
    """Batched ``(clip, label, video_id)`` with ``eval_clips`` evenly spread clips per test video (of every test
    video, or of the first ``eval_videos_per_class`` of each class)."""
    dataset = clip_source(config, "test", training=False, clips_per_video=config.eval_clips, with_video_id=True,
                          videos_per_class=config.eval_videos_per_class)
    return dataset.batch(config.batch_size).prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------- model
def sparsity_schedule(config: TrainConfig) -> regularizers.Schedule:
    """The sparsity-weight schedule of the config (evaluated in-graph from each layer's training step)."""
    weight = config.resolved().sparsity_weight
    if config.sparsity_schedule == "warmup":
        return regularizers.LinearWarmup(weight, config.sparsity_warmup_steps, config.sparsity_start_step)
    if config.sparsity_schedule == "step":
        return regularizers.PiecewiseConstant([config.sparsity_start_step], [0.0, weight])
    return regularizers.Constant(weight)


def build_model(config: TrainConfig) -> keras.Model:
    """The clip classifier of the config (uncompiled), returning logits.

    Call it inside ``strategy.scope()`` to place its variables.
    """
    config = config.resolved()
    layer_kwargs = {}
    if config.sparsity != "none":
        include_input = config.include_input
        if config.include_input and (config.input_step_init or config.input_memory is not None):
            include_input = {k: v for k, v in (("step_init", config.input_step_init), ("memory", config.input_memory))
                             if v is not None}
        layer_kwargs.update(sparsity_weight=sparsity_schedule(config), include_input=include_input,
                            normalization=config.sparsity_normalization)
    if config.sparsity == "delta":
        layer_kwargs.update(step_init=config.step_init, granularity=config.granularity,
                            step_gradient=config.step_gradient, memory=config.memory)
    # Clips of any length: the data fixes --frames (its clips have a static length, which keeps the sparsity
    # layers on their fast path), and the same model runs longer clips (the study's real clip) unchanged.
    return models.video_classifier(
        config.backbone,
        num_classes(config),
        frames=None,
        image_size=config.image_size,
        sparsity=None if config.sparsity == "none" else config.sparsity,
        weights=None if config.weights == "none" else config.weights,
        alpha=config.alpha,
        motion=True if config.motion else None,
        blocks=config.blocks,
        frozen_blocks=config.frozen_blocks,
        head=config.head,
        dropout=config.dropout,
        **layer_kwargs,
    )


def build_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """SGD (momentum 0.9) or Adam, with a constant or cosine learning rate (the steps at ``step_rate`` x, the
    classification head at ``head_rate`` x).

    The cosine schedule is a function of ``optimizer.iterations``, which a checkpoint restores, so a
    resumed run continues on the same curve.
    """
    learning_rate = config.learning_rate
    if config.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, config.epochs * epoch_steps(config))
    optimizer = keras.optimizers.SGD(learning_rate, momentum=0.9) if config.optimizer == "sgd" else \
        keras.optimizers.Adam(learning_rate)
    if config.step_rate == 1 and config.head_rate == 1:
        return optimizer
    return with_step_rate(optimizer, config.step_rate, config.head_rate, models.HEAD_LAYERS)


def build_distiller(config: TrainConfig, student: keras.Model) -> models.Distiller:
    """``student`` paired with the dense teacher of ``--distill-from`` (the same clips in, the same logits out).

    Raises:
        ConfigError: the teacher's input or output shape is not the student's.
    """
    path, teacher = load_model_from(config.distill_from)
    # The time axis may differ: models take clips of any length (older checkpoints: a fixed one).
    without_time = lambda shape: (shape[0], *shape[2:])
    for what, same in (("input_shape", without_time(teacher.input_shape) == without_time(student.input_shape)),
                       ("output_shape", teacher.output_shape == student.output_shape)):
        if not same:
            raise ConfigError(f"--distill-from {path}: the teacher's {what.replace('_', ' ')} "
                              f"{getattr(teacher, what)} is not the student's {getattr(student, what)} (train the "
                              "teacher with the same --image-size, --backbone and dataset)")
    return models.Distiller(student, teacher)


def compile_model(model: keras.Model, optimizer: keras.optimizers.Optimizer, config: TrainConfig | None = None) -> None:
    """Compiles for classification from logits (the sparsity layers add their own losses); a `Distiller`
    learns its teacher's logits (KL at ``config.temperature``), with the labels at ``config.label_weight``."""
    labels = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # Accuracy needs labels: none when training on unlabelled videos.
    metrics = [] if config and config.unlabelled_dir else [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    if isinstance(model, models.Distiller):
        model.compile(optimizer=optimizer, distillation_loss="kl", temperature=config.temperature,
                      label_loss=labels if config.label_weight else None, label_weight=config.label_weight,
                      metrics=metrics)
    else:
        model.compile(optimizer=optimizer, loss=labels, metrics=metrics)


# ---------------------------------------------------------------------------- weights
def weighted_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """The innermost layers holding weights, by name (wrappers and nested models are opened)."""
    return {
        layer.name: layer
        for layer in all_layers(model)
        if layer.weights and not child_layers(layer)
    }


def transfer_weights(source: keras.Model, target: keras.Model) -> list[str]:
    """Copies the weights of every layer of ``target`` from the same-named layer of ``source``.

    This is the refinement step: ``source`` is a trained dense model, ``target`` the same architecture
    with sparsity layers (which keep their fresh weights). `delta_keras.sparsify` keeps the names of the
    image layers, so names identify them. A `DeltaActivation` whose same-named layer in ``source`` is a
    `DeltaActivation` of the same mode (with or without memory) takes its steps (thresholds), broadcast to
    its own granularity: a refinement can start from a post-hoc calibrated model.

    Returns:
        The names of the layers copied.

    Raises:
        ValueError: when a non-sparsity layer of ``target`` has no same-named, same-shaped layer in
            ``source`` (the checkpoint is not of this architecture), or a step cannot be broadcast.
    """
    sources = weighted_layers(source)
    copied, missing = [], []
    for name, layer in weighted_layers(target).items():
        match = sources.get(name)
        if isinstance(layer, SparsityLayer):
            if isinstance(layer, DeltaActivation) and isinstance(match, DeltaActivation) and \
                    match.memory == layer.memory:
                step = keras.ops.convert_to_numpy(match.step_variable)
                shape = tuple(layer.step_variable.shape)
                try:
                    layer.step_variable.assign(np.broadcast_to(step, shape))
                except ValueError as error:
                    raise ValueError(f"{name}: the checkpoint's steps {step.shape} do not broadcast to this "
                                     f"model's {shape} (a finer --granularity than the model refined?)") from error
                copied.append(name)
            continue
        shapes = [tuple(w.shape) for w in layer.weights]
        if match is None or [tuple(w.shape) for w in match.weights] != shapes:
            missing.append(name)
            continue
        layer.set_weights(match.get_weights())
        copied.append(name)
    if missing:
        raise ValueError(f"the checkpoint has no layer of the same name and shapes for: {', '.join(missing)}")
    return copied


def init_from_checkpoint(model: keras.Model, checkpoint: str | os.PathLike) -> list[str]:
    """Loads a trained model's checkpoint (``.keras`` or run folder) into ``model`` by layer name."""
    return transfer_weights(load_model_from(checkpoint)[1], model)

