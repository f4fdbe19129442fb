"""Models saved by an earlier release load, compute what they computed then, and run through the simulator.

The files in ``data/`` were written by release 0.1.0 (commit a7575cf), before the registry, the quantiser's
module and the model-walking helpers moved: tiny-backbone clip classifiers with DeltaActivation (per-frame, and
with memory and an input quantiser) and with ActivitySparsity, and their outputs on one fixed batch of clips.
"""

from pathlib import Path

import keras
import numpy as np
import pytest

from delta_keras import sim

DATA = Path(__file__).parent / "data"
SAVED = np.load(DATA / "release-0.1.0-outputs.npz")


@pytest.mark.parametrize("name", ["delta", "delta-memory-input", "l1"])
def test_a_model_saved_by_release_0_1_0_loads_and_computes_the_same(name):
    model = keras.models.load_model(DATA / f"release-0.1.0-{name}.keras")
    clips = SAVED["clips"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(clips, training=False)), SAVED[name],
                               rtol=1e-5, atol=1e-5)
    report = sim.count_macs(model, clips)
    assert report.total("dense") > 0 and report.reduction("zero_delta") > 1 and not report.uncounted
    if name.startswith("delta"):
        engine = sim.DeltaInference(model)
        np.testing.assert_allclose(engine.run(clips), SAVED[name], rtol=1e-4, atol=1e-4)
        assert engine.macs == {layer.name: layer.macs("zero_delta").tolist() for layer in report.layers}
