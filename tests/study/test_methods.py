"""study/methods.py: the post-hoc baseline is the dense model with quantised activations."""

import keras
import numpy as np
import pytest

from delta_keras.study import posthoc_delta_model
from delta_keras.train import TrainConfig, build_model


def test_posthoc_model_is_the_dense_model_quantised():
    config = TrainConfig(frames=4, image_size=16)
    dense = build_model(config)
    clips = np.random.default_rng(0).uniform(0, 255, (2, 4, 16, 16, 3)).astype("float32")
    fine = posthoc_delta_model(dense, config, step=1e-3)
    coarse = posthoc_delta_model(dense, config, step=0.5)
    steps = [layer for layer in fine.layers if type(layer).__name__ == "DeltaActivation"]
    assert len(steps) == 4 and not any(layer.trainable for layer in steps)
    assert all(float(keras.ops.max(layer.step)) == pytest.approx(1e-3) for layer in steps)
    assert not fine.losses or all(float(loss) == 0 for loss in fine.losses)
    reference = keras.ops.convert_to_numpy(dense(clips))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fine(clips)), reference, atol=2e-2)
    assert not np.allclose(keras.ops.convert_to_numpy(coarse(clips)), reference, atol=2e-2)


@pytest.mark.parametrize("uniform_first", [False, True])
def test_thresholds_are_calibrated_greedily_costliest_layer_first(uniform_first):
    from delta_keras.study.methods import calibrate_thresholds, delta_layers

    config = TrainConfig(frames=4, image_size=16)
    model = posthoc_delta_model(build_model(config), config, step=1.0, memory=True)
    layers = delta_layers(model)
    # The fidelity budget: the thresholds may sum to at most 3 per layer.
    budget = 3.0 * len(layers)
    acceptable = lambda: sum(float(keras.ops.max(layer.step)) for layer in layers) <= budget  # noqa: E731
    thresholds = calibrate_thresholds(model, acceptable, (1.0, 2.0, 4.0, 8.0), uniform_first=uniform_first)
    values = [thresholds[layer.name] for layer in layers]
    assert sum(values) <= budget and acceptable()
    if uniform_first:
        # From the best uniform threshold (2: 4 would exceed the budget), then each layer raised while it fits.
        assert min(values) >= 2.0
    else:
        # From the smallest values, the costliest layer takes most of the budget and others stay low.
        assert max(values) == 8.0 and min(values) == 1.0
