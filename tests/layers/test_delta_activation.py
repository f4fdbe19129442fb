import numpy as np
import pytest
import keras
import tensorflow as tf

from delta_keras import DeltaActivation, regularizers
from delta_keras.layers.quantize_ops import quantize


def np_quantize(x, step):
    return step * np.round(x / step)


def random_clip(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.mark.parametrize(
    "shape, granularity, step_shape",
    [
        ((2, 5, 7), "layer", ()),
        ((2, 5, 7), "channel", (7,)),
        ((2, 5, 7), "neuron", (7,)),
        ((2, 4, 3, 3, 2), "channel", (2,)),
        ((2, 4, 3, 3, 2), "neuron", (3, 3, 2)),
        ((1, 3, 2, 2, 2, 3), "channel", (3,)),
    ],
)
def test_quantization_matches_numpy_for_every_rank_and_granularity(shape, granularity, step_shape):
    x = random_clip(shape)
    layer = DeltaActivation(step_init=0.3, granularity=granularity)
    layer.build(shape)
    step = np.random.default_rng(1).uniform(0.1, 0.7, size=step_shape).astype("float32")
    layer.step_variable.assign(step)
    out = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(out, np_quantize(x, step), rtol=1e-6, atol=1e-6)
    assert tuple(layer.step_variable.shape) == step_shape


def test_delta_output_is_first_frame_then_changes():
    x = random_clip((2, 6, 4))
    out = keras.ops.convert_to_numpy(DeltaActivation(step_init=0.5, output="delta")(x))
    q = np_quantize(x, 0.5)
    np.testing.assert_allclose(out[:, 0], q[:, 0], atol=1e-6)
    np.testing.assert_allclose(out[:, 1:], q[:, 1:] - q[:, :-1], atol=1e-6)
    # Accumulating the deltas gives back the quantised activations, as a delta engine does.
    np.testing.assert_allclose(np.cumsum(out, axis=1), q, atol=1e-5)


@pytest.mark.parametrize("step_gradient", ["lsq", "paper"])
@pytest.mark.parametrize("normalization, scale", [("mean", 1.0), ("frame", 12.0), ("sample", 12.0 * 4)])
def test_loss_value_for_each_normalization(step_gradient, normalization, scale):
    x = random_clip((3, 5, 3, 4))
    layer = DeltaActivation(
        step_init=0.4, sparsity_weight=0.01, fan_out=9.0, normalization=normalization, step_gradient=step_gradient
    )
    layer(x)
    q = np_quantize(x, 0.4)
    deltas = np.diff(q, axis=1)
    if step_gradient == "lsq":  # measured in quantisation levels crossed
        deltas = deltas / 0.4
    expected = 0.01 * 9.0 * scale * np.mean(np.abs(deltas))
    np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-5)


def test_single_frame_clip_costs_nothing_and_is_finite():
    layer = DeltaActivation(sparsity_weight=1.0)
    out = layer(random_clip((2, 1, 4)))
    assert float(layer.losses[0]) == 0.0
    assert np.isfinite(keras.ops.convert_to_numpy(out)).all()


def _gradients(x, step, step_gradient):
    x = tf.constant(x)
    step = tf.Variable(step)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        _, x_q = quantize(x, step, step_gradient)
        total = tf.reduce_sum(x_q)
    return tape.gradient(total, x).numpy(), tape.gradient(total, step).numpy()


def test_lsq_gradient_hand_checked():
    # x / step = [0.6, 1.4, -2.2, 3.0] rounds to [1, 1, -2, 3]: d x_q / d step = sum(round - x/step).
    x = np.array([[[0.3], [0.7], [-1.1], [1.5]]], "float32")
    dx, dstep = _gradients(x, np.float32(0.5), "lsq")
    np.testing.assert_allclose(dx, np.ones_like(x))
    residual = (1 - 0.6) + (1 - 1.4) + (-2 + 2.2) + (3 - 3.0)
    np.testing.assert_allclose(dstep, residual / np.sqrt(4.0), rtol=1e-5)  # LSQ scale 1/sqrt(elements)


