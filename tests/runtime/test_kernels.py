"""runtime/kernels.py: the accumulators do not drift over a long stream; the outputs reach TensorFlow uncopied."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from delta_keras.frames import geometry
from delta_keras.runtime.compiled import tensor_array, tensor_copy
from delta_keras.runtime.kernels import (ELEMENT_COST, SPARSE_MAC_COST, GatheredDense, SparseConv, band_rows,
                                         break_even)
from delta_keras.runtime.runs import ConvolutionRun

pytest.importorskip("numba")


def _stream(frames: int, shape: tuple, seed: int = 0):
    """Frames on a grid of levels (as quantised activations), 1 % of the elements changing per frame."""
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 64, size=shape) * 8.0).astype("float32")
    for _ in range(frames):
        changed = rng.random(shape) < 0.01
        x = np.where(changed, rng.integers(0, 64, size=shape) * 8.0, x).astype("float32")
        yield x


def _relative_errors(update, exact, frames: int, shape: tuple) -> np.ndarray:
    """Per frame of `_stream`, the largest difference of ``update(x)[0]`` from ``exact(x)`` over the largest value."""
    errors = []
    for x in _stream(frames, shape):
        output = np.asarray(update(tf.constant(x))[0])
        truth = exact(x)
        errors.append(np.abs(output - truth).max() / np.abs(truth).max())
    return np.asarray(errors)


def _convolution(seed: int = 1, shape: tuple = (1, 24, 24, 16)):
    """A 3x3 convolution to 32 channels with random float32 weights, its fan-outs and its exact (float64) output."""
    rng = np.random.default_rng(seed)
    layer = keras.layers.Conv2D(32, 3, padding="same")
    layer.build(shape)
    layer.set_weights([rng.normal(scale=0.1, size=(3, 3, shape[-1], 32)).astype("float32"),
                       rng.normal(size=32).astype("float32")])
    weights = [tf.constant(w.astype("float64")) for w in layer.get_weights()]
    exact = lambda x: (tf.nn.conv2d(tf.constant(x, tf.float64), weights[0], 1, "SAME") + weights[1]).numpy()
    return layer, geometry.stages(layer, shape[1:])[0].fan_out(False), exact


def test_a_convolution_streamed_for_600_frames_stays_at_a_dense_float32_convolutions_rounding():
    layer, fan_out, exact = _convolution()
    # Every update sparse but the re-syncs, every 32 updates (the runtime's default).
    kernel = SparseConv(layer, (24, 24, 16), 1, fan_out, dense_above=1.0, resync_every=32)
    errors = _relative_errors(kernel.update, exact, 600, (1, 24, 24, 16))
    dense = _relative_errors(lambda x: (layer(x),), exact, 600, (1, 24, 24, 16))
    # Frame 1 (every input changed from the zero state) sums each output's 144 products in float32, as the dense
    # float32 convolution does (about 4e-7 of the largest value); later frames add their few changes' float32 sums
    # to the float32 accumulator, each update rounding. Without re-syncs that wanders as a random walk (above
    # 1.1e-6 by frame 500 here); the re-syncs hold it where it starts.
    assert errors.max() < 2 * dense.max() and errors[500:].max() <= 1.5 * errors[:50].max(), (
        dense.max(), errors[:50].max(), errors[500:].max())


def test_a_convolution_is_recomputed_densely_after_resync_every_sparse_updates():
    layer, fan_out, exact = _convolution()
    kernel = SparseConv(layer, (24, 24, 16), 1, fan_out, dense_above=1.0, resync_every=4, resync_phase=1)
    for _ in range(2):  # reset() starts the count at the phase again
        frames = list(_stream(12, (1, 24, 24, 16)))
        updates = [kernel.update(tf.constant(x)) for x in frames]
        executed = [int(update[2]) for update in updates]
        # From the phase (1), three sparse updates; then every fifth frame dense, the rest exactly their changes.
        assert [t for t, e in enumerate(executed) if e == kernel.dense_macs] == [3, 8]
        assert all(e < kernel.dense_macs / 10 for t, e in enumerate(executed) if t not in (0, 3, 8))
        # A re-sync's output is the dense float32 convolution's, bit for bit.
        np.testing.assert_array_equal(np.asarray(updates[3][0]), np.asarray(layer(frames[3])))
        kernel.reset()


def test_the_multiply_pass_sums_the_same_in_bands_of_rows_of_any_height():
    # Each thread takes a band of output rows through every kernel position in turn; a pixel's products are summed
    # in the same order whatever the band, so the bands' borders must not show in the outputs, bit for bit.
    layer, fan_out, _ = _convolution()
    frames = list(_stream(6, (1, 24, 24, 16)))
    outputs = {}
    for rows in (2, 6, 24):
        kernel = SparseConv(layer, (24, 24, 16), 1, fan_out, dense_above=1.0)
        kernel.band_rows = rows
        outputs[rows] = [np.asarray(kernel.update(tf.constant(x))[0]) for x in frames]
    for rows in (2, 6):
        np.testing.assert_array_equal(outputs[rows], outputs[24])
    # A thread's share of the rows, even: a 2x2 pooling in the output pass takes them two at a time.
    assert [band_rows(height, threads) for height, threads in ((24, 2), (7, 2), (1, 2), (5, 1), (6, 4))] == [
        12, 4, 2, 6, 2]


def test_a_dense_layer_on_vectors_does_not_drift_either():
    rng = np.random.default_rng(2)
    layer = keras.layers.Dense(8)
    layer.build((1, 256))
    layer.set_weights([rng.normal(size=(256, 8)).astype("float32"), np.zeros(8, "float32")])
    kernel = GatheredDense(layer, (256,), 1, None, dense_above=1.0)
    weights = layer.get_weights()[0].astype("float64")
    errors = _relative_errors(kernel.update, lambda x: x.astype("float64") @ weights, 600, (1, 256))
    assert errors.max() < 1.5e-7, errors.max()


@pytest.mark.parametrize("shape", [(3,), (1, 48, 48, 64)])
def test_arrays_the_kernels_return_become_tensors_without_a_copy(shape):
    # A tensor that shares the array's memory shows a later write to the array (one the kernels never make);
    # TensorFlow copies a plain NumPy array, aligned to 16 bytes, on every hand-over.
    returned = {}

    def hand_over(copy: bool):
        returned["array"] = tensor_copy(np.ones(shape, np.float32)) if copy else tensor_array(shape)
        returned["array"][...] = 1
        return returned["array"]

    for copy in (False, True):
        tensor = tf.function(lambda: tf.numpy_function(lambda: hand_over(copy), [], tf.float32))()
        returned["array"][...] = 7
        assert returned["array"].ctypes.data % 64 == 0 and returned["array"].shape == shape
        assert np.all(np.asarray(tensor) == 7)
    plain = {}

    def hand_over_plain():
        plain["array"] = np.ones(shape, np.float32)
        return plain["array"]

    tensor = tf.function(lambda: tf.numpy_function(hand_over_plain, [], tf.float32))()
    plain["array"][...] = 7
    if plain["array"].ctypes.data % 64:  # what tensor_array is for
        assert np.all(np.asarray(tensor) == 1)


@pytest.mark.parametrize("strides, padding", [(1, "same"), (2, "valid")])
def test_the_break_even_is_where_the_cost_models_sparse_time_reaches_the_dense_time(strides, padding):
    layer = keras.layers.Conv2D(512, 3, strides=strides, padding=padding)
    layer.build((1, 24, 24, 256))
    side = 24 if padding == "same" else 11
    elements, macs = 24 * 24 * 256 + side * side * 512, side * side * 9 * 256 * 512
    share = break_even(layer, (24, 24, 256))
    assert share == pytest.approx((1 - ELEMENT_COST * elements / macs) / SPARSE_MAC_COST)
    assert 0.15 < share < 0.25
    rgb = keras.layers.Conv2D(64, 3, padding="same")
    rgb.build((1, 24, 24, 3))
    assert break_even(rgb, (24, 24, 3)) == 0.0  # clipped: the model's sparse time exceeds the dense time at no change
    dense = keras.layers.Dense(4096)
    dense.build((1, 4096))
    assert break_even(dense, (4096,)) == pytest.approx((1 - ELEMENT_COST * 8192 / 4096**2) / SPARSE_MAC_COST)


def test_a_run_takes_only_kernels_built_to_choose_in_themselves():
    # Without counting, a convolution chooses dense or sparse in the graph (samples kept there); a run's kernels choose
    # from arrays, and must be built so (in_run): one that would keep graph samples is refused, by name.
    layer, fan_out, _ = _convolution()
    shape = (24, 24, 16)
    in_run = SparseConv(layer, shape, 1, fan_out, dense_above=0.2, counts=False, in_run=True)
    assert not in_run.chooses_in_graph and ConvolutionRun([in_run]).kernels == [in_run]
    with pytest.raises(ValueError, match=f"{layer.name}: a convolution of a run .* in_run=True"):
        ConvolutionRun([in_run, SparseConv(layer, shape, 1, fan_out, dense_above=0.2, counts=False)])
