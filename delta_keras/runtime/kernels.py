"""Delta updates of one MAC layer: multiply only the nonzero input changes, add the products to an accumulator.

Real footage changes few *elements* between frames but touches most pixels and tiles (at HED's block1_conv2
on a UCF101 clip, 192x192, step 32: 0.5 % of the elements change, in 19 % of the pixels, reaching 66 % of
the 8 x 8 output tiles; `benchmarks/streaming_speed.py --layers`). Gathering pixel vectors or tiles and
calling a dense convolution on them therefore does most of the dense work plus a scatter; on a CPU
what wins is element-sparse work. `SparseConv` does it with a compiled (numba) kernel, in two parallel
passes: (1) per input row, compare the frame with the previous one and list the changed elements (and sum
their exact fan-outs, the ``zero_delta`` MAC count); (2) per band of output rows, one kernel position after
another, for each changed element within the kernel's reach, add ``change * kernel[i, j, c, :]`` to the output
pixel (a vectorised axpy over the output channels). Each band is written by one thread, so no atomics; the MACs
done are exactly the ``zero_delta`` MACs. `GatheredDense` serves a `Dense` layer on vectors with a gather of its
kernel's rows.

The changes are exact (the difference of two float32 values, in float64); a frame's products are summed per
output pixel in float32 (a float64 multiply pass was 1.25-1.7x slower) and those sums added to a float32
accumulator. Each update rounds, so without a bound the accumulator would wander as a random walk (a 3x3
convolution, 16 -> 32 channels, 1 % of its inputs changing per frame: largest relative error 0.9e-6 over frames
0-99, 2.5e-6 over frames 1000-1099, 3.6e-6 over frames 2900-2999), and a quantiser downstream would flip on more
ties the longer a stream runs (`benchmarks/streaming_drift.py`). So a layer is recomputed densely after
``resync_every`` sparse updates in a row that multiplied changes (`SparseConv`), which sets its accumulator to the
dense float32 result. (Float64 accumulators, an earlier release's, do not wander, but the float32 sums of each
frame drifted on real footage all the same and needed the re-sync; with it, float32 accumulators leave the outputs
as close to the forward pass over 300 real frames, for half the bytes.)

Both fall back to the layer's dense computation when more than ``dense_above`` of the input changed, which
also clears the accumulator's float rounding (`DeltaRuntime` runs a scene cut's whole frame densely); by default
that share is the layer's `break_even`, from a cost model of both.
"""

from __future__ import annotations

import functools
import time

import keras
import numpy as np
import tensorflow as tf

from delta_keras import registry
from delta_keras.runtime.compiled import (channel_shift, leading_padding, njit, numba, split_index, tensor_array,
                                          tensor_copy)
from delta_keras.runtime.fused import MEMORY, QUANTIZE, ChangeList, Epilogue, finish_values, remember_values

# Input elements compared to choose between the sparse and the dense update.
SAMPLES = 8192
# An output the kernel does not hand on (shape-compatible with any 4D frame), and no bias to add (`multiply_pass`).
EMPTY = np.zeros((0, 0, 0, 0), np.float32)
NO_BIAS = np.zeros(0, np.float32)
# No list of the next convolution's changes written in the output pass (`multiply_pass`).
NOT_LISTED = (EMPTY, np.zeros((0, 0, 0), np.int32), np.zeros((0, 0, 0)), np.zeros((0, 0), np.int64), 0,
              np.zeros(0, np.uint8))
# The parts of a kernel's wall time (`SparseConv.seconds`, `DeltaRuntime.kernel_seconds`).
SECONDS = ("changes", "multiply", "epilogue", "dense")
# `break_even`'s cost model, in MACs of the layer's dense convolution (`benchmarks/streaming_speed.py --break-even`
# measures it per layer; HED's 3x3 convolutions at 96x96 and 192x192, 2 cores): a MAC of the sparse kernel costs 3-5
# of them, and an input element listed plus an output element finished (compared; rounded to float32 in the output
# pass) about 70 per element.
SPARSE_MAC_COST = 4.0
ELEMENT_COST = 70.0


@njit
def _list_changes(previous, value, fan_out, index, change, count):  # pragma: no cover (compiled)
    """Pass 1: per input row, the changed elements (flat x * C + c), their changes and their number (``count``).
    Returns the sum of their fan-outs (the zero_delta MACs).

    Where the channels come in fours, four elements are compared at once, as the bits of two 64-bit words, and
    only a group that differs is looked at element by element: most are equal, and one test (and one branch) for
    four elements listed HED's layer inputs 1.2-2.7x faster (2-15 % of the elements changed, 96x96 and 192x192)."""
    batch, height, width, channels = value.shape
    quads = channels // 4 if channels % 4 == 0 else 0
    words = (previous.reshape(batch, height, width * channels).view(np.uint64),
             value.reshape(batch, height, width * channels).view(np.uint64)) if quads else (
        np.zeros((1, 1, 1), np.uint64), np.zeros((1, 1, 1), np.uint64))
    before, after = words
    macs = np.zeros(batch * height, np.int64)
    for row in numba.prange(batch * height):
        b, y = row // height, row % height
        n = 0
        for x in range(width):
            if not quads:
                for c in range(channels):
                    n = _list_one(previous, value, fan_out, index, change, b, y, x, c, n, macs, row)
                continue
            for quad in range(quads):
                word = (x * quads + quad) * 2
                if (after[b, y, word] ^ before[b, y, word]) | (after[b, y, word + 1] ^ before[b, y, word + 1]):
                    for c in range(quad * 4, quad * 4 + 4):
                        n = _list_one(previous, value, fan_out, index, change, b, y, x, c, n, macs, row)
        count[b, y] = n
    return macs.sum()


@njit(parallel=False)
def _list_one(previous, value, fan_out, index, change, b, y, x, c, n, macs, row):  # pragma: no cover (compiled)
    """Lists element ``(b, y, x, c)`` at position ``n`` of its row if it changed; returns the row's new count."""
    # In float64 the difference of two float32 values is exact (the count sees every change); the multiply pass
    # rounds it to float32 once, as it sums in float32.
    d = np.float64(value[b, y, x, c]) - np.float64(previous[b, y, x, c])
    if d == 0:
        return n
    channels = value.shape[3]
    index[b, y, n] = x * channels + c
    change[b, y, n] = d
    macs[row] += fan_out[y, x, c]
    return n + 1


