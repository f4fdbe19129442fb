import cv2
import numpy as np
import pytest

from delta_keras.data import VideoDecodeError, probe_video, read_frames
from delta_keras.data.video import resize_short_side

EXPECTED_FRAMES = {"v_ApplyEyeMakeup_g01_c01.avi": 164, "cleaning_pool_k400.mp4": 300, "arm_wrestling_k400.mp4": 280}


def decode_all(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while (frame := capture.read()[1]) is not None:
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    return np.stack(frames)


@pytest.mark.parametrize("name", sorted(EXPECTED_FRAMES))
def test_probe_counts_real_frames(real_clips, name):
    assert probe_video(real_clips / name) == EXPECTED_FRAMES[name]


@pytest.mark.parametrize("name", ["v_ApplyEyeMakeup_g01_c01.avi", "cleaning_pool_k400.mp4"])
def test_seeking_reads_the_same_frames_as_decoding_everything(real_clips, name):
    everything = decode_all(real_clips / name)
    indices = np.array([150, 97, 98, 98, 140, 5])  # unsorted, repeated, far from a key frame
    np.testing.assert_array_equal(read_frames(real_clips / name, indices), everything[indices])


def test_read_frames_resizes_short_side(real_clips):
    frames = read_frames(real_clips / "v_ApplyEyeMakeup_g01_c01.avi", [0, 1], short_side=60)
    assert frames.shape == (2, 60, 80, 3) and frames.dtype == np.uint8


def test_resize_short_side_keeps_aspect_ratio():
    assert resize_short_side(np.zeros((240, 320, 3), np.uint8), 112).shape == (112, 149, 3)
    assert resize_short_side(np.zeros((300, 100, 3), np.uint8), 50).shape == (150, 50, 3)


def test_truncated_video(real_clips, tmp_path):
    source = (real_clips / "v_ApplyEyeMakeup_g01_c01.avi").read_bytes()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(source[: len(source) // 3])
    # The header still announces every frame: only reading the end reveals the damage.
    assert probe_video(truncated, verify=False) == 164
    with pytest.raises(VideoDecodeError, match="truncated.avi: truncated"):
        probe_video(truncated)
    with pytest.raises(VideoDecodeError, match="frame 150 cannot be decoded"):
        read_frames(truncated, [10, 150])


@pytest.mark.parametrize("content", [b"", b"not a video" * 50])
def test_unreadable_file(tmp_path, content):
    path = tmp_path / "broken.avi"
    path.write_bytes(content)
    with pytest.raises(VideoDecodeError, match="broken.avi"):
        probe_video(path)
