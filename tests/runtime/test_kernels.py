"""runtime/kernels.py: the accumulators do not drift over a long stream."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from delta_keras.frames import geometry
from delta_keras.runtime.kernels import GatheredDense, SparseConv

pytest.importorskip("numba")


def _stream(frames: int, shape: tuple, seed: int = 0):
    """Frames on a grid of levels (as quantised activations), 1 % of the elements changing per frame."""
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 64, size=shape) * 8.0).astype("float32")
    for _ in range(frames):
        changed = rng.random(shape) < 0.01
        x = np.where(changed, rng.integers(0, 64, size=shape) * 8.0, x).astype("float32")
        yield x


def _relative_errors(kernel, exact, frames: int, shape: tuple) -> np.ndarray:
    errors = []
    for x in _stream(frames, shape):
        output = np.asarray(kernel.update(tf.constant(x))[0])
        truth = exact(x)
        errors.append(np.abs(output - truth).max() / np.abs(truth).max())
    return np.asarray(errors)


def test_a_convolution_streamed_for_600_frames_stays_at_its_outputs_rounding():
    rng = np.random.default_rng(1)
    layer = keras.layers.Conv2D(32, 3, padding="same")
    layer.build((1, 24, 24, 16))
    layer.set_weights([rng.normal(scale=0.1, size=(3, 3, 16, 32)).astype("float32"),
                       rng.normal(size=32).astype("float32")])
    fan_out = geometry.stages(layer, (24, 24, 16))[0].fan_out(False)
    kernel = SparseConv(layer, (24, 24, 16), 1, fan_out, dense_above=1.0)  # never dense: every update sparse
    weights = [tf.constant(w.astype("float64")) for w in layer.get_weights()]
    exact = lambda x: (tf.nn.conv2d(tf.constant(x, tf.float64), weights[0], 1, "SAME") + weights[1]).numpy()
    errors = _relative_errors(kernel, exact, 600, (1, 24, 24, 16))
    # float32's rounding of the output (2^-24 = 6e-8 of the largest value), from frame 1 to frame 600; a float32
    # accumulator starts near 5e-7 and wanders as a random walk (over 1e-6 by frame 500).
    assert errors.max() < 1.5e-7 and errors[500:].max() <= 1.5 * errors[:50].max(), (errors[:50].max(),
                                                                                     errors[500:].max())


def test_a_dense_layer_on_vectors_does_not_drift_either():
    rng = np.random.default_rng(2)
    layer = keras.layers.Dense(8)
    layer.build((1, 256))
    layer.set_weights([rng.normal(size=(256, 8)).astype("float32"), np.zeros(8, "float32")])
    kernel = GatheredDense(layer, (256,), 1, None, dense_above=1.0)
    weights = layer.get_weights()[0].astype("float64")
    errors = _relative_errors(kernel, lambda x: x.astype("float64") @ weights, 600, (1, 256))
    assert errors.max() < 1.5e-7, errors.max()