def test_paper_gradient_hand_checked():
    x = np.array([[[0.3], [0.7], [-1.1], [1.5]]], "float32")
    dx, dstep = _gradients(x, np.float32(0.5), "paper")
    np.testing.assert_allclose(dx, np.ones_like(x))
    np.testing.assert_allclose(dstep, -(1 + 1 - 2 + 3), rtol=1e-6)  # negated: -sum(round(x/step))


@pytest.mark.parametrize("step_gradient", ["lsq", "paper"])
def test_sparsity_loss_pushes_the_step_up(step_gradient):
    layer = DeltaActivation(step_init=0.2, sparsity_weight=1.0, step_gradient=step_gradient, granularity="layer")
    x = tf.constant(random_clip((4, 6, 8)))
    layer(x)
    with tf.GradientTape() as tape:
        layer(x)
        loss = layer.losses[0]
    (grad,) = tape.gradient(loss, [layer.step_variable])
    assert float(grad) < 0  # gradient descent on the penalty enlarges the step


@pytest.mark.parametrize("step_gradient", ["lsq", "paper"])
def test_loss_and_delta_output_have_the_gradients_of_the_quantised_values(step_gradient):
    # The layer differences exact levels (so that zeros stay exact under any compiler) and rescales after;
    # the gradients must be those of the penalty and output written on x_q itself.
    x = tf.constant(random_clip((2, 5, 3, 4)))
    weights = tf.constant(random_clip((2, 5, 3, 4), seed=1))
    layer = DeltaActivation(step_init=0.3, sparsity_weight=1.0, output="delta", step_gradient=step_gradient)
    layer(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        out = layer(x)
        loss = layer.losses[0] + tf.reduce_sum(out * weights)
        levels, x_q = quantize(x, layer.step, step_gradient)
        deltas = x_q[:, 1:] - x_q[:, :-1]
        penalised = levels[:, 1:] - levels[:, :-1] if step_gradient == "lsq" else deltas
        reference = tf.reduce_mean(tf.abs(penalised)) + tf.reduce_sum(tf.concat([x_q[:, :1], deltas], 1) * weights)
    np.testing.assert_allclose(float(loss), float(reference), rtol=1e-5)
    for mine, theirs in zip(tape.gradient(loss, [x, layer.step_variable]), tape.gradient(reference, [x, layer.step_variable])):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(step_gradient="paper"), dict(output="delta"), dict(memory=True, output="delta")])
def test_a_still_clip_has_exactly_zero_deltas_also_under_xla(kwargs):
    x = np.repeat(random_clip((4, 1, 6, 6, 16)) * 3, 4, axis=1)
    layer = DeltaActivation(step_init=0.3, **kwargs)
    model = keras.Sequential([keras.Input(x.shape[1:]), layer])
    model.compile(jit_compile=True)  # XLA fuses step * levels into the differences if it is given the chance
    out = model.predict(x, verbose=0)
    assert layer.counts()["nonzero_deltas"] == 0
    later = out[:, 1:] if kwargs.get("output") == "delta" else np.diff(out, axis=1)
    assert np.count_nonzero(later) == 0


def test_step_never_reaches_zero_under_a_hostile_optimizer():
    clips = keras.Input((4, 6))
    layer = DeltaActivation(step_init=0.5, min_step=1e-2, granularity="neuron")
    model = keras.Model(clips, layer(clips))
    # Loss whose gradient drives the step down hard; lr 1e6 overshoots far below zero.
    model.compile(keras.optimizers.SGD(learning_rate=1e6), loss=lambda y, p: -keras.ops.mean(p))
    x = np.abs(random_clip((8, 4, 6))) + 0.26
    model.fit(x, x, epochs=3, batch_size=4, verbose=0)
    assert np.all(keras.ops.convert_to_numpy(layer.step_variable) >= 1e-2)
    assert np.isfinite(keras.ops.convert_to_numpy(model(x))).all()
    # Even a direct assignment below the floor is clipped where the step is used.
    layer.step_variable.assign(-np.ones(layer.step_variable.shape, "float32"))
    assert np.all(keras.ops.convert_to_numpy(layer.step) == np.float32(1e-2))
    assert np.isfinite(keras.ops.convert_to_numpy(model(x))).all()


