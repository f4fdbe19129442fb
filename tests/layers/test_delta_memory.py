"""DeltaActivation(memory=True): deltas with memory and a learnable threshold (Event Neural Networks' rule)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from delta_keras import DeltaActivation, regularizers


def memory_reference(x: np.ndarray, threshold) -> np.ndarray:
    """The recurrence in NumPy: sent starts at 0; x[t] is sent where |x[t] - sent| > threshold."""
    sent, out = np.zeros_like(x[:, 0]), []
    for t in range(x.shape[1]):
        sent = np.where(np.abs(x[:, t] - sent) > threshold, x[:, t], sent)
        out.append(sent)
    return np.stack(out, axis=1)


def clip(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.mark.parametrize(
    "shape, granularity, threshold_shape",
    [((2, 5, 6), "layer", ()), ((2, 5, 6), "channel", (6,)), ((2, 4, 3, 3, 4), "channel", (4,)),
     ((2, 4, 3, 3, 4), "neuron", (3, 3, 4)), ((1, 3, 2, 2, 2, 2), "neuron", (2, 2, 2, 2))],
)
def test_matches_the_numpy_recurrence_for_every_rank_and_granularity(shape, granularity, threshold_shape):
    layer = DeltaActivation(step_init=0.4, granularity=granularity, memory=True)
    x = clip(shape)
    layer.build(shape)
    thresholds = np.random.default_rng(1).uniform(0.2, 0.8, threshold_shape).astype("float32")
    layer.step_variable.assign(thresholds)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), memory_reference(x, thresholds))


def test_no_flicker_and_no_drift():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 4, (1, 1, 50)).astype("float32")
    noisy = base + rng.uniform(-0.24, 0.24, (1, 64, 50)).astype("float32")  # noise < threshold / 2
    layer = DeltaActivation(step_init=0.5, memory=True)
    sent = keras.ops.convert_to_numpy(layer(noisy))
    changes = np.diff(sent, axis=1)
    assert not changes.any(), "noise smaller than the threshold sent a change after frame 0"
    # A quantiser on the same grid flickers on the same input: the point of memory.
    per_frame = keras.ops.convert_to_numpy(DeltaActivation(step_init=0.5)(noisy))
    assert np.diff(per_frame, axis=1).any()
    # No drift on any input: what downstream holds stays within the threshold of the truth.
    walk = np.cumsum(rng.normal(0, 0.3, (2, 64, 50)), axis=1).astype("float32")
    sent = keras.ops.convert_to_numpy(layer(walk))
    assert np.all(np.abs(sent - walk) <= 0.5 + 1e-6)


def test_delta_output_is_what_was_sent():
    x = clip((2, 5, 6))
    sent = memory_reference(x, 0.5)
    out = keras.ops.convert_to_numpy(DeltaActivation(step_init=0.5, memory=True, output="delta")(x))
    np.testing.assert_array_equal(out[:, 0], sent[:, 0])
    np.testing.assert_allclose(out[:, 1:], np.diff(sent, axis=1), atol=0)


def test_loss_and_statistics_count_transmitted_changes():
    x = clip((2, 5, 6))
    sent = memory_reference(x, 0.5)
    layer = DeltaActivation(step_init=0.5, memory=True, sparsity_weight=0.1, fan_out=3.0)
    layer(x)
    changes = np.diff(sent, axis=1) / 0.5
    np.testing.assert_allclose(float(layer.losses[0]), 0.1 * 3.0 * np.abs(changes).mean(), rtol=1e-5)
    stats = layer.statistics()
    assert stats["delta_density"] == pytest.approx(np.count_nonzero(changes) / changes.size)
    assert stats["activation_density"] == pytest.approx(np.count_nonzero(sent) / sent.size)


def test_gradients_straight_through_where_exact_and_the_penalty_raises_the_threshold():
    # Changes far from the threshold 0.5 (where the gate's surrogate slope is negligible): sent at frames 0
    # and 2 only, so the last output is x[2] and its gradient goes there.
    x = tf.constant([[[2.0], [2.05], [5.0], [5.05]]])
    layer = DeltaActivation(step_init=0.5, memory=True, sparsity_weight=1.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        last = tf.reduce_sum(layer(x, training=True)[:, -1])
    np.testing.assert_allclose(tape.gradient(last, x).numpy()[0, :, 0], [0, 0, 1, 0], atol=0.02)
    noisy = tf.constant(clip((2, 6, 8)))
    with tf.GradientTape() as tape:
        layer(noisy, training=True)
        penalty = tf.add_n(layer.losses)
    assert np.all(tape.gradient(penalty, layer.step_variable).numpy() < 0)  # descent raises the threshold


@pytest.mark.parametrize("penalty", ["l1", "hoyer_square", regularizers.TargetRate(0.1)])
def test_training_with_each_penalty_sends_fewer_changes(penalty):
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, 0.2, (32, 6, 8)), axis=1).astype("float32")
    densities = []
    for weight in (0.0, 1.0):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((6, 8))
        layer = DeltaActivation(step_init=0.1, memory=True, sparsity_weight=weight, penalty=penalty)
        model = keras.Model(inputs, layer(inputs))
        model.compile(keras.optimizers.Adam(0.05), loss="mse")
        model.fit(x, x, epochs=8, batch_size=8, verbose=0)
        layer.reset_statistics()
        model(x)
        densities.append(layer.statistics()["delta_density"])
    assert densities[1] < densities[0]


def test_save_load_mixed_precision_and_tf_function(tmp_path):
    x = clip((2, 4, 6))
    inputs = keras.Input((4, 6))
    layer = DeltaActivation(step_init=0.3, memory=True, granularity="neuron")
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.layers[1].memory
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)))
    np.testing.assert_array_equal(tf.function(model)(x).numpy(), keras.ops.convert_to_numpy(model(x)))
    keras.config.set_dtype_policy("mixed_float16")
    mixed = DeltaActivation(step_init=0.3, memory=True)
    out = mixed(x)
    assert mixed.step_variable.dtype == "float32" and out.dtype == "float16"


def test_engine_step_is_the_recurrence():
    layer = DeltaActivation(step_init=0.5, memory=True)
    x = clip((2, 5, 6))
    layer.build(x.shape)
    sent = np.zeros((2, 6), "float32")
    for t in range(5):
        sent = keras.ops.convert_to_numpy(layer.memory_step(sent, x[:, t]))
    np.testing.assert_array_equal(sent, memory_reference(x, 0.5)[:, -1])
