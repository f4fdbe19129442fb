import numpy as np
import pytest
import keras

from delta_keras import ActivitySparsity, DeltaActivation


def test_passes_input_through_and_penalises_activations():
    x = np.random.default_rng(0).normal(size=(2, 4, 3, 5)).astype("float32")
    layer = ActivitySparsity(sparsity_weight=0.1, fan_out=4.0, normalization="frame")
    out = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_array_equal(out, x)
    np.testing.assert_allclose(float(layer.losses[0]), 0.1 * 4.0 * 15 * np.mean(np.abs(x)), rtol=1e-5)


def test_same_statistics_as_delta_activation():
    x = np.maximum(np.random.default_rng(1).normal(size=(2, 5, 6)), 0).round(1).astype("float32")
    spatial = ActivitySparsity()
    temporal = DeltaActivation(step_init=1e-3, min_step=1e-3)  # fine step: values on the 0.1 grid kept
    spatial(x)
    temporal(x)
    a, b = spatial.statistics(), temporal.statistics()
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=1e-6), key


def test_config_round_trip():
    layer = ActivitySparsity(sparsity_weight=1e-4, fan_out=3.0, penalty="target_rate")
    twin = ActivitySparsity.from_config(layer.get_config())
    assert twin.get_config() == layer.get_config()
