"""Sparsified models and video classifiers round-trip through .keras files, loaded in a fresh process."""

import subprocess
import sys

import keras
import numpy as np

import delta_keras

LOAD_AND_PREDICT = """
import sys, numpy as np, keras
import delta_keras  # registers the custom layers
folder = sys.argv[1]
for name in ("sparsified", "classifier"):
    model = keras.saving.load_model(f"{folder}/{name}.keras")
    np.save(f"{folder}/{name}_loaded.npy", model.predict(np.load(f"{folder}/{name}_clips.npy"), verbose=0))
"""


def test_round_trip_in_a_fresh_process(tmp_path, branchy, random_clips):
    models = {
        "sparsified": delta_keras.sparsify(branchy, frames=3, step_init=0.25, sparsity_weight=1e-3),
        "classifier": delta_keras.video_classifier("tiny", 3, frames=None, image_size=16, sparsity="l1"),
    }
    expected = {}
    for name, model in models.items():
        clips = random_clips((2, 3, 16, 16, 3), high=255.0 if name == "classifier" else 4.0)
        np.save(tmp_path / f"{name}_clips.npy", clips)
        model.save(tmp_path / f"{name}.keras")
        expected[name] = model.predict(clips, verbose=0)
    subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, str(tmp_path)], check=True, timeout=300)
    for name, outputs in expected.items():
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}_loaded.npy"), outputs)
    loaded = keras.saving.load_model(tmp_path / "sparsified.keras")
    assert [l.fan_out for l in loaded.layers if isinstance(l, delta_keras.DeltaActivation)] == [
        l.fan_out for l in models["sparsified"].layers if isinstance(l, delta_keras.DeltaActivation)
    ]
