"""On-disk cache of decoded, resized video frames: lossless, compressed in time, bounded in size.

A video's frames are stored in chunks of `CHUNK` frames; each chunk holds its first frame (as differences
between its rows) and then the frame-to-frame differences (modulo 256), zlib-compressed. Consecutive frames barely change, so this is
lossless and about 4x smaller than raw frames on real footage (a lossy codec such as JPEG would be
smaller still, but its noise differs from frame to frame and would change the temporal deltas the
package measures: on a UCF101 clip, JPEG at quality 95 turns 69 % exact-zero pixel changes into 50 %;
``python benchmarks/cache_formats.py``).
Reading a clip decompresses only the chunks it touches.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import threading
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from delta_keras.files import atomic_save

# Bump when the cached content changes meaning, so old caches are not reused.
_FORMAT_VERSION = 4
_MAGIC = b"DKFRAMES4\n"
SUFFIX = ".frames"
CHUNK = 32
# What `FrameCache` names its folders (a settings digest) and files (`<video stem>-<digest>.frames`).
_OWN_FOLDER = re.compile(r"[0-9a-f]{16}")
_OWN_FILE = re.compile(r".+-[0-9a-f]{16}" + re.escape(SUFFIX))


def _digest(value: object) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def encode_frames(frames: np.ndarray, chunk: int = CHUNK, level: int = 6) -> bytes:
    """The cache file's bytes for uint8 ``frames`` ``(N, H, W, C)`` (see the module docstring)."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    pieces = []
    for start in range(0, len(frames), chunk):
        block = frames[start:start + chunk]
        # The first frame as differences between its rows (natural images: smaller numbers, better compressed),
        # then each frame's difference from the previous one; uint8 arithmetic wraps modulo 256.
        first = np.concatenate([block[0, :1], np.diff(block[0], axis=0)])
        changes = np.concatenate([first[None], np.diff(block, axis=0)])
        pieces.append(zlib.compress(changes.tobytes(), level))
    offsets = np.cumsum([0, *map(len, pieces)]).tolist()
    # A checksum a chunk: a partial decompression verifies nothing by itself, and damage must not pass as frames.
    checksums = [zlib.crc32(piece) for piece in pieces]
    header = json.dumps({"shape": list(frames.shape), "chunk": chunk, "offsets": offsets, "crc32": checksums}).encode()
    return b"".join([_MAGIC, struct.pack("<I", len(header)), header, *pieces])


