"""train/evaluation.py: clip and video accuracy."""

import keras
import numpy as np
import tensorflow as tf

from delta_keras.train import evaluate_clips


def test_evaluate_clips_averages_softmax_over_the_clips_of_a_video():
    # The model's logits are the clip's mean pixel per class channel: scores are set by the data.
    clips = keras.Input((2, 1, 1, 2))
    model = keras.Model(clips, keras.layers.GlobalAveragePooling3D()(clips))
    logits = np.array([[4.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 3.0]], "float32")
    data = tf.data.Dataset.from_tensor_slices((
        np.broadcast_to(logits[:, None, None, None, :], (4, 2, 1, 1, 2)).copy(),
        np.array([0, 0, 1, 1], "int32"),  # video 0 (class 0): one clip right, one wrong, right on average
        np.array([0, 0, 1, 1], "int32"),
    )).batch(3)
    result = evaluate_clips(model, data)
    assert result["clip_accuracy"] == 0.75
    assert result["video_accuracy"] == 1.0
    assert (result["clips"], result["videos"], result["layers"], result["density"]) == (4, 2, {}, {})
