"""Every source yields the same element format."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from delta_keras.data import ClipSampling, synthetic_actions, ucf101, ucf101_tfds


def test_every_source_has_the_same_element_spec(synthetic_root, real_tree):
    settings = dict(frames=8, image_size=32, with_video_id=True)
    with tfds.testing.mock_data(num_examples=2):
        specs = [
            synthetic_actions(num_videos=2, **settings).element_spec,
            ucf101(synthetic_root, **settings).element_spec,
            ucf101(real_tree, **settings).element_spec,
            ucf101_tfds(**settings).element_spec,
        ]
    assert all(spec == specs[0] for spec in specs)
    assert [(s.shape, s.dtype.name) for s in specs[0]] == [((8, 32, 32, 3), "float32"), ((), "int32"), ((), "int32")]


def test_a_source_takes_a_clip_sampling_or_its_fields_not_both(synthetic_root):
    sampling = ClipSampling(frames=4, image_size=16, clips_per_video=2, flip=False)
    for given, shorthand in (
        (synthetic_actions("test", 3, sampling), synthetic_actions("test", 3, frames=4, image_size=16, clips_per_video=2)),
        (ucf101(synthetic_root, "test", 1, sampling), ucf101(synthetic_root, "test", frames=4, image_size=16,
                                                             clips_per_video=2, flip=False)),
    ):
        for (clip_a, label_a), (clip_b, label_b) in zip(given, shorthand, strict=True):
            np.testing.assert_array_equal(clip_a, clip_b)
            assert label_a == label_b
    with pytest.raises(ValueError, match="either sampling= or its fields \\(frames\\)"):
        ucf101(synthetic_root, "test", sampling=sampling, frames=8)
    with pytest.raises(TypeError, match="ucf101_tfds: unknown argument\\(s\\) frame, size;"):
        ucf101_tfds(frame=8, size=32)
    with pytest.raises(TypeError, match="VideoFolder.dataset: sampling must be a ClipSampling, got 16"):
        ucf101(synthetic_root, "train", 1, 16)  # frames where the sampling goes
    with pytest.raises(ValueError, match="flip must be False"):
        synthetic_actions("train", 2, ClipSampling(frames=4))
    with pytest.raises(ValueError, match="short_side must be unset"):
        synthetic_actions("train", 2, frames=4, image_size=16, short_side=20)
