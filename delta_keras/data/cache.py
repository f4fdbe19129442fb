"""On-disk cache of decoded, resized video frames (one uint8 `.npy` file a video)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from delta_keras.files import atomic_save

# Bump when the cached content changes meaning, so old caches are not reused.
_FORMAT_VERSION = 1


def _digest(value: object) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


class FrameCache:
    """Decoded frames of whole videos, stored once per preprocessing setting.

    Each setting (for example short side 112, every 2nd frame) gets its own
    sub-folder named by a hash of the settings, so changing them never reads
    stale frames. A video's file name includes a hash of its path, size and
    modification time, so a replaced video is decoded again.

    Args:
        cache_dir: root folder of the cache; created when missing.
        **settings: JSON-serialisable preprocessing settings that determine
            the cached content.

    Example:

    >>> cache = FrameCache("/tmp/frames", short_side=112, frame_stride=1)
    >>> frames = cache.get("v.avi", lambda: decode_all_frames("v.avi"))
    """

    def __init__(self, cache_dir: str | os.PathLike, **settings: object):
        settings = {"format": _FORMAT_VERSION, **settings}
        self.directory = Path(cache_dir) / _digest(settings)
        settings_file = self.directory / "settings.json"
        if not settings_file.exists():
            # Only for people browsing the cache; never read back.
            atomic_save(settings_file, lambda temporary: temporary.write_text(json.dumps(settings, indent=1)))

    def path_for(self, video: str | os.PathLike) -> Path:
        """Returns the cache file that holds the frames of `video`."""
        stat = os.stat(video)
        key = _digest([os.path.abspath(video), stat.st_size, stat.st_mtime_ns])
        return self.directory / f"{Path(video).stem}-{key}.npy"

    def get(self, video: str | os.PathLike, decode: Callable[[], np.ndarray]) -> np.ndarray:
        """Returns the cached frames of `video`, decoding and storing them on a miss.

        Args:
            video: the source video file.
            decode: returns the frames (uint8 array) to cache for `video`.

        Returns:
            The frames; memory-mapped when read from the cache, so taking a few
            frames reads only those from disk.
        """
        path = self.path_for(video)
        try:
            return np.load(path, mmap_mode="r")
        except (OSError, ValueError, EOFError):
            pass  # missing, or damaged by something other than our writes: rebuild
        frames = decode()
        atomic_save(path, lambda temporary: np.save(temporary, frames))
        return frames
