import cv2
import numpy as np
import pytest

from delta_keras.data import VideoDecodeError, probe_video, read_clip, read_frames
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
    from delta_keras.data.video import decode_check

    assert probe_video(real_clips / name) == EXPECTED_FRAMES[name]
    assert decode_check(real_clips / name) == EXPECTED_FRAMES[name]  # intact real files: no false alarm


@pytest.mark.parametrize("name", ["v_ApplyEyeMakeup_g01_c01.avi", "cleaning_pool_k400.mp4"])
def test_seeking_reads_the_same_frames_as_decoding_everything(real_clips, name):
    everything = decode_all(real_clips / name)
    indices = np.array([150, 97, 98, 98, 140, 5])  # unsorted, repeated, far from a key frame
    np.testing.assert_array_equal(read_frames(real_clips / name, indices), everything[indices])


def test_read_frames_resizes_short_side(real_clips):
    frames = read_frames(real_clips / "v_ApplyEyeMakeup_g01_c01.avi", [0, 1], short_side=60)
    assert frames.shape == (2, 60, 80, 3) and frames.dtype == np.uint8


def test_read_clip_is_the_centre_crop_of_resized_frames(real_clips):
    path = real_clips / "v_ApplyEyeMakeup_g01_c01.avi"
    clip = read_clip(path, 3, (40, 60), start=10, stride=2)
    assert clip.shape == (3, 40, 60, 3) and clip.dtype == np.float32
    frames = read_frames(path, [10, 12, 14], short_side=60)  # 60 x 80: the crop takes the middle 60 columns
    np.testing.assert_array_equal(clip, frames[:, 10:50, 10:70].astype("float32"))
    assert read_clip(path, 1, 32).shape == (1, 32, 32, 3)


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


def _damaged_copies(tmp_path, codec: str) -> list:
    """An AVI of 40 synthetic frames, and copies with 200 random bytes written at 30, 45 and 60 % of the file."""
    from delta_keras.data import synthetic_video

    frames = synthetic_video(0, [0, 0, 1], np.arange(40), 64, 40, 0.02, 0)
    clean = tmp_path / f"clean_{codec}.avi"
    writer = cv2.VideoWriter(str(clean), cv2.VideoWriter_fourcc(*codec), 25, (64, 64))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    data, rng, copies = clean.read_bytes(), np.random.default_rng(1), []
    for share in (0.3, 0.45, 0.6):
        start = int(len(data) * share)
        damaged = tmp_path / f"damaged_{codec}_{share}.avi"
        damaged.write_bytes(data[:start] + rng.integers(0, 256, 200, dtype=np.uint8).tobytes() + data[start + 200:])
        copies.append(damaged)
    return [clean, *copies]


@pytest.mark.parametrize("codec", ["MJPG", "XVID"])
def test_damage_inside_a_file_is_found_by_decoding_every_frame(tmp_path, codec):
    from delta_keras.data import VideoFiles
    from delta_keras.data.video import decode_check

    clean, *damaged = _damaged_copies(tmp_path, codec)
    assert decode_check(clean) == 40
    for path in damaged:
        with pytest.raises(VideoDecodeError, match="damaged"):
            decode_check(path)
    # Through a folder: the decode level finds all of them (in worker processes); the cheaper levels do not.
    with pytest.warns(UserWarning, match="damaged"):
        files = VideoFiles(tmp_path, verify="decode", workers=2)
    assert [v.path for v in files.videos] == [clean] and sorted(files.report.skipped) == sorted(map(str, damaged))
    assert len(VideoFiles(tmp_path, verify="full").videos) > 1
