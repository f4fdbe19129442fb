import numpy as np
import pytest
import tensorflow as tf

from delta_keras.data import ClipSampling, clip_dataset, resize_short_side


def indices(sampling, num_frames, clip_index=0, seed=0):
    return sampling.frame_indices(tf.constant(num_frames), tf.constant(clip_index), tf.constant(seed, tf.int64)).numpy()


def test_evaluation_clips_are_spread_evenly():
    sampling = ClipSampling(frames=4, frame_stride=2, clips_per_video=2)
    # 40 frames, stride 2 -> 20 positions, starts in [0, 16]: clips at 1/4 and 3/4.
    np.testing.assert_array_equal(indices(sampling, 40, 0), [8, 10, 12, 14])
    np.testing.assert_array_equal(indices(sampling, 40, 1), [24, 26, 28, 30])
    np.testing.assert_array_equal(indices(ClipSampling(frames=4), 10), [3, 4, 5, 6])  # centre clip


def test_short_videos_repeat_their_last_frame():
    np.testing.assert_array_equal(indices(ClipSampling(frames=6, frame_stride=2), 5), [0, 2, 4, 4, 4, 4])
    np.testing.assert_array_equal(indices(ClipSampling(frames=3, training=True), 1, seed=5), [0, 0, 0])


def test_training_starts_are_random_but_seeded():
    sampling = ClipSampling(frames=4, training=True)
    starts = {indices(sampling, 100, seed=seed)[0] for seed in range(20)}
    assert len(starts) > 10 and min(starts) >= 0 and max(starts) <= 96
    np.testing.assert_array_equal(indices(sampling, 100, seed=3), indices(sampling, 100, seed=3))


def test_finish_centre_crops_in_evaluation():
    frames = tf.reshape(tf.range(2 * 4 * 6 * 3), (2, 4, 6, 3)) % 256
    clip = ClipSampling(frames=2, image_size=4).finish(frames, tf.constant(0, tf.int64))
    assert clip.dtype == tf.float32 and clip.shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(clip, tf.cast(frames[:, :, 1:5], tf.float32))


def test_augmentation_is_the_same_for_every_frame():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (1, 20, 24, 3), dtype=np.uint8)
    frames = np.repeat(frame, 5, axis=0)
    sampling = ClipSampling(frames=5, image_size=16, training=True, brightness=0.2, contrast=0.3)
    clips = [sampling.finish(frames, tf.constant(seed, tf.int64)).numpy() for seed in range(4)]
    for clip in clips:
        np.testing.assert_array_equal(clip, np.repeat(clip[:1], 5, axis=0))
        assert clip.min() >= 0 and clip.max() <= 255
    assert len({clip.tobytes() for clip in clips}) == 4


def test_resize_short_side():
    assert resize_short_side(tf.zeros((2, 240, 320, 3), tf.uint8), 112).shape == (2, 112, 149, 3)


@pytest.mark.parametrize("kwargs", [{"frames": 0}, {"frame_stride": 0}, {"image_size": 64, "short_side": 32}])
def test_invalid_settings(kwargs):
    with pytest.raises(ValueError):
        ClipSampling(**kwargs)


def test_clip_dataset_drops_failed_loads_and_adds_ids():
    videos = tf.data.Dataset.from_tensor_slices(
        {"num_frames": [8, 8, 8], "label": [0, 1, 2], "video_id": [10, 11, 12]}
    )

    def load(video, frame_indices):
        frames = tf.zeros((tf.shape(frame_indices)[0], 4, 4, 3), tf.uint8) + tf.cast(video["label"], tf.uint8)
        return frames, video["label"] != 1

    sampling = ClipSampling(frames=2, image_size=4, clips_per_video=2)
    elements = list(clip_dataset(videos, load, sampling, with_video_id=True).as_numpy_iterator())
    assert [(label, video_id) for _, label, video_id in elements] == [(0, 10), (0, 10), (2, 12), (2, 12)]


def test_evaluation_reads_each_video_once_for_all_its_clips():
    videos = tf.data.Dataset.from_tensor_slices({"num_frames": [40, 9], "label": [0, 1], "video_id": [0, 1]})
    reads = []

    def record(video_id, indices):
        reads.append((int(video_id), indices.tolist()))
        return np.repeat(indices.astype(np.uint8)[:, None, None, None], 4, axis=1).repeat(4, axis=2).repeat(3, axis=3)

    def load(video, frame_indices):
        frames = tf.numpy_function(record, [video["video_id"], frame_indices], tf.uint8)
        return tf.ensure_shape(frames, (None, 4, 4, 3)), tf.constant(True)

    sampling = ClipSampling(frames=4, image_size=4, clips_per_video=3)
    elements = list(clip_dataset(videos, load, sampling, with_video_id=True).as_numpy_iterator())
    assert sorted(video_id for video_id, _ in reads) == [0, 1]  # one read a video
    # Each clip holds its own frames, in order: the clips of video 0 start at 6, 18 and 30 (evenly spread).
    assert [clip[:, 0, 0, 0].tolist() for clip, _, video_id in elements if video_id == 0] == [
        [6, 7, 8, 9], [18, 19, 20, 21], [30, 31, 32, 33]]
    assert [video_id for _, _, video_id in elements] == [0, 0, 0, 1, 1, 1]
