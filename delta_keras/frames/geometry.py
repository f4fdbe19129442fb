"""What one layer computes on one frame, as linear *stages* with exact fan-out maps.

A MAC layer is a chain of linear stages (one for a convolution or a dense layer; depthwise then
pointwise for a separable convolution; input and recurrent products for an LSTM/GRU). Each stage
holds its kernel and the layer's own linear operation with the bias off, so padding, stride,
dilation, groups and depthwise multipliers come from the layer itself, never re-implemented.

Counting rests on linearity. NeuroBench counts the MACs of a binary input mask ``m`` as
``sum(op(m, K))`` with a binary kernel ``K`` (ones, or the weight's nonzero mask). As a function of
``m`` this is linear, so it equals ``<m, F>`` where ``F = d sum(op(x, K)) / dx`` is the *fan-out map*:
how many MACs each input element triggers, with the layer's exact geometry. ``F`` is computed once
per layer (one backward pass of the layer's own op on one frame); counting a clip then costs one
multiply-and-sum over its masks instead of a convolution per policy.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from delta_keras import registry


class UncountableLayer(ValueError):
    """Raised for a layer whose MACs the simulator cannot count; the message says why."""


@dataclasses.dataclass(frozen=True)
class Granularity:
    """The unit a sparse accelerator skips: a block of ``channels`` channels × a ``tile`` of positions.

    A block's MACs are skipped only if every entry in it is zero; one nonzero entry charges the whole
    block (every entry's fan-out). ``Granularity()`` is per element.

    Args:
        channels: consecutive channels per block (a vector unit of ``channels`` lanes).
        tile: positions per block along each non-channel axis of a frame (an int for all axes, or a
            tuple, e.g. ``(4, 4)`` for 4×4 spatial tiles).
    """

    channels: int = 1
    tile: int | tuple[int, ...] = 1

    def __post_init__(self):
        tile = (self.tile,) if isinstance(self.tile, int) else tuple(self.tile)
        if self.channels < 1 or min(tile) < 1:
            raise ValueError(f"Granularity: channels and tile sizes must be >= 1, got {self}")

    @classmethod
    def parse(cls, spec: str | Granularity) -> Granularity:
        """Reads ``"element"``, ``"vector:N"`` (N channels) or ``"tile:H[xW...]"`` (spatial tile)."""
        if isinstance(spec, Granularity):
            return spec
        kind, _, size = spec.partition(":")
        try:
            if kind == "element" and not size:
                return cls()
            if kind == "vector":
                return cls(channels=int(size))
            if kind == "tile":
                return cls(tile=tuple(int(s) for s in size.split("x")))
        except ValueError:
            pass
        raise ValueError(f"granularity must be 'element', 'vector:N' or 'tile:H[xW]', got {spec!r}")

    def __str__(self) -> str:
        parts = [f"vector:{self.channels}"] if self.channels > 1 else []
        tile = (self.tile,) if isinstance(self.tile, int) else self.tile
        if max(tile) > 1:
            parts.append("tile:" + "x".join(map(str, tile)))
        return "+".join(parts) or "element"

    def blocks(self, frame_rank: int, channel_axis: int) -> tuple[int, ...]:
        """Block size along each axis of a frame of rank ``frame_rank``."""
        tile = (self.tile,) if isinstance(self.tile, int) else self.tile
        spatial = frame_rank - 1
        tile = tile * spatial if len(tile) == 1 else tile
        if spatial and len(tile) != spatial:
            raise ValueError(f"granularity {self} has a {len(tile)}-D tile for frames with {spatial} spatial axes")
        sizes = list(tile[:spatial])
        sizes.insert(channel_axis % frame_rank, self.channels)
        return tuple(sizes)


def block_any(mask, blocks: tuple[int, ...]):
    """Spreads each nonzero of a 0/1 mask ``(N, T, *frame)`` over its whole block (blocks along frame axes)."""
    if all(b == 1 for b in blocks):
        return mask
    shape = mask.shape
    frame = shape[2:]
    padded = [-(-d // b) * b for d, b in zip(frame, blocks)]
    x = tf.pad(mask, [[0, 0], [0, 0]] + [[0, p - d] for d, p in zip(frame, padded)])
    split = [shape[0], shape[1]]
    for p, b in zip(padded, blocks):
        split += [p // b, b]
    x = tf.reshape(x, split)
    x = tf.reduce_max(x, axis=[3 + 2 * i for i in range(len(frame))], keepdims=True)
    x = tf.reshape(tf.broadcast_to(x, split), [shape[0], shape[1], *padded])
    return x[(slice(None), slice(None), *(slice(0, d) for d in frame))]


@dataclasses.dataclass
class Stage:
    """One linear stage of a MAC layer on one frame.

    Attributes:
        name: ``""`` for a single-stage layer, else e.g. ``"depthwise"``, ``"recurrent"``.
        kernel: the stage's weights (NumPy); their zeros are skipped by the weight policies.
        apply: ``apply(frames, kernel)``: the layer's own linear operation on a batch of frames, no bias.
        frame_shape: shape of one input frame of this stage.
        channel_axis: the channel axis of a frame (for vector granularity).
        source: maps the layer's input sequence ``(N, T, ...)`` to this stage's input sequence
            (``None``: the layer's input itself).
    """

    name: str
    kernel: np.ndarray
    apply: Callable
    frame_shape: tuple[int, ...]
    channel_axis: int = -1
    source: Callable | None = None
    _fan_out: dict = dataclasses.field(default_factory=dict, repr=False)
    _fan_out_rows: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of the stage's output for one frame (static: no computation)."""
        spec = self.apply(keras.KerasTensor((1, *self.frame_shape)), self.kernel)
        return tuple(spec.shape[1:])

    def dense_macs(self) -> int:
        """MACs per frame of a dense engine, padding taps included (the published convention)."""
        out = self.output_shape
        return math.prod(out) * self.kernel.size // out[self.channel_axis]

    def weight_macs(self) -> int:
        """MACs per frame when only zero weights are skipped (every activation, padding taps, charged)."""
        out = self.output_shape
        return math.prod(out) * int(np.count_nonzero(self.kernel)) // out[self.channel_axis]

    def fan_out(self, skip_zero_weights: bool):
        """Exact MACs each input element of a frame triggers (int64 tensor of ``frame_shape``).

        Computed as the gradient of ``sum(apply(x, K))`` with ``K`` all ones or the weight's nonzero
        mask: by linearity ``sum(apply(m, K)) == sum(m * fan_out)`` for every 0/1 mask ``m``.
        """
        if skip_zero_weights not in self._fan_out:
            kernel = (self.kernel != 0) if skip_zero_weights else np.ones_like(self.kernel)
            gradient = gradient_of_sum(self.apply, (1, *self.frame_shape), kernel)
            # int64 keeps the sums over a clip exact.
            self._fan_out[skip_zero_weights] = tf.cast(np.round(gradient[0]), "int64")
        return self._fan_out[skip_zero_weights]

    def fan_out_rows(self, skip_zero_weights: bool):
        """`fan_out` as the weights `frame_counts` multiplies a mask's rows by: ``(rows, last axis)``, float32
        where a row's sum stays below 2**24 (exact), else float64; made once, an eager constant that a compiled
        count captures by reference and an eager one reuses."""
        if skip_zero_weights not in self._fan_out_rows:
            fan_out = self.fan_out(skip_zero_weights).numpy()
            rows = np.reshape(fan_out, (-1, fan_out.shape[-1]))
            dtype = "float32" if rows.sum(axis=-1).max() < 2**24 else "float64"
            with tf.init_scope():
                self._fan_out_rows[skip_zero_weights] = tf.constant(rows, dtype)
        return self._fan_out_rows[skip_zero_weights]


def gradient_of_sum(apply: Callable, shape: tuple[int, ...], kernel: np.ndarray) -> np.ndarray:
    """``d sum(apply(x, kernel)) / dx`` at ``x = 1`` (NumPy), with the autodiff of Keras' backend, since
    ``apply`` is the layer's own operation and runs on that backend's tensors."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax  # noqa: PLC0415 (the backend's autodiff: imported where it is the backend)

        def total(x):
            return jax.numpy.sum(apply(x, kernel.astype("float32")))

        return np.asarray(jax.grad(total)(np.ones(shape, "float32")))
    if backend == "torch":
        import torch  # noqa: PLC0415

        x = torch.ones(shape, dtype=torch.float64, requires_grad=True)
        (gradient,) = torch.autograd.grad(apply(x, torch.tensor(kernel, dtype=torch.float64)).sum(), x)
        return gradient.numpy()
    if backend != "tensorflow":
        raise UncountableLayer(f"the simulator needs the tensorflow, jax or torch backend, not {backend!r}")
    # float64: entries are small integers, exact either way (float32 too, below 2**24), but float64 keeps
    # TensorFlow off oneDNN, whose filter gradient (computed by the tape though unused) crashes the process
    # on some 1x1 stride-2 convolutions (TF 2.21, e.g. 16x16x8 -> 8x8x16).
    x = tf.ones(shape, "float64")
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(apply(x, tf.constant(kernel, "float64")))
    return tape.gradient(total, x).numpy()


def _value(weight) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(weight), "float32")


def _channel_axis(layer) -> int:
    return 0 if getattr(layer, "data_format", "channels_last") == "channels_first" else -1


def _conv_stages(layer, frame_shape):
    if layer.padding == "causal":
        # Conv1D pads on the left itself before a "valid" convolution.
        left = layer.dilation_rate[0] * (layer.kernel_size[0] - 1)
        pad = [[0, 0], [0, 0], [left, 0]] if layer.data_format == "channels_first" else [[0, 0], [left, 0], [0, 0]]

        def apply(x, kernel):
            return ops.conv(ops.pad(x, pad), kernel, list(layer.strides), "valid", layer.data_format, layer.dilation_rate)
    else:
        apply = layer.convolution_op
    return [Stage("", _value(layer.kernel), apply, frame_shape, _channel_axis(layer))]


def _depthwise_apply(layer):
    def apply(x, kernel):
        return ops.depthwise_conv(x, kernel, layer.strides, layer.padding, layer.data_format, layer.dilation_rate)

    return apply


def _depthwise_stages(layer, frame_shape):
    return [Stage("", _value(layer.kernel), _depthwise_apply(layer), frame_shape, _channel_axis(layer))]


def _separable_stages(layer, frame_shape):
    axis = _channel_axis(layer)
    depthwise = Stage("depthwise", _value(layer.depthwise_kernel), _depthwise_apply(layer), frame_shape, axis)

    def pointwise(x, kernel):
        return ops.conv(x, kernel, 1, "valid", layer.data_format)

    def source(sequence):
        frames = ops.reshape(sequence, (-1, *sequence.shape[2:]))
        out = depthwise.apply(frames, depthwise.kernel)
        return ops.reshape(out, (*sequence.shape[:2], *out.shape[1:]))

    return [depthwise, Stage("pointwise", _value(layer.pointwise_kernel), pointwise, depthwise.output_shape, axis,
                             source)]


def _dense_stages(layer, frame_shape):
    return [Stage("", _value(layer.kernel), ops.matmul, frame_shape)]


def _recurrent_stages(layer, frame_shape):
    if layer.go_backwards or getattr(layer, "stateful", False):
        raise UncountableLayer("go_backwards or stateful recurrent layers are not supported")
    cell = layer.cell
    # A copy returning the whole hidden sequence gives the recurrent input h[t-1] of every step.
    sequence_layer = layer.__class__.from_config({**layer.get_config(), "return_sequences": True, "return_state": False})
    sequence_layer.build((None, None, *frame_shape))
    sequence_layer.set_weights(layer.get_weights())

    def previous_hidden(sequence):
        hidden = sequence_layer(sequence)
        # The state before the first step is zero (Keras' default initial state).
        return ops.concatenate([ops.zeros_like(hidden[:, :1]), hidden[:, :-1]], axis=1)

    return [
        Stage("input", _value(cell.kernel), ops.matmul, frame_shape),
        Stage("recurrent", _value(cell.recurrent_kernel), ops.matmul, (cell.units,), source=previous_hidden),
    ]


def _gru_stages(layer, frame_shape):
    if not layer.reset_after:
        raise UncountableLayer("GRU(reset_after=False) multiplies the reset gate before the recurrent kernel")
    return _recurrent_stages(layer, frame_shape)


# The builders the registry names in each Keras MAC layer's ``stages`` (delta_keras.registry).
STAGE_BUILDERS = {"conv": _conv_stages, "depthwise": _depthwise_stages, "separable": _separable_stages,
                  "dense": _dense_stages, "recurrent": _recurrent_stages, "gru": _gru_stages}


def frame_counts(mask, fan_out_rows=None):
    """Per-sample, per-frame sums of a 0/1 float32 mask ``(N, T, *frame)``, each entry weighted by its
    fan-out if given (`Stage.fan_out_rows`): ``(N, T)`` float64, exact.

    Sums along a frame's last axis run in float32 (fast) when they cannot exceed 2**24, where float32
    integers stop being exact, and in float64 otherwise; the rest of the sum runs in float64.
    """
    rows = tf.reshape(mask, (*mask.shape[:2], -1, mask.shape[-1]))
    if fan_out_rows is not None:
        rows = tf.cast(rows, fan_out_rows.dtype) * fan_out_rows
    return tf.reduce_sum(tf.cast(tf.reduce_sum(rows, axis=-1), "float64"), axis=2)


def changed_macs(stages: list[Stage], frame, previous):
    """The ``zero_delta`` MACs of one frame: per stage, the fan-outs of the entries of its input that differ
    from the previous frame's, summed over the batch (int64). ``frame`` and ``previous``: the layer's input,
    one frame per sample ``(B, *frame_shape)``. A later stage's input (a separable convolution's pointwise
    half) is computed from both frames by the stage's ``source``, as `count_macs` takes it from the clip."""
    total = tf.constant(0, tf.int64)
    for stage in stages:
        now, before = frame[:, None], previous[:, None]
        if stage.source is not None:
            now, before = stage.source(now), stage.source(before)
        changed = tf.cast(tf.not_equal(now, before), "float32")
        total += tf.cast(tf.reduce_sum(frame_counts(changed, stage.fan_out_rows(False))), tf.int64)
    return total


def is_mac_layer(layer) -> bool:
    """Whether ``layer`` (unwrapped) multiplies activations by weights: a ``"mac"`` layer of the registry, or
    any other layer holding a ``kernel`` weight (listed as uncounted rather than silently dropped)."""
    kind = registry.layer_kind(layer)
    return (kind is not None and kind.role == "mac") or any(
        "kernel" in w.path.rsplit("/", 1)[-1] for w in getattr(layer, "weights", ())
    )


def stages(layer, frame_shape: tuple[int, ...]) -> list[Stage]:
    """The linear stages of a MAC layer (unwrapped) on frames of ``frame_shape``, from its registered ``stages``.

    Raises:
        UncountableLayer: for a layer type (or configuration) the simulator cannot count.
    """
    kind = registry.layer_kind(layer)
    if kind is None or kind.stages is None:
        raise UncountableLayer(f"no MAC rule for {type(layer).__name__} (register its stages with "
                               "delta_keras.registry.register_layer)")
    build = STAGE_BUILDERS[kind.stages] if isinstance(kind.stages, str) else kind.stages
    return build(layer, tuple(frame_shape))
