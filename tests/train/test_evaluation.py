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


def test_figures_of_a_model_that_does_not_work_come_with_a_warning():
    from delta_keras.train.evaluation import result_warnings

    def results(accuracy, activation_density, dead_layers=()):
        return {"evaluation": {"video_accuracy": accuracy, "classes": 12,
                               "density": {"activation_density": activation_density}},
                "macs": {"dead_layers": list(dead_layers)}}

    assert result_warnings(results(0.9, 0.3)) == []
    assert "no better than chance" in " ".join(result_warnings(results(0.083, 0.3)))
    assert "nearly dead at inference" in " ".join(result_warnings(results(0.9, 0.001)))
    assert "c2" in " ".join(result_warnings(results(0.9, 0.3, ["c2"])))
