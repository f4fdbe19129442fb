"""Builders that turn the parts of a `TrainConfig` into the data, model and optimiser of a run.

Each builder takes the part it needs (`DataConfig`, `SparsityConfig`, `OptimizationConfig`...); a `TrainConfig`
is every part, so a run passes itself. `build_model` alone combines parts (model, sparsity and the data's
classes and frame size)."""

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
from delta_keras.train.config import (ConfigError, DataConfig, ModelConfig, OptimizationConfig, SparsityConfig,
                                      TrainConfig)
from delta_keras.train.run_folder import load_model_from

# Opened UCF101 splits, so that a process checks each split's videos once (see `video_folder`).
_FOLDERS: dict[tuple, data.VideoFolder] = {}


# ---------------------------------------------------------------------------- data
def video_index(config: DataConfig) -> Path:
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


def _probing(config: DataConfig) -> dict:
    return dict(verify=config.verify_videos, index=video_index(config), workers=config.decode_threads)


def video_folder(config: DataConfig, split: str) -> data.VideoFolder:
    """The opened (listed, checked and probed) UCF101 split of the config, opened once per process.

    The key includes the list files' modification times, so an edited list is read again.
    """
    root = Path(config.data_dir).resolve()
    lists = root / "ucfTrainTestlist"
    stamps = tuple(f.stat().st_mtime_ns if f.exists() else None
                   for f in (lists / "classInd.txt", lists / f"{split}list0{config.fold}.txt"))
    return _opened((root, split, config.fold, stamps, config.verify_videos),
                   lambda: data.VideoFolder(root, split, fold=config.fold, **_probing(config)))


def class_folder(config: DataConfig, split: str) -> data.ClassFolder:
    """The opened (split, checked and probed) part of ``--dataset folder``: ``"train"``, ``"validation"`` or
    ``"test"``, opened once per process."""
    root = Path(config.data_dir).resolve()
    settings = (config.fold, config.test_share, config.validation_share, config.group_pattern)
    return _opened((root, split, settings, config.verify_videos),
                   lambda: data.ClassFolder(root, split, fold=config.fold, test_share=config.test_share,
                                            validation_share=config.validation_share, group=config.group_pattern,
                                            **_probing(config)))


def file_source(config: DataConfig, split: str) -> data.ProbedVideos:
    """The opened split of a video-file dataset (``ucf101`` or ``folder``)."""
    return class_folder(config, split) if config.dataset == "folder" else video_folder(config, split)


def validation_split(config: DataConfig) -> str:
    """The split validated on after every epoch: a class folder's validation part, else the test split (UCF101
    and the synthetic actions have no other)."""
    return "validation" if config.dataset == "folder" else "test"


def unlabelled_videos(config: DataConfig) -> data.VideoFiles:
    """The checked and probed videos of ``--unlabelled-dir``, opened once per process."""
    root = Path(config.unlabelled_dir).resolve()
    return _opened((root, "unlabelled", config.verify_videos), lambda: data.VideoFiles(root, **_probing(config)))


def configure_decoding(config: DataConfig) -> None:
    """Applies ``--opencv-threads`` (threads OpenCV may use inside one decode)."""
    if config.opencv_threads is not None:
        import cv2  # noqa: PLC0415 (only the video sources need OpenCV)

        cv2.setNumThreads(config.opencv_threads)


def num_classes(config: DataConfig) -> int:
    """Classes of the config's dataset, as its source says (``classInd.txt``, tfds' label feature)."""
    if config.dataset == "synthetic":
        return len(data.SYNTHETIC_CLASSES)
    if config.dataset in ("ucf101", "folder"):
        return len(file_source(config, "train").classes)
    import tensorflow_datasets as tfds  # noqa: PLC0415 (slow import, only for this source)

    return tfds.builder(config.tfds_config, data_dir=config.data_dir).info.features["label"].num_classes


def data_summary(config: DataConfig) -> dict:
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


def check_training_videos(config: DataConfig) -> None:
    """Raises `ConfigError` when fewer usable training videos than a batch exist (nothing would train)."""
    usable = training_videos(config)
    if usable < config.batch_size:
        raise ConfigError(f"{usable} usable training video(s) but --batch-size {config.batch_size}: every batch "
                          "drops its remainder, so nothing would train; lower --batch-size or add videos")