@njit(parallel=False)
def _list_row(values, target, index, change, wanted):  # pragma: no cover (compiled)
    """The changes of a finished row ``values`` (W, C) from ``target`` (a row of the list's value) into a row of a
    `ChangeList` (flat ``x * C + c``; the changes in float64, exact, as `_list_one` takes them), written into
    ``target``, at the pixels ``wanted`` (W,) marks (the others were not finished: unchanged); returns their number.
    A pixel is first tested whole (one vectorised comparison): most are unchanged."""
    width, channels = values.shape
    n = 0
    for x in range(width):
        if not wanted[x]:
            continue
        differs = False
        for c in range(channels):
            differs |= values[x, c] != target[x, c]
        if differs:
            for c in range(channels):
                d = np.float64(values[x, c]) - np.float64(target[x, c])
                if d != 0:
                    index[n] = x * channels + c
                    change[n] = d
                    target[x, c] = values[x, c]
                    n += 1
    return n


@njit(parallel=False)
def _list_into(values, target, index, change, count, y, full, full_bands, band, wanted):  # pragma: no cover (compiled)
    """Row ``y`` of a `ChangeList` from a finished row at the pixels ``wanted`` marks (`_list_row`); once its band is
    ``full`` (it listed enough changes to make the next convolution run densely), those pixels are copied into
    ``target`` unlisted and the band marked in ``full_bands``. Returns the changes listed."""
    if full:
        for x in range(values.shape[0]):
            if wanted[x]:
                target[x] = values[x]
        count[y] = 0
        full_bands[band] = 1
        return 0
    count[y] = _list_row(values, target, index, change, wanted)
    return count[y]


@njit
def _listed_fan_out(index, count, fan_out):  # pragma: no cover (compiled)
    """The MACs of a list of changes (a producer's `ChangeList`): the sum of their fan-outs."""
    batch, height = count.shape
    channels = fan_out.shape[2]
    shift = channel_shift(channels)
    macs = np.zeros(batch * height, np.int64)
    for row in numba.prange(batch * height):
        b, y = row // height, row % height
        for k in range(count[b, y]):
            x, c = split_index(index[b, y, k], channels, shift)
            macs[row] += fan_out[y, x, c]
    return macs.sum()


@njit(parallel=False)
def _sampled_changes(previous, value, stride):  # pragma: no cover (compiled)
    """How many of the elements at every ``stride``-th position of the flat input changed: decides dense or
    sparse for a small part of a full comparison's cost (a wrong guess only costs time). One thread: waking
    the pool would cost more than the work on a frame that then runs densely."""
    before, after = previous.ravel(), value.ravel()
    changed = 0
    for i in range(0, after.size, stride):
        changed += after[i] != before[i]
    return changed