def test_the_step_floor_holds_for_nan_and_infinity():
    clips = keras.Input((4, 6))
    layer = DeltaActivation(step_init=0.5, min_step=1e-2, sparsity_weight=1e-3)
    model = keras.Model(clips, layer(clips))
    model.compile(keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    x = np.abs(random_clip((4, 4, 6))) + 0.26
    x[0, 1, 2] = np.nan  # a NaN reaching the layer makes the step's gradient NaN
    model.fit(x, np.zeros_like(x), epochs=1, batch_size=4, verbose=0)
    step = keras.ops.convert_to_numpy(layer.step_variable)
    assert np.isfinite(step).all() and np.all(step >= 1e-2)
    # A step of +inf (assigned, or overflowed) is used as a finite ceiling: outputs 0, never NaN.
    layer.step_variable.assign(np.full(layer.step_variable.shape, np.inf, "float32"))
    clean = np.abs(random_clip((2, 4, 6))) + 0.26
    assert np.isfinite(keras.ops.convert_to_numpy(layer.step)).all()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(clean)), 0.0)
    layer.step_variable.assign(np.full(layer.step_variable.shape, np.nan, "float32"))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.step), np.float32(0.5))  # NaN -> step_init


@pytest.mark.parametrize("compiled", [False, True])
def test_statistics_count_non_finite_values_as_nonzero(compiled):
    layer = DeltaActivation(step_init=0.5)
    x = np.zeros((1, 3, 4), "float32")
    x[0, :, 0] = [np.nan, np.nan, np.inf]
    if compiled:  # the count's branch (taken only when the sum is not finite) inside a compiled function
        keras.Sequential([keras.Input((3, 4)), layer]).predict_on_batch(x)
    else:
        layer(x)
    stats = layer.statistics()
    assert stats["non_finite"] == 3
    assert stats["activation_density"] == pytest.approx(3 / 12)
    assert stats["delta_density"] == pytest.approx(2 / 8)  # NaN - NaN and inf - NaN are not "no change"


def test_finite_values_whose_sum_overflows_are_not_counted_non_finite():
    layer = DeltaActivation(step_init=1.0)
    layer(np.full((2, 3, 4), 3e38, "float32"))  # every value finite, their float32 sum is inf
    assert layer.statistics()["non_finite"] == 0


def test_statistics_match_numpy_and_reset():
    x = random_clip((3, 5, 4, 4, 2)) * 0.3
    layer = DeltaActivation(step_init=0.25)
    layer(x)
    layer(x[:1])
    both = np.concatenate([x, x[:1]])
    q = np_quantize(both, 0.25)
    deltas = np.diff(q, axis=1)
    stats = layer.statistics()
    assert stats["delta_density"] == pytest.approx(np.count_nonzero(deltas) / deltas.size)
    charged = np.count_nonzero(q[:, 0]) + np.count_nonzero(deltas)
    assert stats["delta_density_first_charged"] == pytest.approx(charged / q.size)
    assert stats["activation_density"] == pytest.approx(np.count_nonzero(q) / q.size)
    assert stats["neurons_per_frame"] == 32
    assert stats["batches"] == 2
    layer.reset_statistics()
    assert layer.statistics()["batches"] == 0
    assert layer.statistics()["delta_density"] == 0.0


def test_bad_arguments_name_what_was_expected():
    with pytest.raises(ValueError, match="granularity"):
        DeltaActivation(granularity="pixel")
    with pytest.raises(ValueError, match="output"):
        DeltaActivation(output="spikes")
    with pytest.raises(ValueError, match="step_gradient"):
        DeltaActivation(step_gradient="magic")
    with pytest.raises(ValueError, match="min_step"):
        DeltaActivation(step_init=1e-4, min_step=1e-3)
    with pytest.raises(ValueError, match="fan_out"):
        DeltaActivation(fan_out=0)
    with pytest.raises(ValueError, match="rank >= 3"):
        DeltaActivation()(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="known sizes"):
        DeltaActivation(granularity="neuron").build((None, None, None, 4))