def _reading(config: DataConfig) -> dict:
    """How a video-file source reads: cache, its bound, decode parallelism."""
    return dict(cache_dir=config.cache_dir, cache_max_gb=config.cache_max_gb, parallel_reads=config.decode_threads)


def clip_sampling(config: DataConfig, training: bool, clips_per_video: int = 1,
                  labelled: bool = True) -> data.ClipSampling:
    """How the run cuts clips: the config's frames, stride, size and seed; flips except on the synthetic actions'
    labelled clips (their labels are directions of motion). ``labelled=False``: ``--unlabelled-dir``'s videos."""
    return data.ClipSampling(frames=config.frames, frame_stride=config.frame_stride, image_size=config.image_size,
                             training=training, clips_per_video=clips_per_video, seed=config.seed,
                             flip=not (labelled and config.dataset == "synthetic"))


def clip_source(config: DataConfig, split: str, training: bool, clips_per_video: int = 1,
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


def videos_in_split(config: DataConfig, split: str) -> int:
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


def training_videos(config: DataConfig) -> int:
    """Usable training videos: those of ``--unlabelled-dir``, else of the dataset's training split."""
    if config.unlabelled_dir:
        return len(unlabelled_videos(config).videos)
    if config.dataset in ("ucf101", "folder"):
        return len(file_source(config, "train").videos)
    return videos_in_split(config, "train")


def epoch_steps(config: DataConfig) -> int:
    """Batches per epoch: ``steps_per_epoch``, else one pass over the training videos."""
    videos = len(unlabelled_videos(config).videos) if config.unlabelled_dir else videos_in_split(config, "train")
    return config.steps_per_epoch or max(videos // config.batch_size, 1)


def train_dataset(config: DataConfig) -> tf.data.Dataset:
    """Batched training clips (with labels, or alone from ``--unlabelled-dir``), repeated forever:
    `epoch_steps` cuts it into epochs, so an epoch has a known length (for the progress bar and the cosine
    schedule) even when bad videos are skipped."""
    if config.unlabelled_dir:
        source = unlabelled_videos(config).clips(clip_sampling(config, training=True, labelled=False),
                                                 **_reading(config))
    else:
        source = clip_source(config, "train", training=True)
    return source.batch(config.batch_size, drop_remainder=True).repeat().prefetch(tf.data.AUTOTUNE)


def validation_steps(config: DataConfig) -> int:
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


def _per_class(config: DataConfig, videos: int) -> int:
    """Videos of each class that make at least ``videos`` in all."""
    return math.ceil(videos / num_classes(config))


def validation_dataset(config: DataConfig) -> tf.data.Dataset:
    """Batched centre clips of the `validation_split` (one per video), for the per-epoch validation: every video,
    or with ``validation_steps`` the first videos of each class (a fixed, stratified sample). Decoded each
    epoch and never cached in memory, so memory does not grow with the validation set (``--cache-dir`` makes
    the decoding cheap)."""
    per_class = _per_class(config, config.validation_steps * config.batch_size) if config.validation_steps else None
    dataset = clip_source(config, validation_split(config), training=False, videos_per_class=per_class)
    dataset = dataset.batch(config.batch_size)
    return dataset.take(validation_steps(config)).prefetch(tf.data.AUTOTUNE)


def mac_clips(config: DataConfig):
    """The fixed batch of test clips the simulator counts MACs on: centre clips of the first video of each class
    (of as many classes as a batch holds, in list order)."""
    source = clip_source(config, "test", training=False, videos_per_class=_per_class(config, config.batch_size))
    return next(iter(source.batch(config.batch_size)))[0]


def evaluation_dataset(config: DataConfig) -> tf.data.Dataset:
    """Batched ``(clip, label, video_id)`` with ``eval_clips`` evenly spread clips per test video (of every test
    video, or of the first ``eval_videos_per_class`` of each class)."""
    dataset = clip_source(config, "test", training=False, clips_per_video=config.eval_clips, with_video_id=True,
                          videos_per_class=config.eval_videos_per_class)
    return dataset.batch(config.batch_size).prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------- model
def sparsity_schedule(config: SparsityConfig) -> regularizers.Schedule:
    """The sparsity-weight schedule of the config (evaluated in-graph from each layer's training step)."""
    weight = config.resolved().sparsity_weight
    if config.sparsity_schedule == "warmup":
        return regularizers.LinearWarmup(weight, config.sparsity_warmup_steps, config.sparsity_start_step)
    if config.sparsity_schedule == "step":
        return regularizers.PiecewiseConstant([config.sparsity_start_step], [0.0, weight])
    return regularizers.Constant(weight)


def build_classifier(model: ModelConfig, sparsity: SparsityConfig, num_classes: int, image_size: int) -> keras.Model:
    """The clip classifier of a model part and a sparsity part (uncompiled), returning logits.

    Call it inside ``strategy.scope()`` to place its variables.
    """
    sparsity = sparsity.resolved()
    layer_kwargs = {}
    if sparsity.sparsity != "none":
        include_input = sparsity.include_input
        if sparsity.include_input and (sparsity.input_step_init or sparsity.input_memory is not None):
            include_input = {k: v for k, v in (("step_init", sparsity.input_step_init),
                                               ("memory", sparsity.input_memory)) if v is not None}
        layer_kwargs.update(sparsity_weight=sparsity_schedule(sparsity), include_input=include_input,
                            normalization=sparsity.sparsity_normalization)
    if sparsity.sparsity == "delta":
        layer_kwargs.update(step_init=sparsity.step_init, granularity=sparsity.granularity,
                            step_gradient=sparsity.step_gradient, memory=sparsity.memory)
    # Clips of any length: the data fixes --frames (its clips have a static length, which keeps the sparsity
    # layers on their fast path), and the same model runs longer clips (the study's real clip) unchanged.
    return models.video_classifier(
        model.backbone,
        num_classes,
        frames=None,
        image_size=image_size,
        sparsity=None if sparsity.sparsity == "none" else sparsity.sparsity,
        weights=None if model.weights == "none" else model.weights,
        alpha=model.alpha,
        motion=True if model.motion else None,
        blocks=model.blocks,
        frozen_blocks=model.frozen_blocks,
        head=model.head,
        dropout=model.dropout,
        **layer_kwargs,
    )


def build_model(config: TrainConfig) -> keras.Model:
    """The clip classifier of a run (`build_classifier` with the data's classes and frame size)."""
    return build_classifier(config, config, num_classes(config), config.image_size)


def build_optimizer(config: OptimizationConfig, total_steps: int, step_rate: float = 1.0) -> keras.optimizers.Optimizer:
    """SGD (momentum 0.9) or Adam, with a constant learning rate or a cosine decay to 0 over ``total_steps``
    (the quantisation steps at ``step_rate`` x, `SparsityConfig.step_rate`; the classification head at
    ``head_rate`` x).

    The cosine schedule is a function of ``optimizer.iterations``, which a checkpoint restores, so a
    resumed run continues on the same curve.
    """
    learning_rate = config.learning_rate
    if config.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, total_steps)
    optimizer = keras.optimizers.SGD(learning_rate, momentum=0.9) if config.optimizer == "sgd" else \
        keras.optimizers.Adam(learning_rate)
    if step_rate == 1 and config.head_rate == 1:
        return optimizer
    return with_step_rate(optimizer, step_rate, config.head_rate, models.HEAD_LAYERS)


def build_distiller(config: OptimizationConfig, student: keras.Model) -> models.Distiller:
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


def compile_model(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                  config: OptimizationConfig | None = None, labelled: bool = True) -> None:
    """Compiles for classification from logits (the sparsity layers add their own losses); a `Distiller`
    learns its teacher's logits (KL at ``config.temperature``), with the labels at ``config.label_weight``.
    ``labelled=False`` (training on unlabelled videos): no accuracy metric."""
    labels = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")] if labelled else []
    if isinstance(model, models.Distiller):
        model.compile(optimizer=optimizer, distillation_loss="kl", temperature=config.temperature,
                      label_loss=labels if config.label_weight else None, label_weight=config.label_weight,
                      metrics=metrics)
    else:
        model.compile(optimizer=optimizer, loss=labels, metrics=metrics)


def compiled_model(config: TrainConfig) -> keras.Model:
    """The run's model, compiled: the classifier, or with ``--distill-from`` a `Distiller` around it (the
    cosine schedule spans ``epochs`` x `epoch_steps`)."""
    model = build_model(config)
    if config.distill_from:
        model = build_distiller(config, model)
    compile_model(model, build_optimizer(config, config.epochs * epoch_steps(config), config.step_rate), config,
                  labelled=config.unlabelled_dir is None)
    return model


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

