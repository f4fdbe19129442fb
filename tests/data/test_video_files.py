"""VideoFiles: any folder of videos, unlabelled, with the UCF101 loader's checks and bad-video handling."""

import os

import numpy as np
import pytest

from delta_keras.data import DataLayoutError, VideoDecodeError, VideoFiles, write_ucf101_folder


def test_real_clips_become_unlabelled_clips(real_clips, tmp_path):
    folder = tmp_path / "camera"
    (folder / "day1").mkdir(parents=True)
    for name in ("v_ApplyEyeMakeup_g01_c01.avi", "cleaning_pool_k400.mp4"):
        os.symlink(real_clips / name, folder / "day1" / name)
    os.symlink(real_clips / "arm_wrestling_k400.mp4", folder / "arm.mp4")
    (folder / "notes.txt").write_text("not a video")
    videos = VideoFiles(folder)
    assert [v.path.name for v in videos.videos] == ["arm.mp4", "cleaning_pool_k400.mp4", "v_ApplyEyeMakeup_g01_c01.avi"]
    assert all(v.label == -1 and v.num_frames > 100 for v in videos.videos)
    clips = list(videos.clips(frames=4, image_size=32, training=True, seed=0).batch(3))
    assert clips[0].shape == (3, 4, 32, 32, 3) and float(np.max(clips[0])) <= 255
    # Evaluation clips are the same on every pass; with ids they say which video they come from.
    ids = [int(i) for _, i in videos.clips(frames=4, image_size=32, with_video_id=True)]
    assert ids == [0, 1, 2]


def test_corrupt_and_missing_files_are_reported_and_skipped_or_raised(tmp_path):
    root = write_ucf101_folder(tmp_path / "synthetic", num_videos_per_class=1, frames=6, image_size=16)
    files = sorted((root / "UCF-101").rglob("*.avi"))[:3]
    files[1].write_bytes(b"garbage, not a video")
    with pytest.warns(UserWarning, match="skipping video"):
        videos = VideoFiles([*files, tmp_path / "gone.avi"])
    assert len(videos.videos) == 2 and len(videos.report) == 2
    assert str(files[1]) in videos.report.skipped and str(tmp_path / "gone.avi") in videos.report.skipped
    with pytest.raises(VideoDecodeError):
        VideoFiles(files, strict=True)


def test_a_folder_without_videos_is_a_clear_error(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(DataLayoutError, match="no video files"):
        VideoFiles(tmp_path)
    with pytest.raises(FileNotFoundError, match="video folder not found"):
        VideoFiles(tmp_path / "missing")
