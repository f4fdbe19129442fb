"""SparsityMetrics and SparsityTensorBoard in a plain `fit`: which statistics land in which log and curve."""

import math

import keras
import numpy as np
import pytest

from delta_keras import ActivitySparsity, DeltaActivation
from delta_keras.callbacks import SparsityMetrics, SparsityTensorBoard, read_scalars, sparsity_layers


def _clip_model():
    clips = keras.Input((4, 6, 6, 1))
    x = keras.layers.TimeDistributed(keras.layers.Conv2D(3, 3, activation="relu"), name="conv")(clips)
    x = DeltaActivation(step_init=0.05, sparsity_weight=1e-3, name="delta")(x)
    x = ActivitySparsity(sparsity_weight=1e-3, name="l1")(x)
    x = keras.layers.TimeDistributed(keras.layers.Flatten())(x)
    model = keras.Model(clips, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(x)))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_sparsity_layers_are_found_inside_nested_models():
    inner = _clip_model()
    outer = keras.Sequential([keras.Input((4, 6, 6, 1)), inner])
    assert [layer.name for layer in sparsity_layers(outer)] == ["delta", "l1"]


def _moving_and_still_clips():
    """Training clips that change every frame and validation clips constant in time: no delta may be counted
    in validation, so a leak of training statistics into it (or back) shows."""
    rng = np.random.default_rng(0)
    train = rng.uniform(0, 1, (8, 4, 6, 6, 1)).astype("float32")
    still = np.repeat(rng.uniform(0, 1, (4, 1, 6, 6, 1)).astype("float32"), 4, axis=1)
    return train, still, np.array([0, 1] * 4, "int32")


def test_train_and_validation_curves_come_from_their_own_batches(tmp_path):
    train, still, labels = _moving_and_still_clips()
    model = _clip_model()
    callback = SparsityTensorBoard(tmp_path, validation_clips=still)
    model.fit(train, labels, batch_size=4, epochs=2, validation_data=(still, labels[:4]), callbacks=[callback],
              verbose=0)

    curves = read_scalars(tmp_path)
    train_curves, validation_curves = curves["train"], curves["validation"]
    for tag in ("loss/total", "loss/task", "loss/sparsity", "density/delta", "spatial_density/delta",
                "density/l1", "step/delta"):
        assert [step for step, _ in train_curves[tag]] == [0, 1], tag
        assert all(math.isfinite(value) for _, value in train_curves[tag]), tag
    assert train_curves["density/delta"][-1][1] > 0.1
    assert validation_curves["density/delta"][-1][1] == 0.0
    assert validation_curves["spatial_density/delta"][-1][1] > 0.0
    assert train_curves["loss/sparsity"][-1][1] > 0.0
    # Under zero_delta the per-frame layers of a still clip cost MACs only on its first frame (of 4);
    # the head after the time average runs once per clip whatever the policy.
    (_, reduction), = validation_curves["macs/zero_delta_reduction"][-1:]
    (_, fraction), = validation_curves["macs/zero_delta_fraction"][-1:]
    assert 3.0 < reduction <= 4.0 and math.isclose(fraction * reduction, 1.0, rel_tol=1e-5)
    assert "macs/zero_activation_reduction" in validation_curves
    assert "macs/zero_delta_reduction" not in train_curves


def test_curves_without_validation_are_training_only(tmp_path):
    model = _clip_model()
    clips = np.random.default_rng(1).uniform(0, 1, (4, 4, 6, 6, 1)).astype("float32")
    model.fit(clips, np.zeros(4, "int32"), epochs=1, callbacks=[SparsityTensorBoard(tmp_path, histograms=False)],
              verbose=0)
    curves = read_scalars(tmp_path)
    assert set(curves) == {"train"}
    assert curves["train"]["density/delta"][0][1] > 0.0


def test_sparsity_metrics_put_each_periods_figures_in_the_logs(tmp_path):
    train, still, labels = _moving_and_still_clips()
    model = _clip_model()
    metrics, board = SparsityMetrics(per_layer=True), SparsityTensorBoard(tmp_path, histograms=False)
    # A callback listed after it sees the figures (EarlyStopping on the validation delta density).
    stopper = keras.callbacks.EarlyStopping(monitor="val_delta_density", mode="min", patience=0)
    history = model.fit(train, labels, batch_size=4, epochs=3, validation_data=(still, labels[:4]), verbose=0,
                        callbacks=[metrics, board, stopper])
    logs = history.history
    assert len(logs["loss"]) == 2  # still clips: val_delta_density stays 0.0, no improvement after epoch 0
    assert logs["val_delta_density"] == [0.0, 0.0] and logs["val_delta/delta_density"] == [0.0, 0.0]
    assert 0.1 < logs["delta_density"][-1] < 1 and 0 < logs["val_activation_density"][-1] <= 1
    # The whole model's figure is the neuron-weighted one of its layers (both layers see the same tensor here).
    assert logs["delta/delta_density"][-1] == logs["l1/delta_density"][-1] == logs["delta_density"][-1]
    # Two readers agree, and the curves are what the logs say.
    train_stats = board.epoch_statistics["train"]
    assert metrics.epoch_statistics == board.epoch_statistics
    assert read_scalars(tmp_path)["train"]["density/delta"][-1][1] == pytest.approx(train_stats["delta"]["delta_density"])
    # Reading disturbs nothing: the layer still counts the whole epoch, training and validation.
    assert sparsity_layers(model)[0].statistics()["batches"] == 2 + 1
    model.evaluate(train, labels, verbose=0, callbacks=[metrics])
    assert metrics.evaluation["delta_density"] == pytest.approx(logs["delta_density"][-1], abs=0.2)
    assert set(metrics.evaluation) == {"delta_density", "activation_density", "delta/delta_density",
                                       "delta/activation_density", "l1/delta_density", "l1/activation_density"}
