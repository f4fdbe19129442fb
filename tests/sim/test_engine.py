"""DeltaInference: same outputs as the forward pass, and exactly the MACs count_macs reports for zero_delta."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from delta_keras import DeltaActivation, sparsify, strip_sparsity
from delta_keras.models import video_classifier
from delta_keras.sim import count_macs
from delta_keras.data import read_clip
from delta_keras.sim.engine import DeltaInference
from tests.sim.helpers import mobilenet_like, randomize_batch_norm, resnet_image_model, resnet_like, smooth_clips


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


def test_real_clip(real_clip):
    model = resnet_like(frames=6, size=32)
    randomize_batch_norm(model, np.random.default_rng(2))
    engine = _check_engine(model, read_clip(real_clip, 6, (32, 32))[None])
    first, later = engine.macs["conv2d"][0], engine.macs["conv2d"][1:]
    assert max(later) < first  # real video changes little between frames


# Models built by the package: FoldTime / UnfoldTime, ImagePreprocessing, FrameDifference, split activations,
# and Quantize after strip_sparsity.


@pytest.mark.parametrize("stripped", [False, True])
def test_video_classifier_tiny(stripped):
    rng = np.random.default_rng(4)
    model = video_classifier("tiny", 5, frames=4, image_size=32, sparsity="delta", step_init=0.05)
    randomize_batch_norm(model, rng)
    _check_engine(strip_sparsity(model) if stripped else model, smooth_clips(2, 4, 32, rng))


def test_video_classifier_tiny_on_a_real_clip(real_clip):
    model = video_classifier("tiny", 5, frames=6, image_size=32, sparsity="delta", step_init=0.05)
    randomize_batch_norm(model, np.random.default_rng(5))
    engine = _check_engine(model, read_clip(real_clip, 6, (32, 32))[None])
    # conv0 sees unquantised pixels (and zero frame differences on frame 0); behind the first delta
    # layer, real video changes little between frames.
    first, later = engine.macs["conv1"][0], engine.macs["conv1"][1:]
    assert max(later) < first


def test_video_classifier_without_quantisers_matches_forward():
    # Float inputs to MAC layers: outputs agree up to rounding (MAC counts may differ where rounding of the
    # accumulated state decides whether a value changed).
    rng = np.random.default_rng(6)
    model = video_classifier("tiny", 5, frames=3, image_size=32, sparsity="l1")
    randomize_batch_norm(model, rng)
    clips = smooth_clips(2, 3, 32, rng)
    np.testing.assert_allclose(DeltaInference(model).run(clips), np.asarray(model(clips)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stripped", [False, True])
@pytest.mark.parametrize("image_model", [
    lambda: keras.applications.MobileNet(alpha=0.25, input_shape=(32, 32, 3), weights=None, classes=5),
    lambda: resnet_image_model(size=32),
], ids=["mobilenet", "resnet_image"])
def test_sparsified_image_models(image_model, stripped):
    rng = np.random.default_rng(7)
    model = sparsify(image_model(), frames=3, step_init=0.05)
    randomize_batch_norm(model, rng)
    # The image models take inputs scaled to [-1, 1].
    _check_engine(strip_sparsity(model) if stripped else model, smooth_clips(1, 3, 32, rng) / 127.5 - 1)


def test_streaming_state_and_reset():
    rng = np.random.default_rng(3)
    model = mobilenet_like(frames=3)
    clips = smooth_clips(1, 3, 16, rng)
    engine = DeltaInference(model)
    outputs = [np.asarray(engine.step(clips[0, t])) for t in range(3)]
    np.testing.assert_allclose(outputs[-1], np.asarray(model(clips)), rtol=1e-4, atol=1e-5)
    assert engine._step.experimental_get_tracing_count() == 1  # one compiled function for every frame
    with pytest.raises(ValueError, match=r"a frame of batch 2 after frames of batch 1; call reset\(\)"):
        engine.step(clips[[0, 0], 0])
    engine.reset()
    np.testing.assert_allclose(np.asarray(engine.step(clips[0, 0])), np.asarray(model(clips[:, :1].repeat(3, 1))),
                               rtol=1e-4, atol=1e-5)
    assert engine.frames == 1


def test_unsupported_layers_raise_clear_errors():
    clips = keras.Input((3, 4))
    with pytest.raises(NotImplementedError, match="recurrent"):
        DeltaInference(keras.Model(clips, keras.layers.GRU(2)(clips)))
    with pytest.raises(NotImplementedError, match="UnitNormalization"):
        DeltaInference(keras.Model(clips, keras.layers.UnitNormalization()(clips)))
    with pytest.raises(NotImplementedError, match="over every axis mixes the clip's frames"):
        DeltaInference(keras.Model(clips, keras.ops.mean(clips, axis=None, keepdims=True)))
    with pytest.raises(NotImplementedError, match="output='quantized'"):
        DeltaInference(keras.Model(clips, DeltaActivation(output="delta")(clips)))
    engine = DeltaInference(keras.Model(clips, DeltaActivation()(clips)))
    with pytest.raises(ValueError, match="frame"):
        engine.step(np.zeros((2, 5)))


def vgg_like(frames: int, size: int, memory: bool, step: float) -> keras.Model:
    """A plain 13-conv VGG16-shaped network (narrow), He-initialised so activations keep their scale
    through depth, sparsified with a fixed step (or threshold) after every ReLU."""
    image = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 64.0)(image)
    for block, (convs, width) in enumerate(((2, 8), (2, 16), (3, 16), (3, 24), (3, 24))):
        for i in range(convs):
            x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", kernel_initializer="he_normal",
                                    bias_initializer=keras.initializers.RandomNormal(0, 0.05, seed=block * 10 + i),
                                    name=f"block{block + 1}_conv{i + 1}")(x)
        if block < 4:
            x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(1, 1, activation="sigmoid", name="side")(x)
    return sparsify(keras.Model(image, x), frames=frames, step_init=step, memory=memory)


@pytest.mark.parametrize("memory", [False, True])
def test_deep_plain_net_on_a_long_real_clip_is_exact(memory, real_clip):
    # 13 convolutions and 64 real frames: the engine must not drift from the forward pass.
    model = vgg_like(frames=64, size=32, memory=memory, step=0.05)
    clips = read_clip(real_clip, 64, (32, 32))[None]
    engine = DeltaInference(model, check_accumulators=True)
    outputs = engine.run(clips)
    # The unquantised output layer may differ by a float32 ulp (a convolution's rounding depends on the
    # batch shape: B frames here, B*T in the forward pass); every quantised value upstream is identical,
    # which the exact MAC equality below shows.
    np.testing.assert_allclose(outputs, np.asarray(model(clips)), rtol=1e-6, atol=1e-7)
    report = count_macs(model, clips, policies=("dense", "zero_delta"))
    assert {layer.name: layer.macs("zero_delta").tolist() for layer in report.layers} == engine.macs
    assert 1.5 < report.total("dense") / report.total("zero_delta")
    # A pure float accumulator would be close, but not exact: that is what the engine avoids.
    assert max(engine.accumulator_error.values()) < 1e-3


def test_memory_mode_engine_equals_forward_and_count():
    rng = np.random.default_rng(3)
    image = resnet_image_model(16)
    model = sparsify(image, frames=5, step_init=0.1, memory=True)
    randomize_batch_norm(model, rng)
    assert all(layer.memory for layer in model.layers if isinstance(layer, DeltaActivation))
    _check_engine(model, smooth_clips(2, 5, 16, rng))
    _check_engine(strip_sparsity(model), smooth_clips(2, 5, 16, rng))


ON_JAX = """
import numpy as np, keras
from delta_keras import sparsify
from delta_keras.sim import count_macs
from delta_keras.sim.engine import DeltaInference
assert keras.backend.backend() == "jax"
image = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                          keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
model = sparsify(image, frames=3, step_init=0.25)
clips = np.random.default_rng(0).random((1, 3, 8, 8, 3)).astype("float32")
engine = DeltaInference(model)
np.testing.assert_allclose(engine.run(clips), np.asarray(model(clips)), atol=1e-6)
assert engine.macs == {layer.name: layer.macs("zero_delta").tolist() for layer in count_macs(model, clips).layers}
print("OK")
"""


@pytest.mark.slow
def test_the_engine_runs_eagerly_on_jax(tmp_path):
    # Compiled with tf.function only on TensorFlow: JAX's layers cannot run inside a TensorFlow graph.
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", ON_JAX], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0 and "OK" in done.stdout, done.stderr[-3000:]
