"""Synthetic action videos: one textured object whose motion is the class.

Each video shows a static textured background and one two-tone object (disc,
square, diamond or triangle; random size, colours, orientation and position)
that moves according to its class, plus sensor noise and optional camera
jitter. All random draws of a video are made in the same order whatever its
class, and every motion starts from the drawn state, so frame 0 of a video does
not depend on its class at all: only motion tells classes apart. Positions wrap
around the frame (a torus), so objects never leave the picture and the class
does not show in where objects are.
"""

from __future__ import annotations

import os
from pathlib import Path
from statistics import NormalDist
from typing import Sequence

import cv2
import numpy as np
import tensorflow as tf

from delta_keras.data.sampling import ClipSampling, clip_dataset, first_videos_per_class
from delta_keras.data.video import write_video

SYNTHETIC_CLASSES = [
    "move_left",
    "move_right",
    "move_up",
    "move_down",
    "rotate_cw",
    "rotate_ccw",
    "grow",
    "shrink",
    "blink",
    "bounce",
    "orbit",
    "still",
]
_SPLIT_CODES = {"train": 0, "test": 1, "folder": 2}
_SHAPES = 4
# The 256 quantiles of the standard normal: indexing it with random bytes gives
# Gaussian noise several times faster than drawing normals.
_GAUSSIAN_LEVELS = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)], np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Muted colour blobs, oriented stripes and fine grain: static texture.

    Kept in mid tones and low saturation so that the saturated object stands out.
    """
    grey = rng.uniform(70, 170)
    tint = rng.uniform(-25, 25, (4, 4, 3)) + rng.uniform(-20, 20, (4, 4, 1))
    blobs = cv2.resize((grey + tint).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    frequency = rng.uniform(0.04, 0.12) * 2 * np.pi
    direction = rng.uniform(0, np.pi)
    stripes = 10 * np.sin(frequency * (x * np.cos(direction) + y * np.sin(direction)) + rng.uniform(0, 2 * np.pi))
    grain = rng.normal(0, 5, (size, size)).astype(np.float32)
    return np.clip(blobs + (stripes + grain)[..., None], 0, 255)


def _sprite(rng: np.random.Generator, size: int) -> np.ndarray:
    """The object centred on a `size x size` canvas, as premultiplied RGBA float32."""
    radius = rng.uniform(0.14, 0.2) * size
    shape = rng.integers(_SHAPES)
    # Saturated colours far from the muted background, two of them so rotation shows.
    colours = np.where(rng.random((2, 3)) < 0.5, rng.uniform(0, 40, (2, 3)), rng.uniform(215, 255, (2, 3)))
    v, u = np.mgrid[0:size, 0:size].astype(np.float32) - size // 2
    if shape == 0:  # disc
        inside = u**2 + v**2 <= radius**2
    elif shape == 1:  # square
        inside = np.maximum(abs(u), abs(v)) <= 0.85 * radius
    elif shape == 2:  # diamond
        inside = abs(u) + abs(v) <= 1.2 * radius
    else:  # triangle
        inside = (v <= 0.6 * radius) & (v >= 1.6 * abs(u) - radius)
    alpha = inside.astype(np.float32)
    rgb = np.where((u > 0)[..., None], colours[0], colours[1]).astype(np.float32)
    return np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=-1)


def _motion(label: int, rng: np.random.Generator, size: int, video_frames: int, times: np.ndarray):
    """Position offset (x, y), rotation (degrees), scale and visibility at `times`.

    All parameters are drawn for every class (same draws, same order), then the
    class picks which ones it uses; at t = 0 every class is in the base state.
    """
    speed = rng.uniform(1.5, 2.5) * size / 64
    spin = rng.uniform(7, 14)  # degrees per frame
    blink_half_period = rng.integers(2, 4)
    bounce_height, bounce_period = rng.uniform(0.15, 0.25) * size, rng.uniform(6, 10)
    orbit_radius, orbit_speed = rng.uniform(0.12, 0.2) * size, rng.uniform(2 * np.pi / 16, 2 * np.pi / 10)
    orbit_phase, orbit_direction = rng.uniform(0, 2 * np.pi), rng.choice([-1, 1])
    t = times.astype(np.float32)
    zero = np.zeros_like(t)
    dx, dy, angle, scale, visible = zero, zero, zero, np.ones_like(t), np.ones_like(t, dtype=bool)
    name = SYNTHETIC_CLASSES[label]
    if name in ("move_left", "move_right"):
        dx = speed * t * (1 if name == "move_right" else -1)
    elif name in ("move_up", "move_down"):
        dy = speed * t * (1 if name == "move_down" else -1)
    elif name in ("rotate_cw", "rotate_ccw"):
        angle = spin * t * (1 if name == "rotate_ccw" else -1)  # OpenCV: positive is counter-clockwise
    elif name in ("grow", "shrink"):
        scale = 2.0 ** (t / max(video_frames - 1, 1) * (1 if name == "grow" else -1))
    elif name == "blink":
        visible = (times // blink_half_period) % 2 == 0
    elif name == "bounce":
        dy = -bounce_height * np.abs(np.sin(np.pi * t / bounce_period))
    elif name == "orbit":
        phase = orbit_phase + orbit_direction * orbit_speed * t
        dx = orbit_radius * (np.cos(phase) - np.cos(orbit_phase))
        dy = orbit_radius * (np.sin(phase) - np.sin(orbit_phase))
    return dx, dy, angle, scale, visible


def synthetic_video(
    label: int,
    seed: int | Sequence[int],
    times: Sequence[int] | None = None,
    image_size: int = 64,
    video_frames: int = 16,
    noise: float = 0.02,
    camera_jitter: int = 0,
) -> np.ndarray:
    """Renders frames of one synthetic action video.

    Args:
        label: class index into `SYNTHETIC_CLASSES`.
        seed: int or sequence of ints (a `numpy.random.SeedSequence` entropy)
            fixing the scene: background, object, start state and noise.
        times: frame numbers to render, in `[0, video_frames)`; defaults to all.
        image_size: frames are `image_size x image_size`.
        video_frames: length of the video (grow/shrink double/halve the size over it).
        noise: standard deviation of the Gaussian sensor noise, as a fraction of 255.
        camera_jitter: largest camera shake in pixels (0: a still camera).

    Returns:
        uint8 array `(len(times), image_size, image_size, 3)`, RGB.

    Example:

    >>> clip = synthetic_video(SYNTHETIC_CLASSES.index("move_left"), seed=7)
    >>> clip.shape
    (16, 64, 64, 3)
    """
    size = image_size
    times = np.arange(video_frames) if times is None else np.asarray(times)
    rng = np.random.default_rng(seed)
    margin = int(camera_jitter)
    background = _background(rng, size + 2 * margin)
    sprite = _sprite(rng, size)
    x0, y0, angle0, scale0 = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0, 360), rng.uniform(0.85, 1.15)
    shake = rng.integers(-margin, margin + 1, (video_frames, 2))[times]
    dx, dy, angle, scale, visible = _motion(label, rng, size, video_frames, times)
    noise_bytes = np.frombuffer(rng.bytes(len(times) * size * size * 3), np.uint8)
    # + 0.5 so that the final conversion rounds instead of truncating.
    noise_frames = (_GAUSSIAN_LEVELS * (noise * 255) + 0.5)[noise_bytes].reshape(len(times), size, size, 3)

    centre = size // 2
    layers = np.zeros((len(times), size, size, 4), np.float32)
    for i in np.flatnonzero(visible):
        # A camera moved by `shake` moves the whole picture, object and background, by `-shake`.
        x, y = x0 + dx[i] - shake[i, 0], y0 + dy[i] - shake[i, 1]
        # Sub-pixel placement in the warp, whole pixels by rolling (wraps around).
        matrix = cv2.getRotationMatrix2D((centre, centre), angle0 + angle[i], scale0 * scale[i])
        whole_x, whole_y = np.floor(x), np.floor(y)
        matrix[:, 2] += (x - whole_x, y - whole_y)
        layer = cv2.warpAffine(sprite, matrix, (size, size), flags=cv2.INTER_LINEAR)
        layers[i] = np.roll(layer, (int(whole_y) - centre, int(whole_x) - centre), axis=(0, 1))
    if margin:
        rows = np.arange(size) + (shake[:, 1:] + margin)
        columns = np.arange(size) + (shake[:, :1] + margin)
        backdrop = background[rows[:, :, None], columns[:, None, :]]
    else:
        backdrop = background[None]
    frames = backdrop * (1 - layers[..., 3:])
    frames += layers[..., :3]
    frames += noise_frames
    return np.clip(frames, 0, 255, out=frames).astype(np.uint8)


def _video_seed(seed: int, split: str, index: int) -> list[int]:
    # Distinct SeedSequence entropy for each (split, index): splits never share a video.
    return [seed, _SPLIT_CODES[split], int(index)]


def synthetic_actions(
    split: str = "train",
    num_videos: int = 1200,
    sampling: ClipSampling | None = None,
    *,
    with_video_id: bool = False,
    noise: float = 0.02,
    camera_jitter: int = 0,
    video_frames: int | None = None,
    videos_per_class: int | None = None,
    **sampling_fields,
) -> tf.data.Dataset:
    """Synthetic action clips, rendered on the fly, in the common element format.

    Video `i` has class `i % len(SYNTHETIC_CLASSES)` and a scene drawn from
    `(seed, split, i)`, so train and test never share a video and every run
    with the same arguments yields the same clips. In training the clips get
    the usual random start and brightness/contrast jitter but no flips (a flip
    would turn `move_left` into `move_right`).

    Args:
        split: `"train"` or `"test"`.
        num_videos: videos in the split.
        sampling: how clips are cut (`ClipSampling`); its `seed` also draws the
            scenes, and frames are rendered at its `image_size` (so `short_side`
            must be unset) and never flipped (`flip=False`). Or, instead, its
            fields as keywords: here `image_size` defaults to 64, `flip` to False
            and `training` to `split == "train"`.
        with_video_id: yield `(clip, label, video_id)`.
        noise: sensor noise standard deviation as a fraction of 255.
        camera_jitter: largest camera shake in pixels, 0 for a still camera.
        video_frames: length of each video; defaults to `frames * frame_stride`
            (one clip covers the whole video).
        videos_per_class: only the first this many videos of each class.
        **sampling_fields: `ClipSampling` fields, when `sampling` is not given.

    Returns:
        A `tf.data.Dataset` of `(clip, label)`: clip float32
        `(frames, image_size, image_size, 3)` RGB in [0, 255], label int32 in
        `[0, len(SYNTHETIC_CLASSES))`.

    Example:

    >>> train = synthetic_actions("train", num_videos=2400, frames=8).batch(32)  # doctest: +SKIP
    >>> test = synthetic_actions("test", num_videos=600, frames=8).batch(32)  # doctest: +SKIP
    >>> model.fit(train, validation_data=test, epochs=5)  # doctest: +SKIP
    """
    if split not in ("train", "test"):
        raise ValueError(f'synthetic_actions: split must be "train" or "test", got {split!r}')
    sampling = ClipSampling.of(sampling, split, "synthetic_actions", defaults={"image_size": 64, "flip": False},
                               **sampling_fields)
    if sampling.flip:
        raise ValueError("synthetic_actions: sampling.flip must be False (a flip turns move_left into move_right)")
    if sampling.resize_to != sampling.image_size:
        raise ValueError(f"synthetic_actions: frames are rendered at image_size; short_side must be unset, got "
                         f"{sampling.short_side}")
    frames, frame_stride, image_size, seed = sampling.frames, sampling.frame_stride, sampling.image_size, sampling.seed
    video_frames = video_frames or frames * frame_stride
    index = np.arange(num_videos, dtype=np.int32)
    videos = tf.data.Dataset.from_tensor_slices(
        {
            "num_frames": np.full(num_videos, video_frames, np.int32),
            "label": index % len(SYNTHETIC_CLASSES),
            "video_id": index,
        }
    )

    def render(video_id: np.int32, label: np.int32, times: np.ndarray) -> np.ndarray:
        return synthetic_video(
            int(label), _video_seed(seed, split, video_id), times, image_size, video_frames, noise, camera_jitter
        )

    def load(video: dict, indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        clip = tf.numpy_function(render, [video["video_id"], video["label"], indices], tf.uint8)
        return tf.ensure_shape(clip, (None, image_size, image_size, 3)), tf.constant(True)

    kept = num_videos
    if videos_per_class is not None:
        videos = first_videos_per_class(videos, videos_per_class, len(SYNTHETIC_CLASSES))
        kept = sum(min(videos_per_class, len(range(c, num_videos, len(SYNTHETIC_CLASSES))))
                   for c in range(len(SYNTHETIC_CLASSES)))
    shuffle = num_videos * sampling.clips_per_video if sampling.training else None
    clips = clip_dataset(videos, load, sampling, with_video_id, shuffle_buffer=shuffle)
    # Every rendered clip is kept, so the length is known: Keras then knows an epoch's steps (and does not
    # warn that the input "ran out of data" at the end of the first one).
    return clips.apply(tf.data.experimental.assert_cardinality(kept * sampling.clips_per_video))


def write_ucf101_folder(
    root: str | os.PathLike,
    num_videos_per_class: int = 4,
    frames: int = 32,
    image_size: int = 64,
    seed: int = 0,
    noise: float = 0.02,
    camera_jitter: int = 0,
    fps: int = 25,
) -> Path:
    """Writes synthetic action videos to disk in the UCF101 folder layout.

    Creates `<root>/UCF-101/<Class>/v_<Class>_gXX_cYY.avi` (Motion-JPEG, which
    every OpenCV build writes and reads) with CamelCase class names
    (`move_left` -> `MoveLeft`), and `<root>/ucfTrainTestlist/` with
    `classInd.txt`, `trainlist0N.txt` and `testlist0N.txt` for N = 1, 2, 3.
    Like UCF101, videos are spread over 25 groups and fold N tests on groups
    `7N-6 .. 7N`.

    Args:
        root: output folder, created if needed.
        num_videos_per_class: videos per class, spread evenly over 25 groups.
        frames: frames per video.
        image_size: frame height and width.
        seed: seed of the scenes (distinct from `synthetic_actions`' videos).
        noise: sensor noise as a fraction of 255.
        camera_jitter: largest camera shake in pixels.
        fps: frame rate written in the container.

    Returns:
        `root`, as a `Path`.

    Example:

    >>> root = write_ucf101_folder("/tmp/synthetic_ucf", num_videos_per_class=8)  # doctest: +SKIP
    >>> train = ucf101(root, "train", fold=1, image_size=64)  # doctest: +SKIP
    """
    root = Path(root)
    classes = ["".join(word.title() for word in name.split("_")) for name in SYNTHETIC_CLASSES]
    lists = {(split, fold): [] for split in ("train", "test") for fold in (1, 2, 3)}
    # Spread each class's videos evenly over the 25 groups, several clips a group if needed.
    groups = [1 + (i * 25 // num_videos_per_class) % 25 for i in range(num_videos_per_class)]
    clip_numbers = [groups[: i + 1].count(group) for i, group in enumerate(groups)]
    for label, name in enumerate(classes):
        (root / "UCF-101" / name).mkdir(parents=True, exist_ok=True)
        for i, (group, clip_number) in enumerate(zip(groups, clip_numbers)):
            relative = f"{name}/v_{name}_g{group:02d}_c{clip_number:02d}.avi"
            clip = synthetic_video(label, [seed, _SPLIT_CODES["folder"], label, i], None, image_size, frames, noise, camera_jitter)
            write_video(root / "UCF-101" / relative, clip, fps)
            for fold in (1, 2, 3):
                if 7 * fold - 6 <= group <= 7 * fold:
                    lists["test", fold].append(relative)
                else:
                    lists["train", fold].append(f"{relative} {label + 1}")
    lists_dir = root / "ucfTrainTestlist"
    lists_dir.mkdir(parents=True, exist_ok=True)
    (lists_dir / "classInd.txt").write_text("".join(f"{i + 1} {name}\n" for i, name in enumerate(classes)))
    for (split, fold), lines in lists.items():
        (lists_dir / f"{split}list0{fold}.txt").write_text("".join(line + "\n" for line in lines))
    return root


def write_class_folder(
    root: str | os.PathLike,
    num_classes: int = len(SYNTHETIC_CLASSES),
    sources_per_class: int = 6,
    clips_per_source: int = 3,
    frames: int | tuple[int, int] = 16,
    image_size: int = 32,
    shared_sources: int = 0,
    seed: int = 0,
    fps: int = 25,
) -> Path:
    """Writes synthetic action videos in a class-folder tree named as JHMDB's: for `delta_keras.data.ClassFolder`.

    Creates ``<root>/<class>/<Source>_<class>_clip_<k>.avi`` (Motion-JPEG) for the first ``num_classes``
    synthetic classes (names as `SYNTHETIC_CLASSES`): ``clips_per_source`` clips of each source video, so a leak-free split must keep them
    together; the first ``shared_sources`` sources (``Movie_0``...) have clips in every class, as a film with
    several actions does. ``frames`` is every clip's length, or ``(shortest, longest)``: each clip's length
    drawn from that range (JHMDB's clips run 15-40 frames).

    Returns:
        ``root`` as a `Path`.
    """
    root = Path(root)
    lengths = (frames, frames) if isinstance(frames, int) else frames
    for label, name in enumerate(SYNTHETIC_CLASSES[:num_classes]):
        (root / name).mkdir(parents=True, exist_ok=True)
        for source in range(sources_per_class):
            movie = f"Movie_{source}" if source < shared_sources else f"Video{label:02d}x{source}"
            for k in range(clips_per_source):
                video_seed = [seed, label, source, k]
                length = int(np.random.default_rng(video_seed).integers(lengths[0], lengths[1] + 1))
                write_video(root / name / f"{movie}_{name}_clip_{k}.avi",
                           synthetic_video(label, video_seed, np.arange(length), image_size, length), fps)
    return root


