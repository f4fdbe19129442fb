import numpy as np
import pytest
import keras

from delta_keras import DeltaActivation, regularizers


@pytest.fixture
def v():
    return np.array([[0.0, 2.0, -1.0, 0.0], [0.5, 0.0, 0.0, -3.0]], "float32")


def test_l1(v):
    assert float(regularizers.L1()(v)) == pytest.approx(np.mean(np.abs(v)))


def test_hoyer_square_is_a_scale_free_density(v):
    expected = np.sum(np.abs(v)) ** 2 / np.sum(v**2) / v.size
    assert float(regularizers.HoyerSquare()(v)) == pytest.approx(expected, rel=1e-5)
    assert float(regularizers.HoyerSquare()(10 * v)) == pytest.approx(expected, rel=1e-5)
    equal = np.array([0, 1, 0, -1, 0, 0, 1, 0], "float32")  # equal magnitudes: exactly the nonzero fraction
    assert float(regularizers.HoyerSquare()(equal)) == pytest.approx(3 / 8, rel=1e-5)


def test_target_rate_pays_only_above_target(v):
    mean = np.mean(np.abs(v))
    assert float(regularizers.TargetRate(mean + 0.1)(v)) == 0.0
    assert float(regularizers.TargetRate(mean - 0.1)(v)) == pytest.approx(0.01, rel=1e-4)


def test_schedules():
    warmup = regularizers.LinearWarmup(1.0, warmup_steps=10, start_step=5)
    assert [float(warmup(s)) for s in (0, 5, 10, 15, 100)] == pytest.approx([0, 0, 0.5, 1, 1])
    steps = regularizers.PiecewiseConstant([3, 6], [0.0, 0.1, 0.2])
    assert [float(steps(s)) for s in (0, 2, 3, 5, 6, 9)] == pytest.approx([0, 0, 0.1, 0.1, 0.2, 0.2])
    assert float(regularizers.Constant(0.3)(7)) == pytest.approx(0.3)


@pytest.mark.parametrize(
    "schedule",
    [regularizers.Constant(2.0), regularizers.LinearWarmup(1.0, 4, 2), regularizers.PiecewiseConstant([1], [0.0, 1.0])],
)
def test_schedules_serialise(schedule):
    twin = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert type(twin) is type(schedule) and twin.get_config() == schedule.get_config()


def test_bad_schedule_and_penalty_arguments():
    with pytest.raises(ValueError, match="warmup_steps"):
        regularizers.LinearWarmup(1.0, 0)
    with pytest.raises(ValueError, match="len\\(values\\)"):
        regularizers.PiecewiseConstant([1, 2], [0.0])
    with pytest.raises(ValueError, match="boundaries must increase"):
        regularizers.PiecewiseConstant([5, 2], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="penalty must be one of"):
        regularizers.get_penalty("l2")
    with pytest.raises(ValueError, match="sparsity_weight"):
        regularizers.get_schedule("high")
    with pytest.raises(ValueError, match="target"):
        regularizers.TargetRate(-1)


def test_layer_follows_its_schedule_during_fit():
    clips = keras.Input((3, 4))
    layer = DeltaActivation(step_init=0.1, sparsity_weight=regularizers.LinearWarmup(1.0, warmup_steps=4))
    model = keras.Model(clips, keras.layers.Dense(1)(layer(clips)))
    model.compile("sgd", "mse")
    assert layer.sparsity_weight == 0.0
    x = np.random.default_rng(0).normal(size=(6, 3, 4)).astype("float32")
    model.fit(x, np.zeros((6, 3, 1)), batch_size=2, epochs=1, verbose=0)  # 3 steps
    assert layer.sparsity_weight == pytest.approx(0.75)
    model.predict(x, verbose=0)  # inference does not advance the schedule
    assert layer.sparsity_weight == pytest.approx(0.75)


def test_a_keras_learning_rate_schedule_serves_as_a_sparsity_weight(tmp_path):
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([2], [0.0, 0.5])
    assert isinstance(regularizers.LinearWarmup(1.0, 4), keras.optimizers.schedules.LearningRateSchedule)
    clips = keras.Input((3, 4))
    layer = DeltaActivation(step_init=0.1, sparsity_weight=schedule)
    model = keras.Model(clips, keras.layers.Dense(1)(layer(clips)))
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(6, 3, 4)).astype("float32")
    model.fit(x, np.zeros((6, 3, 1)), batch_size=2, epochs=1, verbose=0)  # 3 steps
    assert layer.sparsity_weight == pytest.approx(0.5)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.layers[1].schedule).__name__ == "PiecewiseConstantDecay"
    assert loaded.layers[1].sparsity_weight == pytest.approx(0.5)