@functools.cache
def multiply_pass(filters: int):
    """The multiply pass (``add_changes``) compiled for convolutions of ``filters`` output channels: with the count a
    constant, the loops over the channels are unrolled into vector registers (on the changes of HED's layers between
    real frames, the pass 10-24 % faster on the 64- to 256-filter layers and 3-5 % on the 512-filter ones than with
    the count read at run time). numba caches each compilation on disk, keyed by the count."""

    @njit
    def add_changes(accumulator, kernel, index, change, count, strides, offsets, dilation, touched, relu, steps,
                    sent, thresholds, output, side_kernel, side_bias, side, pooled, sums, sums_bias, base, base_bias,
                    frame_sums, hit, band_rows, pool, every, into_value, into_index, into_change, into_count,
                    into_limit, into_full):  # pragma: no cover
        """Pass 2: ``accumulator[b, oy, ox] += change * kernel[i, j, c]`` for every changed input ``(y, x, c)`` with
        ``oy * stride - top + i * dilation == y`` (and the same for x); marks ``touched[b, oy, ox]``; writes each row
        rounded to float32 into ``output`` (unless it is empty), through the output-pass epilogue (``relu``,
        ``steps``: `delta_keras.runtime.fused.finish_values`; with ``sent`` (the output's shape) a memory threshold
        of ``thresholds`` after it, `delta_keras.runtime.fused.remember_values`), and from it ``side``, the pointwise
        convolutions that read it (``side_kernel`` (filters, S) and ``side_bias`` (S,); an empty ``side``: none), and
        ``pooled``, its 2x2 max pooling of stride 2 (rows two at a time, each pair by one thread; an empty
        ``pooled``: none; a last odd row or column in a window of its own, as "same" pooling pads). The rows are
        finished from ``sums``: the ``accumulator`` itself, or a dense frame's float32 convolution without its bias
        (`SparseConv._dense_pass`, no changes), ``sums_bias`` (F,) then added in float32 (empty: nothing added).

        Per band of ``band_rows`` output rows (`band_rows`: a thread's share), in two parts. First the products, the
        kernel's positions ``(i, j)`` in turn, so that one position's weights (C x F) stay in its core's cache while the
        band's changes use them (taken row by row, a change read its weight rows from memory: HED's block4 layers
        at 192x192, 24 rows of 24 pixels, read their 9.4 MB of weights some 20 times a frame). The products of a
        frame are summed per output pixel in float32 into ``frame_sums`` (accumulator-shaped scratch), each pixel's
        sum started at its first product where ``hit`` (B, H, W; all zero between calls) marks it (16 lanes a
        vector and half the bytes: a multiply pass 1.25-1.7x faster than with float64 products on HED's real
        clips). Then per output row: the frame's sums are added to the float32 accumulator (the rounding that
        collects over a stream is bounded by `SparseConv`'s ``resync_every``) and the row finished while it is in
        cache.

        With ``base`` (non-empty) the accumulator is first set to it, plus ``base_bias`` where that is not empty: a
        dense frame's sums, copied row by row as the pass reaches them instead of in a pass of their own.

        With ``into_count`` (non-empty; ``pool``: the output pooled) the finished rows, pooled where ``pool``, are not
        handed on as ``output`` but compared with ``into_value``, the next convolution's input as it was, and
        written into it (updated in place), their changes listed into
        ``into_index``, ``into_change`` and ``into_count``: the next convolution of a run reads them
        (`delta_keras.runtime.runs`) instead of comparing a whole new input. A band that has listed more than
        ``into_limit`` changes (more than make the next convolution run densely) copies its remaining rows into
        ``into_value`` unlisted and marks ``into_full[band]``. Unless ``every``, the pass finishes only the pixels a
        product reached (and the rest of their pooling windows): the others are unchanged since the last pass, as
        ``into_value`` and ``side`` hold them (a still scene's floor was mostly a pass over every accumulator)."""
        batch, out_h, out_w = accumulator.shape[:3]
        kernel_h, kernel_w, channels, _ = kernel.shape
        height = count.shape[1]
        shift = channel_shift(channels)
        listing = into_count.size > 0
        pools = pooled.size > 0 or (listing and pool)
        rows = 2 if pools else 1  # output rows finished at a time
        finishing = output.size > 0 or pools or listing
        pool_h, pool_w = (pooled if pooled.size else into_value).shape[1:3]
        bands = -(-out_h // band_rows)
        for band in numba.prange(batch * bands):
            b, top_row = band // bands, band % bands * band_rows
            end_row = min(top_row + band_rows, out_h)
            band_listed = 0  # the changes this band listed for the next convolution
            if listing:
                into_full[band] = 0
            # Scratch for each pair of rows the band finishes: the columns finished (and the pooled ones), the finished
            # rows where ``output`` is not wanted (pooled alone), a pooled row where ``pooled`` is not wanted (listed).
            wanted = np.empty(out_w, np.uint8)
            pooled_wanted = np.empty(pool_w if pools else 0, np.uint8)
            finished = np.empty((rows if finishing and not output.size else 0, out_w, filters), np.float32)
            pooled_row = np.empty((pool_w if pools and not pooled.size else 0, filters), np.float32)
            # The changes of the input rows the band reaches, decoded once (the positions below read them nine
            # times): a pixel's changes are listed one after another, so they are taken up to four at a time, each
            # pixel's sums then loaded and stored once for four products (missing ones: zero changes).
            y_first = max(top_row * strides[0] - offsets[0], 0)
            y_last = min((end_row - 1) * strides[0] - offsets[0] + (kernel_h - 1) * dilation[0], height - 1)
            reach = max(y_last - y_first + 1, 0)
            starts = np.zeros(reach + 1, np.int64)  # each row's first group
            total = 0
            for r in range(reach):
                total += count[b, y_first + r]
            xs = np.empty(total, np.int64)
            cs = np.empty((total, 4), np.int64)
            ds = np.zeros((total, 4), np.float32)
            g = 0
            for r in range(reach):
                y = y_first + r
                listed, k = count[b, y], 0
                while k < listed:
                    x, c = split_index(index[b, y, k], channels, shift)
                    xs[g], cs[g, 0], ds[g, 0] = x, c, change[b, y, k]
                    cs[g, 1], cs[g, 2], cs[g, 3] = c, c, c
                    k += 1
                    for m in range(1, 4):
                        if k == listed:
                            break
                        next_x, next_c = split_index(index[b, y, k], channels, shift)
                        if next_x != x:
                            break
                        cs[g, m], ds[g, m] = next_c, change[b, y, k]
                        k += 1
                    g += 1
                starts[r + 1] = g
            for i in range(kernel_h):
                for j in range(kernel_w):
                    for oy in range(top_row, end_row):
                        y = oy * strides[0] - offsets[0] + i * dilation[0]
                        if y < 0 or y >= height:
                            continue
                        for g in range(starts[y - y_first], starts[y - y_first + 1]):
                            x, c, c1, c2, c3 = xs[g], cs[g, 0], cs[g, 1], cs[g, 2], cs[g, 3]
                            d, d1, d2, d3 = ds[g, 0], ds[g, 1], ds[g, 2], ds[g, 3]
                            shifted = x + offsets[1] - j * dilation[1]
                            if shifted < 0:
                                continue
                            if strides[1] == 1:  # no division in the common case
                                ox = shifted
                            elif shifted % strides[1]:
                                continue
                            else:
                                ox = shifted // strides[1]
                            if ox >= out_w:
                                continue
                            # Each pixel's sums started at its first product: zeroing them instead cost up to a
                            # tenth of the pass.
                            if hit[b, oy, ox]:
                                for f in range(filters):
                                    frame_sums[b, oy, ox, f] += (
                                        (d * kernel[i, j, c, f] + d1 * kernel[i, j, c1, f])
                                        + (d2 * kernel[i, j, c2, f] + d3 * kernel[i, j, c3, f]))
                            else:
                                hit[b, oy, ox] = 1
                                for f in range(filters):
                                    frame_sums[b, oy, ox, f] = (
                                        (d * kernel[i, j, c, f] + d1 * kernel[i, j, c1, f])
                                        + (d2 * kernel[i, j, c2, f] + d3 * kernel[i, j, c3, f]))
            for first in range(top_row, end_row, rows):
                last = min(first + rows, end_row)
                # The columns finished: every one, or those a product reached (in either row of a pooling window).
                wanted[:] = every
                for oy in range(first, last):
                    for ox in range(out_w):
                        if base.size:  # the accumulator set from a dense frame's sums first
                            for f in range(filters):
                                accumulator[b, oy, ox, f] = (base[b, oy, ox, f] + base_bias[f] if base_bias.size
                                                             else base[b, oy, ox, f])
                        if hit[b, oy, ox]:
                            hit[b, oy, ox] = 0
                            touched[b, oy, ox] = 1
                            wanted[ox] = 1
                            for f in range(filters):
                                accumulator[b, oy, ox, f] += frame_sums[b, oy, ox, f]
                if not finishing:  # (an empty ``output`` and ``pooled``: not wanted)
                    continue
                for px in range(pooled_wanted.size):
                    right = min(2 * px + 1, out_w - 1)
                    pooled_wanted[px] = wanted[2 * px] | wanted[right]
                    wanted[2 * px] = wanted[right] = pooled_wanted[px]
                for oy in range(first, last):
                    # The row finished while it is in cache, a stretch of wanted columns at a time.
                    values = output[b, oy] if output.size else finished[oy - first]
                    start = 0
                    while start < out_w:
                        if not wanted[start]:
                            start += 1
                            continue
                        end = start + 1
                        while end < out_w and wanted[end]:
                            end += 1
                        stretch = values[start:end]
                        if sums_bias.size:  # a dense frame's convolution: its bias added as TensorFlow's BiasAdd does
                            for ox in range(start, end):
                                for f in range(filters):
                                    values[ox, f] = sums[b, oy, ox, f] + sums_bias[f]
                            finish_values(stretch, stretch, relu, steps)
                        else:
                            finish_values(sums[b, oy, start:end], stretch, relu, steps)
                        if sent.size:
                            remember_values(stretch, sent[b, oy, start:end], thresholds)
                        for ox in range(start, end):
                            for s in range(side.shape[3]):  # (none without sides)
                                total = side_bias[s]
                                for f in range(filters):
                                    total += values[ox, f] * side_kernel[f, s]
                                side[b, oy, ox, s] = total
                        start = end
                    if listing and not pools:
                        band_listed += _list_into(values, into_value[b, oy], into_index[b, oy], into_change[b, oy],
                                                  into_count[b], oy, band_listed > into_limit, into_full, band, wanted)
                py = first // 2
                if pools and py < pool_h:
                    # A window's last row and column repeated where the output ends inside it: the max of what is there.
                    rows_of = output[b] if output.size else finished
                    top = first if output.size else 0
                    bottom = top + min(1, out_h - 1 - first)
                    row = pooled[b, py] if pooled.size else pooled_row
                    for px in range(pool_w):
                        if not pooled_wanted[px]:
                            continue
                        left = 2 * px
                        right = min(left + 1, out_w - 1)
                        for f in range(filters):
                            row[px, f] = max(max(rows_of[top, left, f], rows_of[top, right, f]),
                                             max(rows_of[bottom, left, f], rows_of[bottom, right, f]))
                    if listing:
                        band_listed += _list_into(row, into_value[b, py], into_index[b, py], into_change[b, py],
                                                  into_count[b], py, band_listed > into_limit, into_full, band,
                                                  pooled_wanted)

    return add_changes


class SparseConv:
    """Delta updates of a `keras.layers.Conv2D` (channels last, one group, "same" or "valid" padding).

    Its input changes come from a comparison of the input with the previous frame's, or, with ``source``, from
    the `ChangeList` a fused producer emitted (no comparison). With an ``epilogue`` (`delta_keras.runtime.fused`)
    the frame-wise layers after it run here, only at the outputs a change touched, and emit ``out`` (and
    ``pooled``): the change lists its consumers read. Without one, its output is handed on whole, through the
    ``finish`` layers (a ReLU and a per-frame quantiser) evaluated in the output pass.

    The kernel's weights are read once: rebuild the runtime after changing them.

    Args:
        layer: the convolution.
        frame_shape: its input frame ``(H, W, C)``.
        batch: frames per step.
        fan_out: ``(H, W, C)`` int64, the MACs each input element triggers (`delta_keras.frames.geometry.Stage.fan_out`).
        dense_above: share of changed input elements above which the layer is recomputed densely.
        counts: also count the ``zero_delta`` MACs of frames computed densely (a full comparison). Without it, a
            layer that compares its own input chooses between dense and sparse in the graph (`update` with
            ``handovers``): a frame it computes densely then makes no call into the kernel before its end.
        epilogue: the fused frame-wise layers after it, or None.
        finish: the elementwise layers after it evaluated in its output pass (`Epilogue` without state or
            pooling; its ``relu`` stands for the convolution's own activation too), or None.
        resync_every: after this many sparse updates in a row that multiplied changes, the layer is recomputed
            densely (0: never). A frame's products are summed in float32 and added to a float32 accumulator
            (`multiply_pass`), whose rounding collects over a stream; the dense recomputation clears it.
        resync_phase: the count of sparse updates the layer starts from after `reset`: layers started at
            different counts spread their recomputations over the frames.
        sides: 1x1 convolutions (stride 1, one group) that read the ``finish`` layers' output, computed in the output
            pass from each finished row (`delta_keras.runtime.fused.output_pass_chains`); only with ``finish``.
        in_run: a convolution of a `delta_keras.runtime.runs.ConvolutionRun`, which chooses dense or sparse in its
            kernel: the graph keeps no samples for it.
    """

    def __init__(self, layer: keras.layers.Conv2D, frame_shape: tuple, batch: int, fan_out, dense_above: float,
                 counts: bool = True, epilogue: Epilogue | None = None, finish: Epilogue | None = None,
                 resync_every: int = 0, resync_phase: int = 0, sides: list | tuple = (), in_run: bool = False):
        self.layer, self.dense_above, self.counts = layer, dense_above, counts
        self.resync_every, self.resync_phase = resync_every, resync_phase
        self.sparse_updates = resync_phase  # with changes, since the accumulator was last set densely
        height, width, channels = frame_shape
        self.fan_out = np.ascontiguousarray(np.asarray(fan_out), np.int64)
        self.strides = np.asarray(layer.strides, np.int64)
        self.dilation = np.asarray(layer.dilation_rate, np.int64)
        self.offsets = np.asarray([leading_padding(size, k, s, d, layer.padding) for size, k, s, d in zip(
            (height, width), layer.kernel_size, layer.strides, layer.dilation_rate)], np.int64)
        out_shape = tuple(layer.compute_output_shape((batch, *frame_shape)))
        self.previous = np.zeros((batch, *frame_shape), np.float32)
        # The accumulator holds the convolution plus its bias (added once, not every frame).
        self.bias = np.zeros(layer.filters, np.float32)  # (F,)
        if layer.use_bias:
            self.bias[:] = keras.ops.convert_to_numpy(layer.bias)
        self.accumulator = np.zeros(out_shape, np.float32) + self.bias
        # float32, as the layer's: the multiply pass sums its products in float32.
        self.kernel = np.ascontiguousarray(keras.ops.convert_to_numpy(layer.kernel), np.float32)
        self.multiply = multiply_pass(layer.filters)
        self.listed = ChangeList((batch, *frame_shape))  # the changes found by comparing frames
        self.unchanged = np.zeros_like(self.listed.count)  # no changes: the output pass alone (`_dense_pass`)
        self.source: ChangeList | None = None  # a fused producer's changes, read instead of comparing
        self.in_run = in_run
        self.touched = np.zeros(out_shape[:3], np.uint8)
        # The multiply pass's scratch: a frame's products summed per output pixel, and the pixels they reached.
        self.frame_sums = np.empty(out_shape, np.float32)
        self.hit = np.zeros(out_shape[:3], np.uint8)
        self.band_rows = band_rows(out_shape[1], numba.get_num_threads())
        # In a run (`delta_keras.runtime.runs`): the next convolution, whose input changes this one's output pass lists
        # (into its ``source``) while it `takes_lists`, and the bands of the pass that listed as many changes as make it
        # run densely (`multiply_pass`).
        self.next_in_run: SparseConv | None = None
        self.lists_full = np.zeros(-(-out_shape[1] // self.band_rows) * batch, np.uint8)
        # As the next convolution of a run: the producer's ``lists_full``, and whether it lists this frame's changes.
        # After a frame that ran densely for its many changes the layer compares its input itself (the producer hands
        # it on whole) and chooses on samples: a list of changes it would not use costs more than the samples.
        self.source_full: np.ndarray | None = None
        self.takes_lists = True
        self.epilogue, self.finish = epilogue, finish
        self.relu = finish is not None and finish.relu
        self.steps = finish.steps_of(QUANTIZE) if finish else np.zeros(0, np.float32)
        # A memory threshold in the output pass: its thresholds and its state, what it sent on last (output's shape).
        self.thresholds = finish.steps_of(MEMORY) if finish else np.zeros(0, np.float32)
        self.sent = np.zeros(out_shape, np.float32) if self.thresholds.size else EMPTY
        if sides and finish is None:
            raise ValueError(f"{layer.name}: side convolutions are computed in the output pass, which needs `finish`")
        self.sides = list(sides)
        # The sides' 1x1 kernels side by side, (filters, S), their biases (S,) and their outputs' shape.
        self.side_kernel = np.concatenate([np.zeros((layer.filters, 0)), *[
            keras.ops.convert_to_numpy(side.kernel)[0, 0] for side in self.sides]], 1).astype(np.float32)
        self.side_bias = np.concatenate([np.zeros(0), *[
            keras.ops.convert_to_numpy(side.bias) if side.use_bias else np.zeros(side.filters)
            for side in self.sides]]).astype(np.float32)
        self.side_shape = (*out_shape[:3], self.side_bias.size)
        # The side convolutions' sums, kept between frames: a pass that lists finishes only the pixels changes reached.
        self.side = np.zeros(self.side_shape, np.float32) if self.sides else EMPTY
        # Whether the next pass finishes every pixel (after `reset`: the pixels no change reaches are not yet finished).
        self.finish_every = True
        # With a pooling in the output pass (`output_pass_chains`), the pass hands on the pooled output alone.
        self.pools = finish is not None and finish.pool is not None
        self.output_shape = finish.pooled_shape(out_shape) if self.pools else out_shape
        self.out, self.pooled = epilogue.outputs(out_shape) if epilogue else (None, None)
        self.pooling = epilogue.pooling(out_shape) if epilogue else ()
        self.first = True  # the first frame since reset: the epilogue evaluates every output
        self.dense_macs = int(np.prod(out_shape[1:-1])) * self.kernel.size * batch
        # Wall time in the kernel's passes: listing the changes, multiplying them in, the fused epilogue, and a dense
        # frame computed inside a run (the convolution and its output pass).
        self.seconds = dict.fromkeys(SECONDS, 0.0)
        self.recomputed = None
        self.wholes: tuple = ()  # the epilogue outputs other layers read whole ("out", "pooled"), set by the runtime
        # The choice of dense or sparse: on about SAMPLES elements spread over the input, dense where more than
        # ``dense_above`` of them changed, in the kernel (`_sampled_changes`) or in the graph (`chooses_dense`).
        self.stride = max(self.previous.size // SAMPLES, 1)
        self.sample_count = len(range(0, self.previous.size, self.stride))  # elements compared
        self.dense_from = self._dense_from(dense_above)  # changed samples from which the layer runs densely
        # Without counting, a fused epilogue and a run, the graph keeps the samples of the previous input: a dense frame
        # then makes no call into the kernel before the frame's end (see `chooses_in_graph`).
        self.samples = (None if counts or epilogue or in_run else
                        tf.Variable(tf.zeros(self.sample_count), trainable=False))
        # The last update's choice and, where it ran sparse, the share of its input elements that changed (None: no
        # update since it was cleared); `delta_keras.runtime.calibration` times the kernel by it.
        self.last_update: tuple[bool, float] | None = None

    def use_dense_above(self, share: float) -> None:
        """Runs the layer densely from now on where more than ``share`` of its input changed: only a kernel that
        chooses dense or sparse itself (in a run); a choice in the graph is compiled with the frame's function."""
        if not self.in_run:
            raise ValueError(f"{self.layer.name}: only a convolution of a run chooses dense or sparse in its kernel")
        self.dense_above, self.dense_from = share, self._dense_from(share)

    def _dense_from(self, share: float) -> int:
        return int(share * self.sample_count) + 1

    def reset(self) -> None:
        self.previous = np.zeros_like(self.previous)
        self.accumulator[:] = self.bias
        self.sent[:] = 0
        self.recomputed = None
        self.first = self.finish_every = True
        self.sparse_updates = self.resync_phase
        if self.samples is not None:
            self.samples.assign(tf.zeros_like(self.samples))
        self.takes_lists = True
        for changes in (self.out, self.pooled, self.next_in_run.source if self.next_in_run else None):
            if changes is not None:
                changes.reset()

    def _changes(self, value, sampled: bool) -> tuple[int, bool, ChangeList]:
        """This frame's input changes, their MACs and whether the layer should run densely instead (many
        changes, or a re-sync due; ``sampled``: the graph found few changes already)."""
        resync = 0 < self.resync_every <= self.sparse_updates
        run_lists = self.in_run and self.source is not None
        if self.source is not None and (self.takes_lists or not run_lists):
            changes = self.source
            if run_lists:
                self.previous = changes.value  # (updated in place by the producer's output pass)
            if self.source_full is not None and self.source_full.any():  # partial lists: dense, uncounted
                self.takes_lists = False
                return 0, True, changes
            dense = changes.count.sum() > self.dense_above * changes.size
            self.takes_lists = not dense
            return _listed_fan_out(changes.index, changes.count, self.fan_out), resync or dense, changes
        many = not sampled and _sampled_changes(self.previous, value, self.stride) >= self.dense_from
        dense = resync or many
        macs = 0
        if not dense or self.counts:  # the full comparison lists the changes and counts their MACs
            listed = self.listed
            macs = _list_changes(self.previous, value, self.fan_out, listed.index, listed.change, listed.count)
        # ``value`` shares the memory of an (immutable) input tensor, whose buffer the reference kept here
        # holds: keeping it as the previous frame costs no copy, and TensorFlow does not reuse a buffer
        # that is still referenced.
        self.previous = value
        if run_lists:  # the producer's own new array, from which its output pass lists the next frame's changes
            self.source.value, self.takes_lists = value, not many
        return macs, dense, self.listed

    def _sparse(self, value, sampled=False):
        started = time.perf_counter()
        macs, dense, changes = self._changes(value, sampled)
        self.last_update = (bool(dense), 0.0 if dense else float(changes.count.sum()) / changes.size)
        # Only an update that multiplied something adds rounding: a still scene needs no re-sync.
        self.sparse_updates = 0 if dense else self.sparse_updates + (macs > 0)
        listed = time.perf_counter()
        # A fused layer hands its outputs on as lists (and copies of those that layers read whole); otherwise the
        # accumulator rounded to float32 (a new array, written by the multiply pass row by row). On a dense frame
        # the caller computes the output, and empty arrays save those copies.
        output = side = EMPTY
        if not dense:
            # The last dense output (and a bias to add), kept uncopied until now: the pass copies it row by row.
            base, self.recomputed = self.recomputed or (EMPTY, NO_BIAS), None
            output, side = self._multiply(changes.index, changes.change, changes.count, base=base)
        multiplied = time.perf_counter()
        if not dense:
            self._run_epilogue(every=False)
        self.seconds["changes"] += listed - started
        self.seconds["multiply"] += multiplied - listed
        self.seconds["epilogue"] += time.perf_counter() - multiplied
        wholes = [EMPTY] * len(self.wholes) if dense else self._wholes()
        # A dense frame of a layer reading a producer's list needs that input whole (a copy: it changes in place).
        whole = tensor_copy(self.source.value) if dense and self.source is not None and not self.in_run else EMPTY
        return (np.int64(macs), np.bool_(dense), output, side, whole, *wholes)

    def _multiply(self, index, change, count, sums=None, sums_bias=NO_BIAS,
                  base: tuple = (EMPTY, NO_BIAS)) -> tuple[np.ndarray, np.ndarray]:
        """The multiply pass of changes into the accumulator (first set to ``base``: a dense frame's sums and a bias,
        where its output came from them); returns the output the pass finished from the accumulator or from ``sums``
        plus ``sums_bias`` (unless a fused epilogue hands it on as lists: empty) and the side convolutions' sums (a
        copy; empty without sides)."""
        consumer = self.next_in_run
        into = consumer.source if consumer is not None and consumer.takes_lists else None
        output = tensor_array(self.output_shape) if self.epilogue is None and into is None else EMPTY
        # Listing, the pass finishes only the pixels the changes reached (the others are as the list's value and the
        # sides hold them), but every pixel of a new output and of a dense frame.
        every = into is None or sums is not None or self.finish_every
        self.finish_every = False
        listed = NOT_LISTED if into is None else (
            into.value, into.index, into.change, into.count, int(consumer.dense_above * into.size), self.lists_full)
        self.multiply(self.accumulator, self.kernel, index, change, count, self.strides, self.offsets, self.dilation,
                      self.touched, self.relu, self.steps, self.sent, self.thresholds, EMPTY if self.pools else output,
                      self.side_kernel, self.side_bias, self.side, output if self.pools else EMPTY,
                      _read_only(self.accumulator if sums is None else sums), sums_bias, _read_only(base[0]), base[1],
                      self.frame_sums, self.hit, self.band_rows, self.pools, every, *listed)
        return output, tensor_copy(self.side) if self.sides else EMPTY

    def update_arrays(self, value: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
        """`update` on arrays, inside a `delta_keras.runtime.runs.ConvolutionRun` (no fused epilogue): the layer
        chooses dense or sparse itself, and computes a dense frame too, by `_dense_pass`.

        Returns:
            ``(output, side, zero_delta MACs, MACs executed)``: the output pass's output and its side convolutions'
            sums (empty without sides), as `_sparse` returns them.
        """
        macs, dense, output, side, *_ = self._sparse(value)
        if dense:
            output, side = self._dense_pass(value if self.source is None else self.source.value)
        return output, side, int(macs), self.dense_macs if dense else int(macs)

    def _dense_pass(self, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A dense frame on arrays: the convolution by TensorFlow (an eager op: a compiled function called from
        inside a run's call would wait for TensorFlow's one inter-op thread, which runs that call), its bias added
        and the frame finished by the output pass without changes (the ReLU, quantiser, pooling and side
        convolutions of a sparse frame, from the same float32 values; eagerly, the BiasAdd TensorFlow fuses into a
        graph's convolution is an op and a pass of its own), and kept for the accumulator as `_store` keeps a dense
        frame's."""
        started = time.perf_counter()
        # A view of the tensor's memory, read-only (the multiply pass writes nothing to it).
        convolved = np.asarray(_convolved(self.layer, value))
        self.recomputed = (convolved, self.bias)
        finished = self._multiply(self.listed.index, self.listed.change, self.unchanged, convolved, self.bias)
        self.seconds["dense"] += time.perf_counter() - started
        return finished

    def remember(self, value: np.ndarray) -> np.ndarray:
        """The output pass's memory threshold on a whole activated output ``value`` that TensorFlow computed (a frame
        run densely as a whole): the values sent, its state kept here as on any other frame."""
        values = np.array(value, np.float32)  # a copy: TensorFlow's buffer is read-only
        remember_values(values.reshape(-1, values.shape[-1]), self.sent.reshape(-1, self.sent.shape[-1]),
                        self.thresholds)
        return values

    def _run_epilogue(self, every: bool) -> None:
        if self.epilogue is not None:
            self.epilogue.run(self.accumulator, self.touched, every or self.first, self.out, self.pooled, self.pooling)
            self.first = False

    def _recompute(self, value, whole, finish_dense, handovers: list | None = None) -> list:
        """The layer's output computed densely, its state handed to the kernel (``whole``: a fused producer's
        list as a whole input, else ``value``): at once, or with ``handovers``, appended to it for `keep` at the
        end of the frame (a hand-over in the middle of a frame holds up the layers after it)."""
        source = value if self.source is None else tf.ensure_shape(whole, self.listed.value.shape)
        full = self.summed(source)
        if self.epilogue is not None:
            return tf.numpy_function(self._take_dense, [full], [tf.int64, *[tf.float32] * len(self.wholes)])
        output = finish_dense(self.activate(full)) if self.finish else self.activate(full)
        outputs = [output, *([self.side_sums(output)] if self.sides else [])]
        if self.pools:
            outputs[0] = tf.nn.max_pool2d(output, 2, 2, self.finish.pool_padding.upper())
        if handovers is not None:
            return [*outputs, full]
        with tf.control_dependencies([self.keep([self], [[source, full]])]):
            return [tf.identity(tensor) for tensor in outputs]

    def _update(self, value, finish_dense, sampled: bool = False):
        """The kernel's update (sparse, or dense where it decides so; ``sampled``: the graph found few changes):
        ``(outputs, MACs, MACs executed)``."""
        wholes_types = [tf.float32] * len(self.wholes)
        macs, dense, summed, side, whole, *wholes = tf.numpy_function(
            self._sparse, [value, sampled], [tf.int64, tf.bool, tf.float32, tf.float32, tf.float32, *wholes_types])

        def sparse():
            if self.epilogue is not None:
                return [macs, *wholes]
            output = tf.ensure_shape(summed, self.output_shape)
            sides = [tf.ensure_shape(side, self.side_shape)] if self.sides else []
            return [output if self.finish else self.activate(output), *sides]

        outputs = tf.cond(dense, lambda: self._recompute(value, whole, finish_dense), sparse)
        executed = tf.where(dense, tf.constant(self.dense_macs, tf.int64), macs)
        return outputs, macs, executed

    def update(self, value, finish_dense=None, handovers: list | None = None):
        """Brings the layer's output up to date with its input ``value`` (B, H, W, C; with a ``source``, any
        tensor the producer's update returned, for the order of the steps). With an output-pass epilogue,
        ``finish_dense`` evaluates its layers in TensorFlow on a densely computed frame (the activated output,
        shape kept): the layers themselves, as the dense model runs them. With ``handovers`` (a list, one per
        frame), a layer that `chooses_in_graph` chooses dense or sparse there (`chooses_dense`) and appends
        ``(self, value, summed)`` to it for one `keep` at the end of the frame (``summed`` the dense output, empty
        where the layer ran sparse and kept its state itself): a call into the kernels in the middle of a frame
        holds up the layers after it (docs/runtime.md).

        Returns:
            ``(output, zero_delta MACs, MACs executed)`` as tensors. With an epilogue, ``output`` is a tuple: a
            token (int64) that orders the steps of the layers reading its lists, then the epilogue's outputs named
            in ``wholes`` (``"out"``, ``"pooled"``) as whole tensors, for the layers that read them whole. With
            ``sides``, ``output`` is a list: the layer's output, then each side convolution's (`side_outputs`).
        """
        if handovers is None or not self.chooses_in_graph:
            outputs, macs, executed = self._update(value, finish_dense)
        else:
            def sparse():
                outputs, macs, executed = self._update(value, finish_dense, sampled=True)
                return [*outputs, tf.zeros(0), macs, executed]

            *outputs, full, macs, executed = tf.cond(
                self.chooses_dense(value),
                lambda: [*self._recompute(value, None, finish_dense, handovers), tf.constant(0, tf.int64),
                         tf.constant(self.dense_macs, tf.int64)], sparse)
            handovers.append((self, value, full))
        if self.epilogue is None:
            return (self.side_outputs(outputs) if self.sides else outputs[0]), macs, executed
        shapes = {"out": self.out.value.shape, "pooled": None if self.pooled is None else self.pooled.value.shape}
        token, *wholes = outputs
        return (token, *[tf.ensure_shape(w, shapes[name]) for name, w in zip(self.wholes, wholes)]), macs, executed

    @property
    def chooses_in_graph(self) -> bool:
        """Whether the graph chooses dense or sparse for this layer (`chooses_dense`): without ``counts`` (which
        needs the kernel's full comparison), for a layer that compares its own input (a list's reader counts the
        list) and has no fused epilogue (whose dense frame runs in the kernel); the others choose in the kernel."""
        return self.samples is not None and self.source is None

    def chooses_dense(self, value):
        """Whether the share of changed elements among the samples of ``value`` (B, H, W, C) kept from the
        previous frame is above ``dense_above`` (where `chooses_in_graph`); the samples of ``value`` kept in their place
        (after the comparison: a function's variable reads and writes run in program order)."""
        samples = tf.reshape(value, [-1])[::self.stride]
        changed = tf.reduce_sum(tf.cast(samples != self.samples, tf.int32))
        self.samples.assign(samples)
        return changed >= self.dense_from

    def _wholes(self) -> list:
        """Copies of the epilogue's outputs that layers read whole (the states change in place)."""
        return [tensor_copy(getattr(self, name).value) for name in self.wholes]

    def _take_dense(self, summed):
        """A dense frame of a fused layer: the accumulator set from the dense ``summed``, the epilogue run
        everywhere."""
        started = time.perf_counter()
        self.accumulator[:] = summed
        self.recomputed = None
        self._run_epilogue(every=True)
        self.seconds["epilogue"] += time.perf_counter() - started
        return (np.int64(0), *self._wholes())

    def summed(self, value):
        """The convolution plus bias, densely."""
        return _summed(self.layer, value)

    def side_sums(self, output):
        """The side convolutions' sums (bias included) on a densely computed ``output`` of the output pass,
        concatenated on channels."""
        return tf.concat([_summed(side, output) for side in self.sides], -1)

    def side_outputs(self, outputs: list) -> list:
        """``[output, side]`` (the side convolutions' sums, concatenated on channels) as ``[output, *each side's
        activated output]``."""
        output, side = outputs
        sums = tf.split(side, [layer.filters for layer in self.sides], axis=-1)
        return [output, *[_activate(layer, summed) for layer, summed in zip(self.sides, sums)]]

    def activate(self, summed):
        return _activate(self.layer, summed)

    def handover(self, value, summed, out=None, pooled=None, side=None) -> list:
        """The tensors `keep` hands this kernel after a frame computed densely: its input, the dense ``summed``
        output and, with an epilogue, the epilogue's outputs as the dense layers computed them; with ``side`` (a
        frame computed as a whole), the side convolutions' sums (before their activation, concatenated)."""
        return [value, summed, *([out] if self.epilogue else []), *([pooled] if self.pooled is not None else []),
                *([side] if side is not None else [])]

    def _store(self, arrays: list) -> None:
        """A frame computed densely (`handover`'s tensors, as arrays): the kernel's state from now on. The arrays
        share TensorFlow's memory, unless a copy is named: a buffer of a tensor nothing reads after this frame becomes
        state the kernel updates in place, at no copy and no pass over it on the next frame (TensorFlow frees a
        buffer only once nothing references it)."""
        value, summed, *states = arrays
        if summed.size == 0:  # a layer that ran sparse on this frame: its update kept its state
            return
        self.previous = value
        # In a run, the input is what the producer's output pass computed (its ReLU, quantiser or pooling: a new
        # tensor), read by this convolution and the producer's sides alone: the list's value, updated in place.
        if self.in_run and self.source is not None:
            self.source.value, self.takes_lists = value, True
        if self.finish is not None:
            # The output-pass layers read the sums and make new tensors of them: nothing else reads them.
            self.accumulator, self.recomputed = summed, None
            if states:
                self.side[:] = states[0]  # a copy: the side outputs may be handed back to the caller
            # (Without the sides' sums, a dense frame chosen in the graph: the next pass lists nothing, finishes all.)
            self.finish_every = bool(self.sides) and not states
            return
        self.finish_every = True
        if self.epilogue is None:
            self.recomputed = (summed, NO_BIAS)
            return
        self.accumulator[:] = summed
        self.recomputed, self.first = None, False
        for changes, state in zip((self.out, self.pooled), states):
            changes.value[:] = np.reshape(state, changes.value.shape)

    @staticmethod
    def keep(kernels: list, handovers: list):
        """One op that hands each kernel what `handover` listed for it (``handovers``, in the order of
        ``kernels``), of a frame computed densely as a whole: one call for all."""
        sizes = [len(tensors) for tensors in handovers]

        def store(*arrays):
            start = 0
            for kernel, size in zip(kernels, sizes):
                kernel._store(list(arrays[start:start + size]))
                start += size
            return np.int64(0)

        return tf.numpy_function(store, [t for tensors in handovers for t in tensors], tf.int64)


class GatheredDense:
    """Delta updates of a `keras.layers.Dense` on vectors ``(B, N)``: the kernel rows of changed inputs only.

    Args: as `SparseConv` (``fan_out`` and ``counts`` unused: a vector's changes are always counted, for free).
    """

    def __init__(self, layer: keras.layers.Dense, frame_shape: tuple, batch: int, fan_out, dense_above: float,
                 counts: bool = True):
        self.layer, self.dense_above = layer, dense_above
        self.previous = tf.Variable(tf.zeros((batch, *frame_shape)), trainable=False)
        # float64: exact changes and products, no drift over a stream, and no re-sync (a vector's bytes are few).
        self.accumulator = tf.Variable(tf.zeros((batch, layer.units), tf.float64), trainable=False)
        self.kernel = tf.constant(keras.ops.convert_to_numpy(layer.kernel).astype(np.float64))

    def reset(self) -> None:
        self.previous.assign(tf.zeros_like(self.previous))
        self.accumulator.assign(tf.zeros_like(self.accumulator))

    def update(self, value):
        """As `SparseConv.update`."""
        change = tf.cast(value, tf.float64) - tf.cast(self.previous, tf.float64)
        self.previous.assign(value)
        nonzero = tf.math.count_nonzero(change)
        macs = nonzero * self.layer.units
        changed = tf.reduce_any(change != 0, axis=0)
        index = tf.where(changed)[:, 0]

        def sparse():
            rows = tf.gather(self.kernel, index)
            self.accumulator.assign_add(tf.matmul(tf.gather(change, index, axis=1), rows))
            return tf.cast(tf.size(index) * tf.shape(value)[0] * self.layer.units, tf.int64)

        def dense():
            self.accumulator.assign(tf.cast(tf.matmul(value, self.layer.kernel), tf.float64))
            return tf.cast(tf.size(value) * self.layer.units, tf.int64)

        share = tf.reduce_mean(tf.cast(changed, tf.float32))
        executed = tf.cond(share > self.dense_above, dense, sparse)
        output = tf.cast(self.accumulator.value(), tf.float32)
        if self.layer.use_bias:
            output = output + self.layer.bias
        return _activate(self.layer, output), macs, executed


def _read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view of ``array``: numba compiles a kernel once per argument type, and a writable array is another
    type than a read-only one (a dense frame's convolution, TensorFlow's memory). One type for the multiply pass's
    ``sums`` means one compilation, at the first frame, not a second one of several seconds in the middle of a stream
    (HED's 256-filter convolutions: 6.8 s at the first dense frame of one in a run)."""
    view = array.view()
    view.flags.writeable = False
    return view


def _activate(layer, x):
    return layer.activation(x) if layer.activation is not None else x


def _convolved(layer, value):
    """A convolution without its bias, densely: TensorFlow's op (a `Conv2D` of one group, channels last), not the
    layer's `keras.ops` call, whose dispatch cost 0.5 ms a call eagerly (`SparseConv._dense_pass`)."""
    return tf.nn.convolution(value, layer.kernel, layer.strides, layer.padding.upper(), dilations=layer.dilation_rate)


def _summed(layer, value):
    """A convolution plus bias, densely: one op in a graph (TensorFlow fuses a BiasAdd into the convolution)."""
    full = _convolved(layer, value)
    return tf.nn.bias_add(full, layer.bias) if layer.use_bias else full


def band_rows(height: int, threads: int) -> int:
    """The output rows of a thread's band in the multiply pass (`multiply_pass`): its share of the ``height`` rows,
    an even number (a 2x2 pooling in the output pass takes rows two at a time)."""
    share = -(-height // max(threads, 1))
    return share + share % 2


def break_even(layer, frame_shape: tuple) -> float:
    """The share of changed input elements above which ``layer`` on frames of ``frame_shape`` (batch excluded) is
    expected to run faster densely than with its delta kernel: the share at which

        sparse time / dense time = ELEMENT_COST * (input + output elements) / dense MACs + SPARSE_MAC_COST * share

    reaches 1, within [0, 1]. It is 0 (dense whenever anything changed) where listing and finishing alone cost as
    much as the dense layer, as for a convolution on 3 colour channels, and 0.19-0.24 for HED's other 3x3
    convolutions. The model is fitted to `SparseConv` against TensorFlow's convolution on 2 cores; `GatheredDense`
    uses it too, unmeasured."""
    output_shape = tuple(layer.compute_output_shape((1, *frame_shape)))[1:]
    dense_macs = np.prod(output_shape[:-1]) * np.prod(layer.kernel.shape)
    setup = ELEMENT_COST * (np.prod(frame_shape) + np.prod(output_shape)) / dense_macs
    return float(np.clip((1.0 - setup) / SPARSE_MAC_COST, 0.0, 1.0))


def kernel_class(layer, frame_shape: tuple, min_fan_out: int = 0) -> type | None:
    """The delta kernel class for a MAC layer on frames of ``frame_shape`` (`SparseConv`, `GatheredDense`), or None
    where the layer runs densely every frame (depthwise, separable, transposed, grouped, 1D/3D convolutions; dense
    layers on feature maps; convolutions when numba is not installed; convolutions whose input elements each
    trigger fewer than ``min_fan_out`` MACs, kernel height x width x filters / strides, where listing the changes
    alone costs more than the dense layer)."""
    kind = registry.layer_kind(layer)
    kernel = kind.runtime_kernel if kind is not None else None
    if kernel == "sparse_conv2d" and numba is not None and layer.groups == 1 and (
            layer.data_format == "channels_last" and layer.padding in ("same", "valid")):
        fan_out = np.prod(layer.kernel_size) * layer.filters / np.prod(layer.strides)
        return SparseConv if fan_out >= min_fan_out else None
    if kernel == "gathered_dense" and len(frame_shape) == 1:
        return GatheredDense
    return None


def delta_kernel(layer, frame_shape: tuple, batch: int, fan_out, dense_above: float | None, counts: bool = True,
                 epilogue: Epilogue | None = None, min_fan_out: int = 0, finish: Epilogue | None = None,
                 resync_every: int = 0, resync_phase: int = 0, sides: list | tuple = (), in_run: bool = False):
    """The delta kernel (`kernel_class`) for a MAC layer, or None where it runs densely every frame; ``dense_above``
    None: the layer's `break_even`."""
    kernel = kernel_class(layer, frame_shape, min_fan_out)
    if kernel is not None and dense_above is None:
        dense_above = break_even(layer, frame_shape)
    if kernel is SparseConv:
        return SparseConv(layer, frame_shape, batch, fan_out, dense_above, counts, epilogue, finish, resync_every,
                          resync_phase, sides, in_run)
    return kernel(layer, frame_shape, batch, fan_out, dense_above, counts) if kernel else None
