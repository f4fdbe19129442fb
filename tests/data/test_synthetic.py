import itertools

import numpy as np

from delta_keras.data import SYNTHETIC_CLASSES, synthetic_actions, synthetic_video


def test_enough_classes():
    assert len(SYNTHETIC_CLASSES) >= 10 and len(set(SYNTHETIC_CLASSES)) == len(SYNTHETIC_CLASSES)


def test_only_motion_tells_classes_apart():
    # One scene rendered as every class: frame 0 is identical, so appearance,
    # position and noise carry no class information; the motion that follows does.
    for seed in range(3):
        videos = [synthetic_video(label, seed, camera_jitter=2) for label in range(len(SYNTHETIC_CLASSES))]
        for video in videos[1:]:
            np.testing.assert_array_equal(video[0], videos[0][0])
        for a, b in itertools.combinations(range(len(videos)), 2):
            differing = np.mean(np.abs(videos[a].astype(int) - videos[b].astype(int)) > 40)
            assert differing > 0.002, (SYNTHETIC_CLASSES[a], SYNTHETIC_CLASSES[b])


def test_moving_object_moves_and_background_stays():
    still = synthetic_video(SYNTHETIC_CLASSES.index("still"), 0, noise=0.0)
    right = synthetic_video(SYNTHETIC_CLASSES.index("move_right"), 0, noise=0.0)
    np.testing.assert_array_equal(still[0], still[-1])
    changed = np.abs(right[-1].astype(int) - right[0].astype(int)).max(axis=-1) > 40
    assert 0.02 < changed.mean() < 0.5  # the object moved, most of the picture did not


def test_dataset_is_deterministic_and_splits_differ():
    def run(split, seed=0):
        return list(synthetic_actions(split, num_videos=6, frames=4, image_size=16, seed=seed, with_video_id=True).as_numpy_iterator())

    train = run("train")
    for (clip, label, video_id), (clip2, label2, video_id2) in zip(train, run("train")):
        np.testing.assert_array_equal(clip, clip2)
        assert label == label2 == video_id % len(SYNTHETIC_CLASSES)
    test_clips = {clip.tobytes() for clip, *_ in run("test")}
    assert not test_clips & {clip.tobytes() for clip, *_ in train}
    assert not {clip.tobytes() for clip, *_ in run("train", seed=1)} & {clip.tobytes() for clip, *_ in train}


def test_camera_jitter_moves_object_and_background_together():
    video = synthetic_video(SYNTHETIC_CLASSES.index("still"), 3, noise=0.0, camera_jitter=2).astype(int)
    shifts = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)]
    for frame in video[1:]:
        errors = [np.abs(np.roll(video[0], shift, (0, 1)) - frame)[4:-4, 4:-4].max() for shift in shifts]
        assert min(errors) == 0
