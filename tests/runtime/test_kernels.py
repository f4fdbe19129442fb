"""runtime/kernels.py: the accumulators' float32 rounding stays bounded over a long stream."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from delta_keras.frames import geometry
from delta_keras.runtime import DeltaRuntime
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


@pytest.mark.parametrize("resync_every, bounded", [(50, True), (0, False)])
def test_a_convolution_resynced_at_an_interval_does_not_drift_over_600_frames(resync_every, bounded):
    rng = np.random.default_rng(1)
    layer = keras.layers.Conv2D(32, 3, padding="same")
    layer.build((1, 24, 24, 16))
    layer.set_weights([rng.normal(scale=0.1, size=(3, 3, 16, 32)).astype("float32"),
                       rng.normal(size=32).astype("float32")])
    fan_out = geometry.stages(layer, (24, 24, 16))[0].fan_out(False)
    kernel = SparseConv(layer, (24, 24, 16), 1, fan_out, dense_above=1.0, resync_every=resync_every)
    weights = [tf.constant(w.astype("float64")) for w in layer.get_weights()]
    exact = lambda x: (tf.nn.conv2d(tf.constant(x, tf.float64), weights[0], 1, "SAME") + weights[1]).numpy()
    errors = _relative_errors(kernel, exact, 600, (1, 24, 24, 16))
    early, late = errors[:50].max(), errors[500:].max()
    # Resynced, the error starts again from the dense output's rounding every 50 frames; without it, it wanders
    # as a random walk (about sqrt(frames) roundings: over 2x at frame 500 than over the first 50).
    assert (late <= 1.5 * early) == bounded, (early, late)
    assert late < 1e-5


def test_a_dense_layer_is_resynced_too():
    layer = keras.layers.Dense(8)
    layer.build((1, 32))
    kernel = GatheredDense(layer, (32,), 1, None, dense_above=1.0, resync_every=3)
    executed = [int(kernel.update(tf.constant(x))[2]) for x in _stream(8, (1, 32))]
    # Three sparse updates (dense_above=1.0 never falls back), then one dense recomputation, and again.
    dense = 32 * 8
    assert [macs == dense for macs in executed] == [False, False, False, True] * 2, executed


def test_the_runtime_refuses_a_bad_interval():
    model = keras.Sequential([keras.Input((None, 4)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="resync_every must be an integer >= 0"):
        DeltaRuntime(model, resync_every=-1)
