"""Clip sampling, resizing and augmentation shared by every video source.

Every source (UCF101 folder, UCF101 tfds, synthetic actions) describes its
videos as a `tf.data.Dataset` of dicts with `num_frames`, `label` and
`video_id` plus whatever its loader needs, and hands them to `clip_dataset`
with a `load` function that returns the frames at given indices. Where clips
start, how they are cropped and augmented is decided here, once, so all
sources yield the same element format with the same statistics.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import tensorflow as tf

Loader = Callable[[dict, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]

# Stream numbers of the stateless random draws of one clip.
_START, _CROP_Y, _CROP_X, _FLIP, _CONTRAST, _BRIGHTNESS = range(6)


@dataclasses.dataclass(frozen=True)
class ClipSampling:
    """How clips are cut from videos and turned into model inputs.

    A video is first subsampled in time: with `frame_stride=s` it is seen as
    frames `0, s, 2s, ...`, and a clip is `frames` consecutive frames of that
    subsampled video (so it spans `frames * s` source frames).

    - Training (`training=True`): each clip starts at a random position, is
      cropped at a random place and, where enabled, flipped horizontally and
      jittered in brightness and contrast. Every random parameter is drawn once
      per clip and applied identically to all its frames.
    - Evaluation: the `clips_per_video` clips are spread evenly over the video
      (clip `k` of `K` starts at `(2k + 1) / (2K)` of the possible range; one
      clip is the centre clip) and centre-cropped.
    - Videos shorter than a clip: the clip starts at frame 0 and the last frame
      is repeated to fill it (so its motion simply stops).
    - Size: frames are resized so that their shorter side is `short_side`
      (aspect ratio kept), then cropped to `image_size x image_size`.

    Args:
        frames: frames per clip (T).
        frame_stride: temporal subsampling step, >= 1.
        image_size: height and width of the output clips.
        short_side: length of the shorter side after resizing, >= `image_size`;
            defaults to `image_size` (crop only along the longer side).
        clips_per_video: clips taken from each video per epoch.
        training: random clip start, crop and augmentation when `True`.
        flip: random horizontal flips in training. Must be off for data whose
            labels depend on the direction of motion (left vs right).
        brightness: largest brightness shift in training, as a fraction of 255.
        contrast: largest relative contrast change in training.
        seed: seed of every random draw; equal seeds give equal datasets.
    """

    frames: int = 16
    frame_stride: int = 1
    image_size: int = 112
    short_side: int | None = None
    clips_per_video: int = 1
    training: bool = False
    flip: bool = True
    brightness: float = 0.1
    contrast: float = 0.1
    seed: int = 0

    def __post_init__(self):
        for name in ("frames", "frame_stride", "image_size", "clips_per_video"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.short_side is not None and self.short_side < self.image_size:
            raise ValueError(
                f"short_side ({self.short_side}) must be >= image_size ({self.image_size})"
            )

    @classmethod
    def of(cls, sampling: "ClipSampling | None", split: str, source: str, defaults: dict | None = None,
           **fields) -> "ClipSampling":
        """The sampling a source was asked for: ``sampling`` itself, or one made from keyword fields.

        Every source takes either a `ClipSampling` (``sampling=``) or its fields as keywords
        (``ucf101(root, "train", frames=8)`` is shorthand for ``ucf101(root, "train",
        sampling=ClipSampling(frames=8, training=True))``), never both.

        Args:
            sampling: the sampling, or None to make one from ``fields``.
            split: the source's split; ``training`` defaults to ``split == "train"`` when made from fields.
            source: the source's name, for error messages.
            defaults: the source's own defaults of fields that were not given.
            **fields: `ClipSampling` fields.

        Raises:
            TypeError: a keyword is not a `ClipSampling` field, or ``sampling`` is not a `ClipSampling`.
            ValueError: both ``sampling`` and fields were given.
        """
        unknown = sorted(set(fields) - {field.name for field in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"{source}: unknown argument(s) {', '.join(unknown)}; clips are described by "
                            f"ClipSampling's fields: {', '.join(field.name for field in dataclasses.fields(cls))}")
        if sampling is not None:
            if not isinstance(sampling, cls):
                raise TypeError(f"{source}: sampling must be a ClipSampling, got {sampling!r}")
            if fields:
                raise ValueError(f"{source}: pass either sampling= or its fields ({', '.join(sorted(fields))}), not both")
            return sampling
        settings = {**(defaults or {}), **fields}
        training = settings.pop("training", None)
        return cls(training=split == "train" if training is None else training, **settings)

    @property
    def resize_to(self) -> int:
        """Length of the shorter side after resizing."""
        return self.short_side or self.image_size

    def frame_indices(self, num_frames: tf.Tensor, clip_index: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Returns the source frame numbers of one clip.

        Args:
            num_frames: int32 scalar, frames in the video.
            clip_index: int32 scalar, which of the `clips_per_video` clips.
            seed: int64 scalar, the clip's random seed (used in training).

        Returns:
            int32 tensor `(frames,)` of frame numbers in `[0, num_frames)`.
        """
        length = (num_frames + self.frame_stride - 1) // self.frame_stride
        max_start = tf.maximum(length - self.frames, 0)
        if self.training:
            start = _uniform_int(seed, _START, max_start + 1)
        else:
            clips = self.clips_per_video
            start = ((2 * clip_index + 1) * max_start) // (2 * clips)
        positions = tf.minimum(start + tf.range(self.frames), length - 1)
        return positions * self.frame_stride

    def finish(self, frames: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Crops and augments resized frames into a model-ready clip.

        Args:
            frames: `(frames, H, W, 3)` with `min(H, W) == resize_to`, uint8 or float.
            seed: int64 scalar, the clip's random seed (used in training).

        Returns:
            float32 `(frames, image_size, image_size, 3)`, raw pixel values in [0, 255].
        """
        size = self.image_size
        spare = tf.shape(frames)[1:3] - size
        if self.training:
            top, left = _uniform_int(seed, _CROP_Y, spare[0] + 1), _uniform_int(seed, _CROP_X, spare[1] + 1)
        else:
            top, left = spare[0] // 2, spare[1] // 2
        clip = frames[:, top : top + size, left : left + size]
        if self.training and self.flip:
            clip = tf.cond(_uniform(seed, _FLIP, 0.0, 1.0) < 0.5, lambda: _flip(clip), lambda: clip)
        clip = tf.cast(clip, tf.float32)
        if self.training and (self.contrast or self.brightness):
            clip = self._jitter_colour(clip, seed)
        return tf.ensure_shape(clip, (self.frames, size, size, 3))

    def _jitter_colour(self, clip: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        # Contrast around the clip's mean grey level, so every frame gets the same
        # mapping; folded with the brightness shift into one multiply-add.
        factor = _uniform(seed, _CONTRAST, 1.0 - self.contrast, 1.0 + self.contrast)
        shift = _uniform(seed, _BRIGHTNESS, -self.brightness, self.brightness) * 255.0
        offset = tf.reduce_mean(clip) * (1.0 - factor) + shift
        return tf.clip_by_value(clip * factor + offset, 0.0, 255.0)


def _flip(clip: tf.Tensor) -> tf.Tensor:
    """Mirrors `(T, H, W, C)` frames left-right."""
    shape = tf.shape(clip)
    # Reversing the middle axis of a 3-D view is several times faster in TF
    # than reversing axis 2 of the 4-D clip.
    rows = tf.reshape(clip, tf.stack([-1, shape[2], shape[3]]))
    return tf.reshape(tf.reverse(rows, axis=[1]), shape)


def _seed_pair(seed: tf.Tensor, stream: int) -> tf.Tensor:
    return tf.stack([tf.cast(seed, tf.int64), tf.constant(stream, tf.int64)])


def _uniform(seed: tf.Tensor, stream: int, low: float, high: float) -> tf.Tensor:
    return tf.random.stateless_uniform([], _seed_pair(seed, stream), low, high)


def _uniform_int(seed: tf.Tensor, stream: int, stop: tf.Tensor) -> tf.Tensor:
    """A random int32 in `[0, stop)`."""
    return tf.random.stateless_uniform([], _seed_pair(seed, stream), 0, stop, dtype=tf.int32)


def resize_short_side(frames: tf.Tensor, short_side: int) -> tf.Tensor:
    """Resizes `(T, H, W, C)` frames so that their shorter side is `short_side`.

    The aspect ratio is kept (the longer side is rounded). Shrinking is
    antialiased, like OpenCV's `INTER_AREA` used for decoded videos.

    Args:
        frames: `(T, H, W, C)` tensor, any real or uint8 dtype.
        short_side: target length of the shorter side.

    Returns:
        float32 tensor `(T, H', W', C)` with `min(H', W') == short_side`.
    """
    shape = tf.cast(tf.shape(frames)[1:3], tf.float64)
    scale = short_side / tf.reduce_min(shape)
    size = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), short_side)
    return tf.image.resize(frames, size, antialias=True)


def first_videos_per_class(videos: tf.data.Dataset, per_class: int, num_classes: int) -> tf.data.Dataset:
    """The first ``per_class`` videos of each class, in the dataset's order: a fixed, class-stratified sample.

    It filters the video descriptions, before anything is decoded. Labels outside ``[0, num_classes)`` are
    dropped.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")

    def count(seen, video):
        label = tf.cast(video["label"], tf.int32)
        valid = (label >= 0) & (label < num_classes)
        slot = tf.clip_by_value(label, 0, num_classes - 1)
        keep = valid & (tf.gather(seen, slot) < per_class)
        seen = tf.tensor_scatter_nd_add(seen, [[slot]], [tf.cast(keep, tf.int32)])
        return seen, (keep, video)

    def kept(keep, video):
        return keep

    def video_of(keep, video):
        return video

    # Named functions, not lambdas: AutoGraph cannot tell two lambdas on one line apart and warns.
    return videos.scan(tf.zeros([num_classes], tf.int32), count).filter(kept).map(video_of)


def clip_dataset(
    videos: tf.data.Dataset,
    load: Loader,
    sampling: ClipSampling,
    with_video_id: bool = False,
    shuffle_buffer: int | None = None,
    parallel_reads: int | None = None,
) -> tf.data.Dataset:
    """Turns a dataset of videos into a dataset of `(clip, label[, video_id])`.

    In evaluation (``sampling.training`` False) every video is read once for all its clips (one call of
    ``load`` with the frames of every clip), and its clips follow each other in video order.

    Args:
        videos: dataset of dicts holding at least `num_frames` (int32 scalar),
            `label` (integer scalar) and `video_id` (int32 scalar), plus what
            `load` needs.
        load: `load(video, frame_indices)` returns `(frames, ok)`: the frames
            at `frame_indices`, resized to `sampling.resize_to` on the short
            side, and a bool scalar; clips with `ok == False` are dropped (the
            loader reports why).
        sampling: the clip sampling settings.
        with_video_id: add the video id as a third element, so that scores of
            several clips of one video can be averaged.
        shuffle_buffer: shuffle the clip descriptions (before loading) with a
            buffer of this size; `None` keeps the order (training only).
        parallel_reads: how many ``load`` calls run at once (`None`: tf.data's autotuning).

    Returns:
        A `tf.data.Dataset` of `clip` float32 `(T, S, S, 3)` in [0, 255] and
        `label` int32 (and `video_id` int32).
    """
    clips_per_video = sampling.clips_per_video
    parallel = tf.data.AUTOTUNE if parallel_reads is None else parallel_reads
    # One seed a clip (a video, in evaluation), fixed by `sampling.seed` and different in each epoch.
    seeds = tf.data.Dataset.random(seed=sampling.seed, rerandomize_each_iteration=True)

    def finish(frames, ok, label, video_id, seed):
        clip = sampling.finish(frames, seed)
        return (clip, label, video_id) if with_video_id else (clip, label)

    if not sampling.training:
        # Evaluation: one read a video for all its clips, so a video is opened and decoded once, not once a clip.
        def load_video(video, seed):
            num_frames = tf.cast(video["num_frames"], tf.int32)
            indices = tf.concat([sampling.frame_indices(num_frames, k, seed) for k in range(clips_per_video)], 0)
            frames, ok = load(video, indices)
            frames = tf.reshape(frames, tf.concat([[clips_per_video, sampling.frames], tf.shape(frames)[1:]], 0))
            repeat = lambda value: tf.fill([clips_per_video], value)  # noqa: E731
            return (frames, repeat(ok), repeat(tf.cast(video["label"], tf.int32)),
                    repeat(tf.cast(video["video_id"], tf.int32)), repeat(seed))

        loaded = tf.data.Dataset.zip(videos, seeds).map(load_video, num_parallel_calls=parallel).unbatch()
        return loaded.filter(lambda frames, ok, *rest: ok).map(finish, num_parallel_calls=tf.data.AUTOTUNE)

    clips = videos.flat_map(
        lambda video: tf.data.Dataset.range(clips_per_video).map(lambda k: (tf.cast(k, tf.int32), video))
    )
    if shuffle_buffer:
        clips = clips.shuffle(shuffle_buffer, seed=sampling.seed, reshuffle_each_iteration=True)

    def load_clip(clip, seed):
        clip_index, video = clip
        indices = sampling.frame_indices(tf.cast(video["num_frames"], tf.int32), clip_index, seed)
        frames, ok = load(video, indices)
        return frames, ok, tf.cast(video["label"], tf.int32), tf.cast(video["video_id"], tf.int32), seed

    return (
        tf.data.Dataset.zip(clips, seeds)
        .map(load_clip, num_parallel_calls=parallel)
        .filter(lambda frames, ok, *rest: ok)
        .map(finish, num_parallel_calls=tf.data.AUTOTUNE)
    )
