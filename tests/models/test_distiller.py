"""Distiller: label-free refinement of a sparse student against a frozen dense teacher."""

import keras
import numpy as np
import pytest

from delta_keras import DeltaActivation, sparsify
from delta_keras.models import Distiller, apply_per_frame

L = keras.layers


def _image_model(head: str) -> keras.Model:
    images = keras.Input((12, 12, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="c1")(images)
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="c2")(x)
    if head == "map":
        return keras.Model(images, L.Conv2D(1, 1, activation="sigmoid", name="edges")(x))
    return keras.Model(images, L.Dense(4, name="logits")(L.GlobalAveragePooling2D()(x)))


def _clips(n=16, frames=4):
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, (n, 1, 12, 12, 3))
    return (base + np.cumsum(rng.normal(0, 0.02, (n, frames, 12, 12, 3)), axis=1)).astype("float32")


def _pair(head: str, **student_kwargs):
    image = _image_model(head)
    clips = keras.Input((4, 12, 12, 3))
    teacher = keras.Model(clips, apply_per_frame(image, clips, method=None))
    return sparsify(image, frames=4, **student_kwargs), teacher


@pytest.mark.parametrize("head, loss", [("map", "bce"), ("logits", "kl"), ("logits", "mse")])
def test_a_student_equal_to_its_teacher_stays_close_without_sparsity_weight(head, loss):
    student, teacher = _pair(head, step_init=1e-3, sparsity_weight=0.0)
    clips = _clips()
    np.testing.assert_allclose(student.predict(clips, verbose=0), teacher.predict(clips, verbose=0), atol=5e-3)
    distiller = Distiller(student, teacher)
    distiller.compile(keras.optimizers.Adam(1e-4), distillation_loss=loss)
    history = distiller.fit(clips, epochs=2, batch_size=8, verbose=0).history
    assert {"distillation_loss", "sparsity_loss"} <= set(history)
    assert history["sparsity_loss"][-1] == 0
    np.testing.assert_allclose(student.predict(clips, verbose=0), teacher.predict(clips, verbose=0), atol=5e-2)


def test_a_sparsity_weight_lowers_the_transmitted_deltas_while_the_distillation_loss_stays_bounded(tmp_path):
    clips = _clips(32)
    densities = {}
    for weight in (0.0, 3e-2):
        keras.utils.set_random_seed(0)
        student, teacher = _pair("map", step_init=0.05, sparsity_weight=weight)
        distiller = Distiller(student, teacher)
        distiller.compile(keras.optimizers.Adam(3e-3), distillation_loss="bce")
        history = distiller.fit(clips, epochs=6, batch_size=8, verbose=0).history
        layers = [layer for layer in student.layers if isinstance(layer, DeltaActivation)]
        for layer in layers:
            layer.reset_statistics()
        student.predict(clips, verbose=0)
        densities[weight] = np.mean([layer.statistics()["delta_density"] for layer in layers])
        assert np.isfinite(history["distillation_loss"]).all() and history["distillation_loss"][-1] < 1.0
    assert densities[3e-2] < densities[0.0]
    # The student is what is saved and deployed.
    student.save(tmp_path / "student.keras")
    loaded = keras.models.load_model(tmp_path / "student.keras")
    np.testing.assert_array_equal(loaded.predict(clips, verbose=0), student.predict(clips, verbose=0))


def test_labels_can_be_mixed_in_and_bad_settings_are_refused():
    student, teacher = _pair("logits", step_init=0.05, sparsity_weight=1e-3)
    distiller = Distiller(student, teacher)
    with pytest.raises(ValueError, match="distillation_loss"):
        distiller.compile("adam", distillation_loss="l7")
    with pytest.raises(ValueError, match="label_loss"):
        distiller.compile("adam", label_weight=1.0)
    distiller.compile("adam", distillation_loss="kl", temperature=2.0,
                      label_loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), label_weight=0.5)
    clips = _clips(8)
    labels = np.zeros((8, 4), "int32")
    history = distiller.fit(clips, labels, epochs=1, batch_size=4, verbose=0).history
    assert history["label_loss"][-1] > 0
    # Without a label weight nothing about labels is logged (not a misleading 0.0).
    unlabelled = Distiller(*_pair("logits", step_init=0.05, sparsity_weight=1e-3))
    unlabelled.compile("adam", distillation_loss="kl")
    history = unlabelled.fit(clips, epochs=1, batch_size=4, verbose=0).history
    assert "label_loss" not in history and "distillation_loss" in history


def test_a_saved_distiller_is_a_checkpoint_that_resumes(tmp_path):
    from delta_keras import with_step_rate

    student, teacher = _pair("logits", step_init=0.05, sparsity_weight=1e-3)
    distiller = Distiller(student, teacher)
    distiller.compile(with_step_rate(keras.optimizers.Adam(1e-3), 10.0), distillation_loss="kl", temperature=2.0)
    clips = _clips(8)
    distiller.fit(clips, epochs=1, batch_size=4, verbose=0)
    distiller.save(tmp_path / "checkpoint.keras")
    loaded = keras.models.load_model(tmp_path / "checkpoint.keras")
    assert isinstance(loaded, Distiller) and (loaded.distillation_loss, loaded.temperature) == ("kl", 2.0)
    assert loaded.optimizer.step_rate == 10.0 and int(loaded.optimizer.iterations) == 2
    np.testing.assert_array_equal(loaded.student.predict(clips, verbose=0), student.predict(clips, verbose=0))
    # Both continue identically from the same state.
    for model in (distiller, loaded):
        keras.utils.set_random_seed(1)
        model.fit(clips, epochs=1, batch_size=4, verbose=0, shuffle=False)
    np.testing.assert_allclose(loaded.student.predict(clips, verbose=0), student.predict(clips, verbose=0), atol=1e-5)
