"""Every source yields the same element format."""

import tensorflow_datasets as tfds

from delta_keras.data import synthetic_actions, ucf101, ucf101_tfds


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
