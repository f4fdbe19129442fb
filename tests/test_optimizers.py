"""`with_step_rate`: the steps learn at their own rate, everything else at the optimizer's."""

import keras
import numpy as np
import pytest

import delta_keras
from delta_keras import DeltaActivation, with_step_rate


def _model_and_data():
    keras.utils.set_random_seed(0)
    clips = keras.Input((4, 6, 6, 2))
    x = keras.layers.TimeDistributed(keras.layers.Conv2D(3, 3, activation="relu", name="conv"))(clips)
    layer = DeltaActivation(step_init=0.5, sparsity_weight=1e-2, name="delta")
    x = keras.layers.GlobalAveragePooling3D()(layer(x))
    model = keras.Model(clips, keras.layers.Dense(2, name="head")(x))
    data = np.random.default_rng(0).uniform(0, 1, (8, 4, 6, 6, 2)).astype("float32")
    return model, layer, data, np.arange(8) % 2


def _moves(optimizer, updates: int = 10):
    """How far the step and the head's kernel move in ``updates`` updates."""
    model, layer, data, labels = _model_and_data()
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    step, kernel = [keras.ops.convert_to_numpy(v).copy() for v in (layer.step_variable, model.get_layer("head").kernel)]
    model.fit(data, labels, epochs=updates, batch_size=8, verbose=0)
    return (float(np.abs(keras.ops.convert_to_numpy(layer.step_variable) - step).max()),
            float(np.abs(keras.ops.convert_to_numpy(model.get_layer("head").kernel) - kernel).max()), model)


def test_steps_learn_at_their_own_rate_and_kernels_at_the_optimizers():
    learning_rate, updates = 1e-5, 10
    plain_step, plain_kernel, _ = _moves(keras.optimizers.Adam(learning_rate), updates)
    fast_step, fast_kernel, _ = _moves(with_step_rate(keras.optimizers.Adam(learning_rate), 1000.0), updates)
    # Adam moves a variable by at most about its learning rate per update, whatever its gradient's scale.
    assert plain_step <= 1.1 * learning_rate * updates
    assert 0.2 * 1000 * learning_rate * updates < fast_step <= 1.1 * 1000 * learning_rate * updates
    # The kernels keep the optimizer's own rate (the forward pass differs a little as the steps move).
    assert fast_kernel <= 1.1 * learning_rate * updates
    np.testing.assert_allclose(fast_kernel, plain_kernel, rtol=0.05)


def test_the_optimizer_round_trips_with_the_model(tmp_path):
    _, _, model = _moves(with_step_rate(keras.optimizers.SGD(1e-3, momentum=0.9), 50.0), updates=2)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer).__name__ == "StepRateSGD"
    assert loaded.optimizer.step_rate == 50.0 and loaded.optimizer.momentum == 0.9
    # Building it again finds the steps again.
    loaded.optimizer.build(loaded.trainable_variables)
    assert loaded.optimizer.rates == {"delta/step": 50.0}


def _kernel_moves(optimizer, updates: int = 10) -> tuple[float, float, keras.Model]:
    """How far the convolution's and the head's kernels move in ``updates`` updates."""
    model, _, data, labels = _model_and_data()
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    kernels = [model.get_layer("head").kernel, model.layers[1].layer.kernel]
    before = [keras.ops.convert_to_numpy(k).copy() for k in kernels]
    model.fit(data, labels, epochs=updates, batch_size=8, verbose=0)
    head, conv = (float(np.abs(keras.ops.convert_to_numpy(k) - b).max()) for k, b in zip(kernels, before))
    return head, conv, model


def test_a_fresh_head_learns_at_its_own_rate_over_a_slow_backbone(tmp_path):
    learning_rate, updates = 1e-5, 10
    head, conv, model = _kernel_moves(with_step_rate(keras.optimizers.Adam(learning_rate), head_rate=300.0,
                                                     head=("head",)), updates)
    assert 0.2 * 300 * learning_rate * updates < head <= 1.1 * 300 * learning_rate * updates
    assert conv <= 1.1 * learning_rate * updates
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.optimizer.head_rate == 300.0 and loaded.optimizer.head == ("head",)
    loaded.optimizer.build(loaded.trainable_variables)
    assert loaded.optimizer.rates == {"head/kernel": 300.0, "head/bias": 300.0, "delta/step": 1.0}


def test_the_training_config_gives_the_classifier_head_its_rate():
    from delta_keras.train import OptimizationConfig, build_optimizer

    optimizer = build_optimizer(OptimizationConfig(learning_rate=1e-5, head_rate=30.0), total_steps=5)
    assert optimizer.head_rate == 30.0 and set(optimizer.head) == set(delta_keras.models.HEAD_LAYERS)
    assert type(build_optimizer(OptimizationConfig(), total_steps=5)).__name__ == "Adam"


def test_a_schedule_and_a_second_wrap_are_kept():
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, 100)
    optimizer = with_step_rate(with_step_rate(keras.optimizers.AdamW(schedule, weight_decay=0.01), 10.0), 20.0)
    assert type(optimizer).__name__ == "StepRateAdamW" and optimizer.step_rate == 20.0
    assert optimizer.get_config()["learning_rate"]["class_name"] == "CosineDecay"
    assert optimizer.weight_decay == 0.01


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_a_bad_rate_is_refused(bad):
    with pytest.raises(ValueError, match="step_rate must be a finite number > 0"):
        with_step_rate(keras.optimizers.Adam(), bad)
    with pytest.raises(ValueError, match="head_rate must be a finite number > 0"):
        with_step_rate(keras.optimizers.Adam(), head_rate=bad)


def test_an_unknown_optimizer_is_refused():
    class Custom(keras.optimizers.Optimizer):
        pass

    with pytest.raises(ValueError, match="with_step_rate supports the Keras optimizers"):
        with_step_rate(Custom(1e-3), 2.0)
    assert delta_keras.optimizers.StepRateMixin  # the mixin is public for custom optimizers