def _small_clip_model(layer):
    clips = keras.Input((6, 8, 8, 3))
    x = keras.layers.TimeDistributed(keras.layers.Conv2D(8, 3, activation="relu"))(clips)
    x = layer(x)
    x = keras.layers.TimeDistributed(keras.layers.GlobalAveragePooling2D())(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(clips, keras.layers.Dense(3)(x))


def _smooth_clips(n, seed=0):
    """Slowly changing clips, so temporal sparsity is learnable."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 1, size=(n, 1, 8, 8, 3))
    drift = rng.normal(scale=0.05, size=(n, 6, 8, 8, 3)).cumsum(axis=1)
    return (base + drift).astype("float32"), rng.integers(0, 3, size=n)


def test_save_and_load_gives_identical_outputs_and_steps(tmp_path):
    layer = DeltaActivation(
        step_init=0.1, sparsity_weight=regularizers.LinearWarmup(1e-2, 10), penalty="hoyer_square",
        granularity="neuron", output="delta", step_gradient="paper",
    )
    model = _small_clip_model(layer)
    x, y = _smooth_clips(8)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), keras.ops.convert_to_numpy(loaded(x)))
    twin = loaded.get_layer(layer.name)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(twin.step), keras.ops.convert_to_numpy(layer.step))
    assert twin.get_config() == layer.get_config()
    assert twin.sparsity_weight == pytest.approx(layer.sparsity_weight)


def test_mixed_precision_keeps_a_float32_step():
    keras.config.set_dtype_policy("mixed_float16")
    layer = DeltaActivation(step_init=0.25, sparsity_weight=1e-3)
    model = _small_clip_model(layer)
    x, y = _smooth_clips(4)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=2, verbose=0)
    assert layer.step_variable.dtype == "float32"
    assert keras.ops.convert_to_numpy(layer(np.ones((1, 2, 6, 6, 8), "float16"))).dtype == np.float16
    assert np.isfinite(keras.ops.convert_to_numpy(model(x)).astype("float32")).all()


def test_works_inside_tf_function():
    layer = DeltaActivation(step_init=0.5, sparsity_weight=1.0)
    x = random_clip((2, 3, 4))
    graph_out = tf.function(lambda t: layer(t, training=True))(tf.constant(x))
    np.testing.assert_allclose(graph_out.numpy(), np_quantize(x, 0.5), atol=1e-6)
    assert int(layer.training_step.numpy()) == 1


def test_more_sparsity_weight_gives_fewer_nonzero_deltas():
    x, y = _smooth_clips(32)
    densities = []
    for weight in (0.0, 0.3):
        keras.utils.set_random_seed(0)
        layer = DeltaActivation(step_init=0.05, sparsity_weight=weight)
        model = _small_clip_model(layer)
        model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, epochs=6, batch_size=8, verbose=0)
        layer.reset_statistics()
        model.predict(x, verbose=0)
        densities.append(layer.statistics()["delta_density"])
    assert densities[1] < 0.5 * densities[0], densities


def test_keras_layer_test_harness():
    from keras.src import testing

    class Harness(testing.TestCase):
        def runTest(self):  # noqa: N802 (unittest's name)
            self.run_layer_test(
                DeltaActivation,
                init_kwargs={"step_init": 0.5, "sparsity_weight": 1e-3},
                input_shape=(2, 3, 4, 4, 2),
                expected_output_shape=(2, 3, 4, 4, 2),
                expected_num_trainable_weights=1,
                expected_num_non_trainable_weights=2,  # training_step and the counters vector
                expected_num_losses=1,
                supports_masking=True,
            )

    Harness().runTest()


def test_quantize_values_matches_the_forward_pass_without_side_effects():
    layer = DeltaActivation(step_init=0.3, sparsity_weight=1.0)
    x = random_clip((2, 3, 5))
    out = keras.ops.convert_to_numpy(layer(x))
    batches = layer.statistics()["batches"]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.quantize_values(x[:, 0])), out[:, 0])
    assert layer.statistics()["batches"] == batches
