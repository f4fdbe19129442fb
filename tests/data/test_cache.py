import threading
import time

import numpy as np
import pytest

from delta_keras.data import FrameCache
from delta_keras.data.cache import decode_frames, encode_frames


def _video(tmp_path, name="v.avi"):
    video = tmp_path / name
    video.write_bytes(b"x" + name.encode())
    return video


def _frames(n=70, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (1, 6, 5, 3))
    return np.clip(base + np.cumsum(rng.integers(-3, 4, (n, 6, 5, 3)), axis=0), 0, 255).astype(np.uint8)


def test_the_format_is_lossless_and_reads_only_what_is_asked(tmp_path):
    frames = _frames()
    frames[40] = 255 - frames[40]  # a scene cut: wrap-around differences
    path = tmp_path / "f.frames"
    path.write_bytes(encode_frames(frames, chunk=32))
    np.testing.assert_array_equal(decode_frames(path), frames)
    positions = np.array([69, 3, 33, 33, 0])
    np.testing.assert_array_equal(decode_frames(path, positions), frames[positions])
    with pytest.raises(ValueError, match="outside"):
        decode_frames(path, [70])


def test_slowly_changing_frames_are_stored_smaller_than_raw(tmp_path):
    frames = np.repeat(_frames(1), 64, axis=0)
    frames[:, :2] += np.arange(64, dtype=np.uint8)[:, None, None, None]  # a moving part
    assert len(encode_frames(frames)) < frames.nbytes / 4


def test_miss_then_hit(tmp_path):
    video = _video(tmp_path)
    cache = FrameCache(tmp_path / "cache", short_side=8)
    frames = _frames(5)
    calls = []
    decode = lambda: calls.append(1) or frames  # noqa: E731
    np.testing.assert_array_equal(cache.read(video, [1, 4], decode), frames[[1, 4]])
    np.testing.assert_array_equal(cache.read(video, [0, 2, 2], decode), frames[[0, 2, 2]])
    assert len(calls) == 1


def test_settings_and_file_changes_invalidate(tmp_path):
    video = _video(tmp_path)
    small = FrameCache(tmp_path / "cache", short_side=8)
    large = FrameCache(tmp_path / "cache", short_side=16)
    assert small.directory != large.directory
    before = small.path_for(video)
    video.write_bytes(b"changed")
    assert small.path_for(video) != before


def test_leftover_temporary_and_damaged_files_are_ignored(tmp_path):
    video = _video(tmp_path)
    cache = FrameCache(tmp_path / "cache", short_side=8)
    final = cache.path_for(video)
    # What a crash in the middle of a write leaves behind.
    leftover = final.parent / f".{final.name}.1234.deadbeef.tmp"
    leftover.write_bytes(b"half written")
    frames = np.ones((3, 2, 2, 3), np.uint8)
    np.testing.assert_array_equal(cache.read(video, [0, 1, 2], lambda: frames), frames)
    final.write_bytes(final.read_bytes()[:-5])  # damaged by something else
    np.testing.assert_array_equal(cache.read(video, [0, 1, 2], lambda: frames * 2), frames * 2)
    intact = final.read_bytes()
    final.write_bytes(intact[:-3] + bytes([intact[-3] ^ 1]) + intact[-2:])  # one bit flipped inside a chunk
    np.testing.assert_array_equal(cache.read(video, [0], lambda: frames * 3), frames[:1] * 3)
    assert list(final.parent.glob("*.tmp")) == [leftover]  # our own writes leave no temporary file


def test_the_bound_evicts_the_least_recently_used_videos_and_nothing_else(tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    users_file = root / "notes.txt"
    users_file.write_text("mine")
    users_frames = root / "0123456789abcdef" / "clip.frames"  # a user's file of the same suffix, not the cache's
    users_frames.parent.mkdir()
    users_frames.write_bytes(b"mine" * 10_000)
    frames = _frames(40)
    one_video = len(encode_frames(frames))
    cache = FrameCache(root, max_bytes=2.5 * one_video, short_side=8)
    videos = [_video(tmp_path, f"v{i}.avi") for i in range(4)]
    for index in (0, 1):
        cache.read(videos[index], [0], lambda: frames)
        time.sleep(0.01)
    cache.read(videos[0], [0], lambda: frames)  # v0 used again: v1 is now the least recently used
    time.sleep(0.01)
    cache.read(videos[2], [0], lambda: frames)
    kept = sorted(p.name.split("-")[0] for p in cache.own_files())
    assert kept == ["v0", "v2"] and cache.size_bytes() <= 2.5 * one_video
    assert users_file.read_text() == "mine" and (cache.directory / "settings.json").is_file()
    assert users_frames.read_bytes() == b"mine" * 10_000
    with pytest.raises(ValueError, match="max_bytes"):
        FrameCache(root, max_bytes=0)


def test_threads_missing_one_video_decode_it_once(tmp_path):
    video = _video(tmp_path)
    cache = FrameCache(tmp_path / "cache", short_side=8)
    frames = _frames(10)
    calls = []

    def decode():
        calls.append(1)
        time.sleep(0.2)
        return frames

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.read(video, [3], decode))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 4
    for result in results:
        np.testing.assert_array_equal(result, frames[[3]])
