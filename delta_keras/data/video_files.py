"""Video files on disk as clip datasets: probing (frame counts, damaged files), the probe index, and the base
class of every file source (`ProbedVideos`: UCF101's `VideoFolder`, `ClassFolder`, `VideoFiles`)."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import threading
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tensorflow as tf

from delta_keras.data.cache import FrameCache
from delta_keras.data.sampling import ClipSampling, clip_dataset, first_videos_per_class
from delta_keras.data.video import (VideoDecodeError, count_frames, decode_check, probe_video, read_frames,
                                    report_decoder_errors)
from delta_keras.files import GENERATOR, write_json

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm")

class DataLayoutError(ValueError):
    """A dataset folder or list file that is not laid out as expected; the message names the file (and line)."""


@dataclasses.dataclass
class DecodeReport:
    """The videos a loader skipped, and why.

    Loaders add to it when a video is missing, cannot be opened, announces no
    frames or fails to decode (at probe time or while iterating); each addition
    also issues a `UserWarning` naming the file. Safe to update from the
    tf.data worker threads.

    Attributes:
        skipped: file path -> reason, in the order found.
    """

    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, path: str | os.PathLike, reason: str) -> None:
        """Records a skipped video (once) and warns about it."""
        with self._lock:
            if os.fspath(path) in self.skipped:
                return
            self.skipped[os.fspath(path)] = reason
        warnings.warn(f"skipping video {path}: {reason}", stacklevel=2)

    def __len__(self) -> int:
        return len(self.skipped)

    def summary(self) -> str:
        """One line a skipped video, after a count."""
        lines = [f"{len(self)} video(s) skipped"]
        lines += [f"  {path}: {reason}" for path, reason in self.skipped.items()]
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class VideoEntry:
    """One video of a split: its file, 0-based label, class and frame count."""

    path: Path
    label: int
    class_name: str
    num_frames: int


VERIFY_LEVELS = ("header", "full", "decode")
# Not a check level but a way of counting: every frame decoded and counted, the header ignored (`count_frames`).
COUNT = "count"


def verify_level(verify: bool | str) -> str:
    """``"header"`` (frame count only), ``"full"`` (also decode the first and last frames) or ``"decode"`` (decode
    every frame and read the decoder's error messages: finds damage inside a file); True means ``"full"``.
    ``"count"`` (decode and count every frame, the header ignored) is the probe of sources that do not trust
    their containers' headers."""
    level = {True: "full", False: "header"}[verify] if isinstance(verify, bool) else verify
    if level not in (*VERIFY_LEVELS, COUNT):
        raise ValueError(f"verify must be a bool or one of {VERIFY_LEVELS}, got {verify!r}")
    return level


def _probe_one(path: Path, level: str) -> int | str:
    """A video's frame count, or why it is unusable (a string: picklable across processes)."""
    try:
        if level == COUNT:
            return count_frames(path)
        return decode_check(path) if level == "decode" else probe_video(path, level == "full")
    except VideoDecodeError as error:
        return error.reason


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's share, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class ProbeIndex:
    """What probing found for each video, remembered across runs in a JSON file this package writes.

    Entries are keyed by the video's absolute path and checked against its size and modification time, so a
    replaced or edited file is probed again. A header-only probe does not stand in for a full one (a full
    one does for a header-only one; levels as `verify_level`). Failures are remembered too: a broken file is reported without being
    opened again, until it changes.

    Args:
        path: the index file (created on `save`; an existing file not written by this package is refused).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.entries: dict[str, list] = {}
        self._lock = threading.Lock()
        self._changed = False
        if self.path.is_file():
            try:
                saved = json.loads(self.path.read_text())
            except (OSError, ValueError):
                saved = {}
            if isinstance(saved, dict) and saved.get("generator") == GENERATOR and saved.get("version") == 2:
                self.entries = saved.get("videos", {})

    @staticmethod
    def _key(path: Path) -> tuple[str, list]:
        stat = path.stat()
        return os.path.abspath(path), [stat.st_size, stat.st_mtime_ns]

    def lookup(self, path: Path, level: str) -> int | str | None:
        """The remembered frame count (int) or failure (its reason), or None when unknown or stale."""
        try:
            key, stamp = self._key(path)
        except OSError:
            return None
        entry = self.entries.get(key)
        if entry is None or entry[:2] != stamp:
            return None
        if COUNT in (level, entry[2]):  # a count and a check are not each other's stand-in
            return entry[3] if entry[2] == level else None
        if VERIFY_LEVELS.index(entry[2]) < VERIFY_LEVELS.index(level):
            return None
        return entry[3]

    def remember(self, path: Path, level: str, result: int | str) -> None:
        try:
            key, stamp = self._key(path)
        except OSError:
            return  # a missing file is not remembered
        with self._lock:
            self.entries[key] = [*stamp, level, result]
            self._changed = True

    def save(self) -> None:
        """Writes the index (atomically) if anything was added."""
        if self._changed:
            write_json(self.path, {"version": 2, "videos": self.entries})
            self._changed = False


class ProbedVideos:
    """Videos whose frame counts are known, as a `tf.data.Dataset` of clips: what `VideoFolder` (UCF101) and
    `VideoFiles` (any folder of videos) share. Subclasses fill ``videos`` with `_probe`.

    Attributes:
        videos: the usable videos, as `VideoEntry`s; `video_id` is an index here.
        report: the `DecodeReport` of skipped videos (at probe time and while iterating).
        strict: raise on the first undecodable video instead of skipping it.
    """

    root: Path
    split: str
    videos: list[VideoEntry]
    # Class names in label order; labelled sources set them (`VideoFiles`' videos are unlabelled: -1).
    classes: tuple[str, ...] | list[str] = ()
    # Whether reading may seek to a clip's first frame (False: decode from the start; see `count_frames`).
    seek: bool = True

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.report = DecodeReport()

    def _probe(self, located: list[tuple[Path, int]], verify: bool | str, index: str | os.PathLike | None = None,
               workers: int | None = None) -> list[VideoEntry]:
        level = verify_level(verify)
        remembered = ProbeIndex(index) if index is not None else None
        paths = [path for path, _ in located]
        known = [remembered.lookup(path, level) if remembered else None for path in paths]
        unknown = [path for path, result in zip(paths, known) if result is None]
        workers = workers or usable_cores()
        if level == "decode":
            # Decoding whole videos reads FFmpeg's messages on standard error: one process per check at a time.
            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=report_decoder_errors) as pool:
                found = list(pool.map(_probe_one, unknown, [level] * len(unknown), chunksize=4))
        else:
            # OpenCV releases the GIL while decoding, so threads probe in parallel.
            with ThreadPoolExecutor(max_workers=workers) as pool:
                found = list(pool.map(_probe_one, unknown, [level] * len(unknown)))
        if remembered:
            for path, result in zip(unknown, found):
                remembered.remember(path, level, result)
            remembered.save()
        found = iter(found)
        videos = []
        for (path, label), result in zip(located, known):
            result = next(found) if result is None else result  # a frame count, or why the video is unusable
            if isinstance(result, str):
                self._skip(VideoDecodeError(path, result))
            else:
                videos.append(VideoEntry(path, label, self.classes[label] if label >= 0 else "", result))
        return videos

    def _skip(self, error: VideoDecodeError) -> None:
        if self.strict:
            raise error
        self.report.add(error.path, error.reason)

    def dataset(
        self,
        sampling: ClipSampling | None = None,
        *,
        cache_dir: str | os.PathLike | None = None,
        with_video_id: bool = False,
        cache_max_gb: float | None = None,
        parallel_reads: int | None = None,
        videos_per_class: int | None = None,
        **sampling_fields,
    ) -> tf.data.Dataset:
        """Returns the clips of this split as a `tf.data.Dataset`.

        Args:
            sampling: how clips are cut, resized and augmented (`ClipSampling`:
                frames, stride, size, clips per video, training, seed, ...); or,
                instead, its fields as keywords (`frames=16, image_size=112, ...`),
                with `training` defaulting to `split == "train"` (evaluation
                clips for `VideoFiles`). In training the clips are also shuffled.
            cache_dir: keep the decoded, resized frames of each whole video
                here (lossless, compressed in time: see `FrameCache`); later
                epochs and runs read them instead of decoding.
            with_video_id: yield `(clip, label, video_id)`, `video_id` being
                the index into `self.videos`.
            cache_max_gb: bound of the cache (least recently used videos are
                evicted); None: no bound.
            parallel_reads: videos decoded at once (None: tf.data's autotuning).
            videos_per_class: only the first this many videos of each class, in
                list order (a fixed, class-stratified sample; labelled videos only).
            **sampling_fields: `ClipSampling` fields, when `sampling` is not given.

        Returns:
            A `tf.data.Dataset` of `(clip, label)`: clip float32
            `(frames, image_size, image_size, 3)` RGB in [0, 255], label int32.
            Batch and prefetch it yourself.
        """
        if not self.videos:
            raise DataLayoutError(f"no readable videos in {self.root} ({self.split}):\n{self.report.summary()}")
        sampling = ClipSampling.of(sampling, self.split, f"{type(self).__name__}.dataset", **sampling_fields)
        cache = None
        if cache_dir is not None:
            cache = FrameCache(cache_dir, max_bytes=None if cache_max_gb is None else cache_max_gb * 1e9,
                               short_side=sampling.resize_to, frame_stride=sampling.frame_stride)
        read = self._reader(sampling, cache)

        def load(video: dict, indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            clip, ok = tf.numpy_function(
                read, [video["path"], indices, video["num_frames"]], [tf.uint8, tf.bool]
            )
            return tf.ensure_shape(clip, (None, None, None, 3)), tf.ensure_shape(ok, ())

        videos = tf.data.Dataset.from_tensor_slices(
            {
                "path": [str(v.path) for v in self.videos],
                "num_frames": np.array([v.num_frames for v in self.videos], np.int32),
                "label": np.array([v.label for v in self.videos], np.int32),
                "video_id": np.arange(len(self.videos), dtype=np.int32),
            }
        )
        if videos_per_class is not None:
            if not getattr(self, "classes", None):
                raise ValueError(f"videos_per_class needs labelled videos; {self.root} has none")
            videos = first_videos_per_class(videos, videos_per_class, len(self.classes))
        shuffle = len(self.videos) * sampling.clips_per_video if sampling.training else None
        return clip_dataset(videos, load, sampling, with_video_id, shuffle_buffer=shuffle, parallel_reads=parallel_reads)

    def _reader(self, sampling: ClipSampling, cache: FrameCache | None):
        """The per-clip decoding function run by `tf.numpy_function`."""
        stride, short_side = sampling.frame_stride, sampling.resize_to

        def read(path: bytes, indices: np.ndarray, num_frames: np.int32) -> tuple[np.ndarray, np.bool_]:
            path = path.decode()
            try:
                if cache is None:
                    return read_frames(path, indices, short_side, self.seek), np.True_
                return cache.read(path, indices // stride,
                                  lambda: read_frames(path, np.arange(0, num_frames, stride), short_side, self.seek)), np.True_
            except VideoDecodeError as error:
                self._skip(error)
                return np.zeros((len(indices), 1, 1, 3), np.uint8), np.False_

        return read


class VideoFiles(ProbedVideos):
    """Every video file under a folder (or the files given), unlabelled, checked and probed.

    For footage without labels (a camera, a robot; distillation from a dense teacher): files with a video
    extension are found recursively and sorted by path; each is probed like UCF101's, and missing,
    unreadable, truncated or empty files are reported and skipped (``strict``: raised). Labels are -1.

    Args:
        root: a folder, or a list of video files.
        strict: raise on the first undecodable video instead of skipping it.
        verify: probe by decoding each video's last frame too (see `VideoFolder`).
        index, workers: as for `VideoFolder`.

    Attributes:
        videos, report: as for `VideoFolder`.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        DataLayoutError: no video file was found.

    Example:

    >>> videos = VideoFiles("/data/dashcam")  # doctest: +SKIP
    >>> clips = videos.clips(frames=8, image_size=112, training=True).batch(4)   # clips only, no labels  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike | list, strict: bool = False, verify: bool | str = True,
                 index: str | os.PathLike | None = None, workers: int | None = None):
        super().__init__(strict)
        self.split = "unlabelled"
        if isinstance(root, (list, tuple)):
            self.root = Path(os.path.commonpath([os.fspath(p) for p in root])) if root else Path(".")
            paths = [Path(p) for p in root]
            for path in paths:
                if not path.exists():
                    self._skip(VideoDecodeError(path, "not found"))
            paths = [p for p in paths if p.exists()]
        else:
            self.root = Path(root)
            if not self.root.exists():
                raise FileNotFoundError(f"video folder not found: {self.root}")
            paths = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        if not paths:
            raise DataLayoutError(f"{self.root}: no video files ({', '.join(VIDEO_EXTENSIONS)}) found")
        self.videos = self._probe([(path, -1) for path in paths], verify, index, workers)

    def clips(self, sampling: ClipSampling | None = None, **kwargs) -> tf.data.Dataset:
        """`dataset` without labels: clips only (with ``with_video_id=True``: ``(clip, video_id)``)."""
        if kwargs.get("with_video_id"):
            return self.dataset(sampling, **kwargs).map(lambda clip, label, video_id: (clip, video_id))
        return self.dataset(sampling, **kwargs).map(lambda clip, label: clip)
