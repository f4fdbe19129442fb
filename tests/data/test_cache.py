import numpy as np

from delta_keras.data import FrameCache


def test_miss_then_hit(tmp_path):
    video = tmp_path / "v.avi"
    video.write_bytes(b"x")
    cache = FrameCache(tmp_path / "cache", short_side=8)
    frames = np.arange(24, dtype=np.uint8).reshape(2, 2, 2, 3)
    calls = []
    decode = lambda: calls.append(1) or frames  # noqa: E731
    np.testing.assert_array_equal(cache.get(video, decode), frames)
    np.testing.assert_array_equal(cache.get(video, decode), frames)
    assert len(calls) == 1


def test_settings_and_file_changes_invalidate(tmp_path):
    video = tmp_path / "v.avi"
    video.write_bytes(b"x")
    small = FrameCache(tmp_path / "cache", short_side=8)
    large = FrameCache(tmp_path / "cache", short_side=16)
    assert small.directory != large.directory
    before = small.path_for(video)
    video.write_bytes(b"changed")
    assert small.path_for(video) != before


def test_leftover_temporary_and_damaged_files_are_ignored(tmp_path):
    video = tmp_path / "v.avi"
    video.write_bytes(b"x")
    cache = FrameCache(tmp_path / "cache", short_side=8)
    final = cache.path_for(video)
    # What a crash in the middle of a write leaves behind.
    leftover = final.parent / f".{final.name}.1234.deadbeef.tmp"
    leftover.write_bytes(b"\x93NUMPY half written")
    frames = np.ones((3, 2, 2, 3), np.uint8)
    np.testing.assert_array_equal(cache.get(video, lambda: frames), frames)
    final.write_bytes(final.read_bytes()[:-5])  # damaged by something else
    np.testing.assert_array_equal(cache.get(video, lambda: frames * 2), frames * 2)
    assert list(final.parent.glob("*.tmp")) == [leftover]  # our own writes leave no temporary file
