"""Fused epilogues: ReLU, quantiser or memory threshold and max pooling evaluated where changes landed, emitting
exact change lists."""

import numpy as np
import pytest
import tensorflow as tf

from delta_keras.runtime.fused import KEEP, MEMORY, QUANTIZE, Epilogue

pytest.importorskip("numba")


@pytest.mark.parametrize("mode", [KEEP, QUANTIZE, MEMORY])
@pytest.mark.parametrize("pool, padding", [(None, "valid"), ((2, 2), "valid"), ((3, 3), "same"), ((2, 2), "same")])
def test_the_epilogue_equals_the_dense_layers_and_its_lists_rebuild_them(mode, pool, padding):
    rng = np.random.default_rng(0)
    shape = (2, 9, 11, 5)
    steps = np.float32([0.25, 0.5, 1, 2, 4])
    epilogue = Epilogue(relu=True, mode=mode, steps=steps, pool=pool, pool_strides=(2, 2) if pool else None,
                        pool_padding=padding)
    out, pooled = epilogue.outputs(shape)
    accumulator, touched = np.zeros(shape), np.zeros(shape[:3], np.uint8)
    sent = np.zeros(shape, np.float32)
    before = np.zeros(shape, np.float32)
    for t in range(6):
        updated = accumulator + rng.normal(0, 2, shape) * (rng.random(shape) < 0.3)
        touched[:] = np.any(updated != accumulator, axis=-1)  # what the convolution kernel marks
        accumulator = updated
        epilogue.run(accumulator, touched, t == 0, out, pooled, epilogue.pooling(shape))
        expected = np.maximum(accumulator.astype(np.float32), 0)
        if mode == QUANTIZE:
            expected = (tf.round(expected / steps) * steps).numpy()
        if mode == MEMORY:
            expected = sent = np.where(np.abs(expected - sent) > steps, expected, sent)
        np.testing.assert_array_equal(out.value, expected)
        assert not touched.any()
        rebuilt = before.astype(np.float64)
        for b, y in np.ndindex(*out.count.shape):
            flat = out.index[b, y, :out.count[b, y]]
            assert np.all(out.change[b, y, :out.count[b, y]] != 0)  # only what changed is listed
            np.add.at(rebuilt[b, y], (flat // 5, flat % 5), out.change[b, y, :out.count[b, y]])
        np.testing.assert_array_equal(rebuilt.astype(np.float32), expected)  # exact changes, nothing missed
        before = expected
        if pool:
            np.testing.assert_array_equal(pooled.value, tf.nn.max_pool2d(expected, pool, 2, padding.upper()).numpy())
