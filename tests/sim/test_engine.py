"""DeltaInference: same outputs as the forward pass, and exactly the MACs count_macs reports for zero_delta."""

import os

import cv2
import keras
import numpy as np
import pytest

from delta_keras import DeltaActivation
from delta_keras.sim import count_macs
from delta_keras.sim.engine import DeltaInference
from tests.sim.helpers import mobilenet_like, randomize_batch_norm, resnet_like, smooth_clips

REAL_CLIP = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "real_clips",
                         "v_ApplyEyeMakeup_g01_c01.avi")


def _check_engine(model, clips):
    engine = DeltaInference(model)
    outputs = engine.run(clips)
    np.testing.assert_allclose(outputs, np.asarray(model(clips)), rtol=1e-4, atol=1e-4)
    report = count_macs(model, clips, policies=("dense", "zero_delta"))
    assert {layer.name: layer.macs("zero_delta").tolist() for layer in report.layers} == engine.macs
    # Delta layers make later frames cheaper than the first one.
    assert report.total("zero_delta") < report.total("dense")
    return engine


@pytest.mark.parametrize("folded", [True, False])
def test_mobilenet_like_matches_forward_and_count(folded):
    rng = np.random.default_rng(0)
    model = mobilenet_like(frames=4, folded=folded)
    randomize_batch_norm(model, rng)
    _check_engine(model, smooth_clips(2, 4, 16, rng))


def test_resnet_like_with_residual_adds():
    rng = np.random.default_rng(1)
    model = resnet_like(frames=4)
    randomize_batch_norm(model, rng)
    _check_engine(model, smooth_clips(2, 4, 16, rng))


def _real_clip(frames, size):
    capture = cv2.VideoCapture(REAL_CLIP)
    clip = []
    while len(clip) < frames:
        ok, frame = capture.read()
        assert ok, REAL_CLIP
        clip.append(cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), (size, size), interpolation=cv2.INTER_AREA))
    return np.asarray(clip, "float32")[None]


def test_real_clip():
    model = resnet_like(frames=6, size=32)
    randomize_batch_norm(model, np.random.default_rng(2))
    engine = _check_engine(model, _real_clip(6, 32))
    first, later = engine.macs["conv2d"][0], engine.macs["conv2d"][1:]
    assert max(later) < first  # real video changes little between frames


def test_streaming_state_and_reset():
    rng = np.random.default_rng(3)
    model = mobilenet_like(frames=3)
    clips = smooth_clips(1, 3, 16, rng)
    engine = DeltaInference(model)
    outputs = [np.asarray(engine.step(clips[0, t])) for t in range(3)]
    np.testing.assert_allclose(outputs[-1], np.asarray(model(clips)), rtol=1e-4, atol=1e-5)
    engine.reset()
    np.testing.assert_allclose(np.asarray(engine.step(clips[0, 0])), np.asarray(model(clips[:, :1].repeat(3, 1))),
                               rtol=1e-4, atol=1e-5)
    assert engine.frames == 1


def test_unsupported_layers_raise_clear_errors():
    clips = keras.Input((3, 4))
    with pytest.raises(NotImplementedError, match="recurrent"):
        DeltaInference(keras.Model(clips, keras.layers.GRU(2)(clips)))
    with pytest.raises(NotImplementedError, match="LayerNormalization"):
        DeltaInference(keras.Model(clips, keras.layers.LayerNormalization()(clips)))
    engine = DeltaInference(keras.Model(clips, DeltaActivation()(clips)))
    with pytest.raises(ValueError, match="frame"):
        engine.step(np.zeros((2, 5)))
