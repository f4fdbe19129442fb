import numpy as np
import pytest
import tensorflow_datasets as tfds

from delta_keras.data import ucf101_tfds


@pytest.fixture
def mock_ucf101():
    # Random videos of random length (sometimes shorter than a clip), 256x256 JPEG frames.
    with tfds.testing.mock_data(num_examples=4):
        yield


def test_test_split_format(mock_ucf101):
    elements = list(ucf101_tfds(split="test", frames=8, image_size=32, clips_per_video=2, with_video_id=True).as_numpy_iterator())
    assert len(elements) == 8
    for clip, label, video_id in elements:
        assert clip.shape == (8, 32, 32, 3) and clip.dtype == np.float32
        assert label.dtype == np.int32 and 0 <= label < 101
        assert 0 <= clip.min() and clip.max() <= 255
    assert [int(v) for *_, v in elements] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_training_is_seeded(mock_ucf101):
    def run(seed):
        return [clip for clip, _ in ucf101_tfds(split="train", frames=4, image_size=16, seed=seed).as_numpy_iterator()]

    first = run(3)
    np.testing.assert_array_equal(first, run(3))
    assert not np.array_equal(first, run(4))
