"""SparsityTensorBoard in a plain `fit`: which statistics land in which curve."""

import math

import keras
import numpy as np

from delta_keras import ActivitySparsity, DeltaActivation
from delta_keras.callbacks import SparsityTensorBoard, read_scalars, sparsity_layers


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


def test_train_and_validation_curves_come_from_their_own_batches(tmp_path):
    rng = np.random.default_rng(0)
    # Training clips change every frame; validation clips are constant in time: no delta may be
    # counted in validation, so a leak of training statistics into it (or back) shows.
    train = rng.uniform(0, 1, (8, 4, 6, 6, 1)).astype("float32")
    still = np.repeat(rng.uniform(0, 1, (4, 1, 6, 6, 1)).astype("float32"), 4, axis=1)
    labels = np.array([0, 1] * 4, "int32")
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
