"""Can skipping unchanged inputs make a convolution faster on a CPU? Dense against gathered work, side by side.

The measurement a streaming delta runtime is designed from. For one frame's input change of a layer it times,
in one process on the same data:

- ``dense``: the layer's convolution on the whole change (what a dense engine does every frame);
- ``pixels`` (1x1 convolutions): gather the pixel vectors that changed, one matmul, scatter-add the rows;
- ``tiles`` (3x3 convolutions): cut the frame into T x T tiles, gather the tiles whose output a change reaches
  (a change within the tile or its 1-pixel halo), with their halo, convolve only those, scatter their outputs.

Changes are placed in random blobs (moving objects: changes cluster in space), at several fractions of
changed pixels, and the printout gives the fraction of tiles they touch, the time of each method and the
speedup over dense. All compiled with `tf.function` (shapes vary with the number of changes, so no XLA).

    python benchmarks/sparse_conv_kernels.py [--size 56] [--channels 64] [--tile 8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import tensorflow as tf


def blob_mask(size: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A (size, size) bool mask with about ``fraction`` of its pixels set, in random round blobs."""
    mask = np.zeros((size, size), bool)
    yy, xx = np.mgrid[:size, :size]
    while mask.mean() < fraction:
        cy, cx, r = rng.integers(0, size), rng.integers(0, size), rng.integers(2, max(3, size // 8))
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    return mask


def timed(function, *args, repeats: int = 30) -> float:
    function(*args)  # trace
    started = time.perf_counter()
    for _ in range(repeats):
        result = function(*args)
    np.asarray(result)
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--tile", type=int, default=8)
    args = parser.parse_args()
    size, channels, tile = args.size, args.channels, args.tile
    rng = np.random.default_rng(0)
    kernel3 = tf.constant(rng.normal(size=(3, 3, channels, channels)).astype("float32"))
    kernel1 = tf.constant(rng.normal(size=(channels, channels)).astype("float32"))
    grid = size // tile

    @tf.function
    def dense3(change):
        return tf.nn.conv2d(change[None], kernel3, 1, "SAME")[0]

    @tf.function
    def dense1(change):
        return tf.einsum("hwc,cf->hwf", change, kernel1)

    @tf.function
    def pixels1(change):
        where = tf.where(tf.reduce_any(change != 0, axis=-1))
        rows = tf.matmul(tf.gather_nd(change, where), kernel1)
        return tf.scatter_nd(where, rows, (size, size, channels))

    @tf.function
    def tiles3(change):
        padded = tf.pad(change, [[1, 1], [1, 1], [0, 0]])
        # An output tile changes when a change lies within its tile or its halo: dilate by the kernel's reach.
        moved = tf.cast(tf.reduce_any(change != 0, axis=-1), tf.float32)[None, :, :, None]
        reach = tf.nn.max_pool2d(moved, 3, 1, "SAME")[0, :, :, 0] > 0
        changed = tf.reduce_any(tf.reshape(reach, (grid, tile, grid, tile)), axis=(1, 3))
        where = tf.cast(tf.where(changed), tf.int32)  # (n, 2) tile coordinates
        # Each tile with its 1-pixel halo: (n, tile + 2, tile + 2, C).
        offsets = tf.range(tile + 2)
        rows = where[:, 0:1] * tile + offsets[None]
        cols = where[:, 1:2] * tile + offsets[None]
        patches = tf.gather(tf.gather(padded, rows), cols, axis=2, batch_dims=1)
        out = tf.nn.conv2d(patches, kernel3, 1, "VALID")  # (n, tile, tile, C)
        out = tf.scatter_nd(where, out, (grid, grid, tile, tile, channels))
        return tf.reshape(tf.transpose(out, (0, 2, 1, 3, 4)), (size, size, channels))

    x = rng.normal(size=(size, size, channels)).astype("float32")
    check = blob_mask(size, 0.1, rng)[..., None] * x
    np.testing.assert_allclose(tiles3(tf.constant(check)), dense3(tf.constant(check)), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(pixels1(tf.constant(check)), dense1(tf.constant(check)), rtol=1e-4, atol=1e-3)
    print(f"one frame's change, {size}x{size}x{channels}, 3x3 and 1x1 convolutions to {channels} channels, "
          f"tiles {tile}x{tile}; seconds per frame, speedup over dense")
    print(f"{'changed px':>10} {'tiles':>6} | {'3x3 dense':>9} {'tiles':>9} {'x':>6} | {'1x1 dense':>9} {'pixels':>9} {'x':>6}")
    for fraction in (0.01, 0.03, 0.1, 0.2, 0.4, 1.0):
        mask = blob_mask(size, fraction, rng) if fraction < 1 else np.ones((size, size), bool)
        change = tf.constant(mask[..., None] * x)
        reach = np.pad(mask, 1)
        reach = np.max([reach[dy:dy + size, dx:dx + size] for dy in range(3) for dx in range(3)], axis=0)
        tile_share = reach.reshape(grid, tile, grid, tile).any(axis=(1, 3)).mean()
        d3, t3, d1, p1 = (timed(f, change) for f in (dense3, tiles3, dense1, pixels1))
        print(f"{mask.mean():>10.3f} {tile_share:>6.2f} | {d3 * 1e3:>7.2f}ms {t3 * 1e3:>7.2f}ms {d3 / t3:>5.2f}x | "
              f"{d1 * 1e3:>7.2f}ms {p1 * 1e3:>7.2f}ms {d1 / p1:>5.2f}x")


if __name__ == "__main__":
    main()