def decode_frames(path: str | os.PathLike, positions: np.ndarray | None = None) -> np.ndarray:
    """The frames at ``positions`` (all, when None) of a cache file, decompressing only their chunks.

    Raises:
        ValueError: the file is not a complete cache file of this format.
    """
    with open(path, "rb") as file:
        if file.read(len(_MAGIC)) != _MAGIC:
            raise ValueError(f"{path}: not a frame-cache file of format {_FORMAT_VERSION}")
        (length,) = struct.unpack("<I", file.read(4))
        header = json.loads(file.read(length))
        base = len(_MAGIC) + 4 + length
        shape, chunk, offsets = header["shape"], header["chunk"], header["offsets"]
        positions = np.arange(shape[0]) if positions is None else np.asarray(positions, np.int64)
        if positions.size and (positions.min() < 0 or positions.max() >= shape[0]):
            raise ValueError(f"{path}: positions outside 0..{shape[0] - 1}")
        frame_bytes = int(np.prod(shape[1:]))
        chunks = {}
        for index in np.unique(positions // chunk).tolist():
            # Decompress only up to the last frame wanted from this chunk (a clip often needs its first part).
            needed = int(positions[positions // chunk == index].max() % chunk) + 1
            file.seek(base + offsets[index])
            compressed = file.read(offsets[index + 1] - offsets[index])
            if zlib.crc32(compressed) != header["crc32"][index]:
                raise ValueError(f"{path}: chunk {index} is damaged (checksum)")
            data = zlib.decompressobj().decompress(compressed, needed * frame_bytes)
            changes = np.frombuffer(data, np.uint8).reshape(-1, *shape[1:])
            if len(changes) != needed:
                raise ValueError(f"{path}: chunk {index} is incomplete")
            changes = changes.copy()
            changes[0] = np.cumsum(changes[0], axis=0, dtype=np.uint8)  # the first frame's rows
            chunks[index] = np.cumsum(changes, axis=0, dtype=np.uint8)  # wraps modulo 256, as written
    if not positions.size:
        return np.zeros((0, *shape[1:]), np.uint8)
    return np.stack([chunks[p // chunk][p % chunk] for p in positions.tolist()])


class FrameCache:
    """Decoded frames of whole videos, stored once per preprocessing setting, within a size bound.

    Each setting (for example short side 112, every 2nd frame) gets its own sub-folder named by a hash of
    the settings, so changing them never reads stale frames. A video's file name includes a hash of its
    path, size and modification time, so a replaced video is decoded again. With ``max_bytes``, the cache
    files (`own_files`: of every setting under ``cache_dir``) that were used least recently are deleted
    after a write until the total fits; nothing else in the folder is touched. Threads that miss the same
    video at once decode it once.

    Args:
        cache_dir: root folder of the cache; created when missing.
        max_bytes: the most the cache files under ``cache_dir`` may take (None: no bound).
        **settings: JSON-serialisable preprocessing settings that determine the cached content.

    Example:

    >>> cache = FrameCache("/tmp/frames", max_bytes=50e9, short_side=112, frame_stride=1)  # doctest: +SKIP
    >>> clip = cache.read("v.avi", np.arange(16), lambda: decode_all_frames("v.avi"))  # doctest: +SKIP
    """

    def __init__(self, cache_dir: str | os.PathLike, max_bytes: float | None = None, **settings: object):
        if max_bytes is not None and not max_bytes > 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}")
        settings = {"format": _FORMAT_VERSION, **settings}
        self.root = Path(cache_dir)
        self.directory = self.root / _digest(settings)
        self.max_bytes = max_bytes
        self._guard = threading.Lock()
        self._locks: dict[Path, threading.Lock] = {}
        settings_file = self.directory / "settings.json"
        if not settings_file.exists():
            # Only for people browsing the cache; never read back.
            atomic_save(settings_file, lambda temporary: temporary.write_text(json.dumps(settings, indent=1)))

    def path_for(self, video: str | os.PathLike) -> Path:
        """Returns the cache file that holds the frames of `video`."""
        stat = os.stat(video)
        key = _digest([os.path.abspath(video), stat.st_size, stat.st_mtime_ns])
        return self.directory / f"{Path(video).stem}-{key}{SUFFIX}"

    def read(self, video: str | os.PathLike, positions: np.ndarray, decode: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached frames of `video` at ``positions``, decoding and storing the whole video on a miss.

        Args:
            video: the source video file.
            positions: indices into the cached frames (any order, repeats allowed).
            decode: returns all the frames (uint8 array) to cache for `video`.
        """
        path = self.path_for(video)
        frames = self._load(path, positions)
        if frames is not None:
            return frames
        with self._guard:
            lock = self._locks.setdefault(path, threading.Lock())
        with lock:  # a second thread missing the same video waits for the first one's file
            frames = self._load(path, positions)
            if frames is None:
                decoded = decode()
                atomic_save(path, lambda temporary: temporary.write_bytes(encode_frames(decoded)))
                self._evict(keep=path)
                frames = np.ascontiguousarray(decoded[np.asarray(positions, np.int64)])
        with self._guard:
            self._locks.pop(path, None)
        return frames

    def _load(self, path: Path, positions) -> np.ndarray | None:
        try:
            frames = decode_frames(path, positions)
        except (OSError, ValueError, EOFError, zlib.error, struct.error, KeyError):
            return None  # missing, or damaged by something other than our writes: rebuild
        if self.max_bytes is not None:
            os.utime(path)  # marks it as recently used, for the eviction order
        return frames

    def own_files(self) -> list[Path]:
        """The cache files under ``cache_dir`` that this class wrote (every setting): ``<stem>-<digest>.frames``
        in a settings folder (named by a digest, holding ``settings.json``); any other file is never counted
        or evicted."""
        return [path for folder in self.root.glob("*") if _OWN_FOLDER.fullmatch(folder.name)
                and (folder / "settings.json").is_file() for path in folder.glob(f"*{SUFFIX}")
                if _OWN_FILE.fullmatch(path.name)]

    def size_bytes(self) -> int:
        """Bytes taken by the cache files under ``cache_dir`` (every setting)."""
        return sum(path.stat().st_size for path in self.own_files())

    def _evict(self, keep: Path) -> None:
        if self.max_bytes is None:
            return
        entries = []
        for path in self.own_files():
            try:
                stat = path.stat()
            except FileNotFoundError:  # evicted by another thread or process meanwhile
                continue
            entries.append((stat.st_mtime_ns, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            if path != keep:
                path.unlink(missing_ok=True)
                total -= size
