"""Fused sparse layers: what follows a sparse convolution, evaluated only where its changes landed.

A convolution's accumulator changes only at the output pixels its input changes reach. The frame-wise layers after
it (a ReLU, a per-frame quantiser or a memory threshold, a max pooling) then need evaluating only there, and what
they emit is again a list of changed elements: the next convolution's input changes, without comparing whole
frames and without handing the frame to TensorFlow between layers. `Epilogue` describes such a chain (from the
registry's ``runtime_kernel`` names of its layers); `emit_changes` and `pool_changes` run it:

- `emit_changes`: per touched output pixel and channel, the layer's output value (the accumulator rounded to
  float32, as the dense layer's output; ReLU; quantised to ``step * rint(x / step)``, or for a memory threshold
  the value sent when it moved past the threshold, else the value sent before), compared with the value sent on
  last frame: the changes are listed row by row in the format the convolution kernel reads (flat ``x * C + c``,
  change, count per row), exactly, in float64 (the difference of two float32 values);
- `pool_changes`: max pooling re-evaluated at the pooled outputs whose window holds a listed change.

The arithmetic is the dense layers' own float32 arithmetic, without fast-math reassociation, so on the same
accumulator values the fused layers emit the values the dense ones compute.

Without fusing (the runtime's default), `output_pass_chains` finds the same chains without lists: a ReLU, a
per-frame quantiser or (without counting) a memory threshold, and a 2x2 max pooling, which the convolution's output
pass applies to every output as it hands the whole frame on (`delta_keras.runtime.kernels.SparseConv`; a memory
threshold by `remember_values`, its state kept by the kernel).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from delta_keras import registry
from delta_keras.runtime.compiled import leading_padding, njit, numba

# What the epilogue does to a value after the optional ReLU.
KEEP, QUANTIZE, MEMORY = 0, 1, 2


@njit(parallel=False, fastmath=False)
def finish_values(accumulated, values, relu, steps):  # pragma: no cover (compiled)
    """Output pixels as the dense layers compute them, into ``values`` (float32, pixels x channels): their
    accumulators rounded to float32, a ReLU with ``relu``, and with ``steps`` (one per channel; empty: none)
    quantised, ``step * rint(x / step)``, in the layers' own float32 arithmetic (no fast-math). One pass over a row
    of pixels (the tests on ``relu`` and ``steps`` hoisted out of the loop, which is vectorised): a call per pixel
    with a pass per layer took twice as long on HED's 64-channel rows."""
    pixels, channels = values.shape
    for p in range(pixels):
        for f in range(channels):
            value = np.float32(accumulated[p, f])
            if relu:
                value = max(value, np.float32(0.0))
            if steps.size:
                value = np.float32(np.rint(value / steps[f])) * steps[f]
            values[p, f] = value


@njit(parallel=False, fastmath=False)
def remember_values(values, sent, thresholds):  # pragma: no cover (compiled)
    """A memory threshold on finished pixels (float32, pixels x channels), as `DeltaActivation.memory_step` computes
    it: where a value moved more than its channel's threshold from what was ``sent`` on last, it is sent (``sent``
    updated); elsewhere the value sent before stands in for it (``values`` updated)."""
    pixels, channels = values.shape
    for p in range(pixels):
        for f in range(channels):
            if abs(values[p, f] - sent[p, f]) > thresholds[f]:
                sent[p, f] = values[p, f]
            else:
                values[p, f] = sent[p, f]


@njit(fastmath=False)
def emit_changes(accumulator, touched, every, relu, mode, steps, state, index, change, count):  # pragma: no cover
    """Per output row (in parallel): at each touched pixel (every pixel with ``every``), each channel's output
    value against ``state`` (what was sent on last), listing the changes and updating ``state``; clears
    ``touched``. Returns the number of changes listed."""
    batch, out_h, out_w, filters = accumulator.shape
    listed = np.zeros(batch * out_h, np.int64)
    for row in numba.prange(batch * out_h):
        b, oy = row // out_h, row % out_h
        values = np.empty((1, filters), np.float32)
        quantizer = steps if mode == QUANTIZE else steps[:0]
        n = 0
        for ox in range(out_w):
            if not (every or touched[b, oy, ox]):
                continue
            touched[b, oy, ox] = 0
            finish_values(accumulator[b, oy, ox:ox + 1], values, relu, quantizer)  # then the comparison
            for f in range(filters):
                old = state[b, oy, ox, f]
                value = values[0, f]
                if mode == MEMORY and not abs(value - old) > steps[f]:
                    continue
                if value != old:
                    index[b, oy, n] = ox * filters + f
                    change[b, oy, n] = np.float64(value) - np.float64(old)
                    state[b, oy, ox, f] = value
                    n += 1
        count[b, oy] = n
        listed[row] = n
    return listed.sum()


@njit(parallel=False, fastmath=False)
def _repool(state, pooled, b, py, px, c, pool, strides, offsets, index, change, n):  # pragma: no cover
    """Max over pooled output ``(py, px)``'s window of channel ``c``; listed (at ``n``) if it changed."""
    height, width = state.shape[1], state.shape[2]
    top, left = py * strides[0] - offsets[0], px * strides[1] - offsets[1]
    best = -np.inf
    for y in range(max(top, 0), min(top + pool[0], height)):
        for x in range(max(left, 0), min(left + pool[1], width)):
            best = max(best, state[b, y, x, c])
    value = np.float32(best)
    old = pooled[b, py, px, c]
    if value != old:
        index[b, py, n] = px * pooled.shape[3] + c
        change[b, py, n] = np.float64(value) - np.float64(old)
        pooled[b, py, px, c] = value
        n += 1
    return n


@njit(fastmath=False)
def pool_changes(state, pooled, pool, strides, offsets, every, in_index, in_count, index, change,
                 count):  # pragma: no cover
    """Per pooled row (in parallel): max pooling of ``state`` at the outputs whose window holds a change listed in
    ``in_index``/``in_count`` (every output with ``every``), against ``pooled``; lists the changes."""
    batch, height, _, channels = state.shape
    out_h, out_w = pooled.shape[1], pooled.shape[2]
    listed = np.zeros(batch * out_h, np.int64)
    for row in numba.prange(batch * out_h):
        b, py = row // out_h, row % out_h
        n = 0
        if every:
            for px in range(out_w):
                for c in range(channels):
                    n = _repool(state, pooled, b, py, px, c, pool, strides, offsets, index, change, n)
        else:
            top = py * strides[0] - offsets[0]
            for y in range(max(top, 0), min(top + pool[0], height)):
                for k in range(in_count[b, y]):
                    x, c = in_index[b, y, k] // channels, in_index[b, y, k] % channels
                    # The pooled columns whose window [px * s - offset, px * s - offset + pool) holds x.
                    first = max((x + offsets[1] - pool[1]) // strides[1] + 1, 0)
                    for px in range(first, min((x + offsets[1]) // strides[1] + 1, out_w)):
                        n = _repool(state, pooled, b, py, px, c, pool, strides, offsets, index, change, n)
        count[b, py] = n
        listed[row] = n
    return listed.sum()


class ChangeList:
    """The changed elements of a ``(batch, H, W, C)`` frame, row by row: ``index[b, y, :count[b, y]]`` (flat
    ``x * C + c``) and ``change`` (float64), what `emit_changes` and `pool_changes` write and the convolution
    kernel reads; ``value`` the frame as it is now (float32), for a consumer that needs it whole."""

    def __init__(self, shape: tuple):
        batch, height, width, channels = shape
        self.value = np.zeros(shape, np.float32)
        self.index = np.empty((batch, height, width * channels), np.int32)
        self.change = np.empty((batch, height, width * channels), np.float64)
        self.count = np.zeros((batch, height), np.int64)
        self.size = int(np.prod(shape))

    def reset(self) -> None:
        self.value[:] = 0
        self.count[:] = 0


@dataclasses.dataclass
class Epilogue:
    """The frame-wise layers fused after a convolution: ``relu``, then ``mode`` (`KEEP`, `QUANTIZE` or `MEMORY`
    with per-channel ``steps``), then optionally a max pooling (``pool``, ``pool_strides``, ``pool_padding``)."""

    relu: bool = False
    mode: int = KEEP
    steps: np.ndarray | None = None
    pool: tuple | None = None
    pool_strides: tuple | None = None
    pool_padding: str = "valid"

    @property
    def step_array(self) -> np.ndarray:
        """The per-channel steps (or thresholds) the kernels read, float32; empty where nothing is quantised."""
        return np.zeros(0, np.float32) if self.mode == KEEP else np.ascontiguousarray(self.steps, np.float32)

    def steps_of(self, mode: int) -> np.ndarray:
        """`step_array` where the epilogue's ``mode`` is ``mode`` (`QUANTIZE`: the output pass's quantiser steps;
        `MEMORY`: its thresholds), else empty."""
        return self.step_array if self.mode == mode else np.zeros(0, np.float32)

    def outputs(self, shape: tuple) -> tuple[ChangeList, ChangeList | None]:
        """The change lists of the epilogue's output (before pooling) and of the pooling, for a ``shape`` output."""
        return ChangeList(shape), None if self.pool is None else ChangeList(self.pooled_shape(shape))

    def pooled_shape(self, shape: tuple) -> tuple:
        """The shape of the pooling's output for a ``shape`` output (batch, H, W, C)."""
        batch, height, width, channels = shape
        pooled = [(size - window) // stride + 1 if self.pool_padding == "valid" else -(-size // stride)
                  for size, window, stride in zip((height, width), self.pool, self.pool_strides)]
        return (batch, *pooled, channels)

    def pooling(self, shape: tuple) -> tuple:
        """`pool_changes`' constant arguments for a ``shape`` output (window, strides, leading padding), or ()
        without a pooling."""
        if self.pool is None:
            return ()
        return (np.asarray(self.pool, np.int64), np.asarray(self.pool_strides, np.int64),
                np.asarray([leading_padding(size, window, stride, 1, self.pool_padding) for size, window, stride
                            in zip(shape[1:3], self.pool, self.pool_strides)], np.int64))

    def run(self, accumulator: np.ndarray, touched: np.ndarray, every: bool, out: ChangeList,
            pooled: ChangeList | None, pooling: tuple = ()) -> int:
        """Evaluates the epilogue where ``touched`` (everywhere with ``every``), on the lists `outputs` made
        (``pooling``: `pooling` of the output's shape); returns the changes listed."""
        listed = emit_changes(accumulator, touched, every, self.relu, self.mode, self.step_array, out.value,
                              out.index, out.change, out.count)
        if pooled is not None:
            pool_changes(out.value, pooled.value, *pooling, every, out.index, out.count, pooled.index,
                         pooled.change, pooled.count)
        return int(listed)


@dataclasses.dataclass
class FusedChain:
    """A convolution's fused epilogue in a frame plan: the `Epilogue`, the plan nodes it evaluates (``absorbed``:
    frame-wise layers and views, then the pooling, in graph order), and the ids of the tensors it emits changes of
    (``out``, before pooling; ``pooled``, after it, or None). In an output pass, ``sides``: the plan's 1x1
    convolutions that read ``out`` and would run densely, and ``pooled`` a 2x2 max pooling of ``out`` that the pass
    computes in place of ``out`` (`output_pass_chains`)."""

    epilogue: Epilogue
    absorbed: list
    out: int
    pooled: int | None
    sides: list = dataclasses.field(default_factory=list)

    def absorb_pooling(self, pool) -> None:
        """Takes the max pooling of plan node ``pool`` (it reads ``out``) into the chain, which emits ``pooled``."""
        self.epilogue.pool, self.epilogue.pool_strides = tuple(pool.layer.pool_size), tuple(pool.layer.strides)
        self.epilogue.pool_padding = pool.layer.padding
        self.absorbed.append(pool)
        self.pooled = id(pool.output)


def _is_relu(layer) -> bool:
    activation = getattr(layer, "activation", None)
    if activation is not None:  # Activation("relu"), or a convolution's own activation
        return getattr(activation, "__name__", "") == "relu"
    config = layer.get_config()  # keras.layers.ReLU: only the plain max(x, 0)
    return not config.get("max_value") and not config.get("negative_slope") and not config.get("threshold")


def _steps(layer, channels: int) -> np.ndarray | None:
    """A quantiser's or threshold's steps, one per channel (None: steps per neuron, not fused)."""
    steps = np.asarray(keras.ops.convert_to_numpy(layer.step), np.float32)
    return np.broadcast_to(steps, (channels,)).copy() if steps.size in (1, channels) and steps.ndim <= 1 else None


def fused_chains(plan, convolutions: set, lists: bool = True, memory: bool = True) -> dict[str, FusedChain]:
    """The epilogue of each convolution of ``plan`` (by node key) that `SparseConv` runs (``convolutions``): the
    frame-wise layers the registry names a fused ``runtime_kernel`` for ("relu", "quantize", "max_pool2d"), in
    this order (ReLU, then a per-frame quantiser or a memory threshold, then a max pooling), with views between
    them; each but the pooling the only reader of the tensor before it. A convolution whose own activation is
    neither linear nor ReLU has none. Without ``lists`` (an epilogue in the convolution's output pass, which
    evaluates every output and hands on the whole frame): only the elementwise layers, a ReLU and a per-frame
    quantiser or, with ``memory``, a memory threshold."""
    readers = _readers(plan)
    chains = {}
    for node in plan.nodes:
        if node.key not in convolutions:
            continue
        activation = node.layer.activation
        if getattr(activation, "__name__", "") not in ("linear", "relu"):
            continue
        channels = node.layer.filters
        epilogue, absorbed, tensor = Epilogue(relu=_is_relu(node.layer)), [], id(node.output)
        while len(readers.get(tensor, [])) == 1 and readers[tensor][0] is not None:
            reader = readers[tensor][0]
            name = _kernel_name(reader.layer)
            if reader.kind in ("identity", "fold", "unfold"):
                pass
            elif name == "relu" and _is_relu(reader.layer) and not epilogue.relu and epilogue.mode == KEEP:
                epilogue.relu = True
            elif name == "quantize" and epilogue.mode == KEEP:
                steps = _steps(reader.layer, channels)
                if steps is None:
                    break
                if reader.kind == "memory" and not memory:
                    break
                epilogue.mode, epilogue.steps = (MEMORY if reader.kind == "memory" else QUANTIZE), steps
            else:
                break
            absorbed.append(reader)
            tensor = id(reader.output)
        chain = chains[node.key] = FusedChain(epilogue, absorbed, tensor, None)
        pools = [reader for reader in readers.get(tensor, []) if lists and _is_max_pooling(reader)]
        if pools:
            chain.absorb_pooling(pools[0])
    return chains


@dataclasses.dataclass
class Fusion:
    """How a plan's convolutions are fused: ``chains`` (epilogues by convolution key), ``sources`` (a convolution
    that reads a producer's change list instead of comparing frames: ``{reader key: (producer key, "out" |
    "pooled")}``) and ``whole`` (per producer, the epilogue outputs that other layers read as whole tensors)."""

    chains: dict
    sources: dict
    whole: dict


def fuse(plan, convolutions: set) -> Fusion:
    """The `fused_chains` of ``plan``, connected: a convolution of ``convolutions`` whose only input is an epilogue's
    output reads its change list; every other reader (and the model's output) reads it whole. An epilogue that
    fuses no layer and feeds no list reader is dropped (its convolution hands its output on as before)."""
    chains = fused_chains(plan, convolutions)
    while True:
        emitted = {tensor: (key, which) for key, chain in chains.items()
                   for tensor, which in ((chain.out, "out"), (chain.pooled, "pooled")) if tensor is not None}
        absorbed = {id(node) for chain in chains.values() for node in chain.absorbed}
        sources, whole = {}, {key: [] for key in chains}
        readers = [(id(t), node) for node in plan.nodes if id(node) not in absorbed for t in node.node.input_tensors]
        for tensor, node in [*readers, *[(id(result), None) for result in plan.results]]:
            if tensor not in emitted:
                continue
            producer, which = emitted[tensor]
            if node is not None and node.key in convolutions and len(node.node.input_tensors) == 1:
                sources[node.key] = (producer, which)
            elif which not in whole[producer]:
                whole[producer].append(which)
        idle = [key for key, chain in chains.items()
                if not chain.absorbed and all(producer != key for producer, _ in sources.values())]
        if not idle:
            return Fusion(chains, sources, whole)
        for key in idle:
            del chains[key]


def output_pass_chains(plan, convolutions: set, sides: bool = True, memory: bool = True) -> dict[str, FusedChain]:
    """The `fused_chains` without lists that do something (a ReLU, a quantiser or, with ``memory``, a memory
    threshold, whose state the convolution's kernel then keeps): evaluated in the output pass
    of an unfused convolution (`delta_keras.runtime.kernels.SparseConv`), while each output row is in cache,
    instead of as whole-frame layers after it. With ``sides``, each chain's ``sides`` are the 1x1 convolutions
    (stride 1, one group) outside ``convolutions`` (they would run densely: too few MACs per input element to list
    changes) that read its output, as HED's side outputs to one channel do: the output pass computes them too, from
    the row it just finished (at 192x192 HED's five took about 4.5 ms a frame as TensorFlow ops, mostly reading their
    input again). Its float32 sums are not TensorFlow's, so their outputs differ from the dense layer's in the last
    bit, and a layer after them sees changes on frames that change nothing else. A 2x2 max pooling of stride 2 that
    reads the output and nothing else but those sides (HED's and VGG16's blocks: without ``sides`` only where no side
    reads it) is computed in the pass too, which then writes the pooled output instead of the output (``pooled``)."""
    chains = fused_chains(plan, convolutions, lists=False, memory=memory)
    chains = {key: chain for key, chain in chains.items() if chain.epilogue.relu or chain.epilogue.mode != KEEP}
    readers = _readers(plan)
    for chain in chains.values():
        chain.sides = [node for node in readers.get(chain.out, []) if sides and node is not None
                       and node.key not in convolutions and _is_pointwise(node)]
        # A 2x2 max pooling of stride 2 that is the output's only other reader: the pass writes the pooled rows
        # alone, from each pair of finished rows, and the whole output (the largest tensor of a VGG block) is
        # never written or read again.
        others = [node for node in readers.get(chain.out, []) if node not in chain.sides]
        pool = others[0] if len(others) == 1 and _is_max_pooling(others[0]) else None
        # Each pooled row reads two rows, which the pass finishes one after the other.
        if pool is not None and tuple(pool.layer.pool_size) == tuple(pool.layer.strides) == (2, 2):
            chain.absorb_pooling(pool)
    return chains


def convolution_runs(plan, chains: dict[str, FusedChain]) -> list[list[str]]:
    """The convolutions of output-pass ``chains`` (`output_pass_chains`) in runs (`delta_keras.runtime.runs`), by key
    in the plan's order: each reads, as its input, the output its predecessor's pass finished (pooled where it
    pools), which nothing else reads (the pass's side convolutions excepted). Runs of one are left out, but for a
    convolution whose pass holds a memory threshold: its dense frames, too, must go through its pass, which keeps
    the threshold's state (`delta_keras.runtime.kernels.SparseConv.update_arrays`)."""
    readers = _readers(plan)
    following = {}
    for key, chain in chains.items():
        finished = chain.out if chain.pooled is None else chain.pooled
        others = [node for node in readers.get(finished, []) if node not in chain.sides]
        if len(others) == 1 and others[0] is not None and others[0].key in chains and id(others[0].input) == finished:
            following[key] = others[0].key
    runs = []
    for key in plan.mac_keys:
        if key in following and key not in following.values():
            run = [key]
            while run[-1] in following:
                run.append(following[run[-1]])
            runs.append(run)
    alone = [[key] for key, chain in chains.items()
             if chain.epilogue.mode == MEMORY and not any(key in run for run in runs)]
    return sorted(runs + alone, key=lambda run: plan.mac_keys.index(run[0]))


def _readers(plan) -> dict[int, list]:
    """The plan nodes reading each tensor (by id); None for a tensor a step hands back (`FramePlan.results`)."""
    readers: dict[int, list] = {}
    for node in plan.nodes:
        for tensor in node.node.input_tensors:
            readers.setdefault(id(tensor), []).append(node)
    for tensor in plan.results:  # read whole by the caller of a step (None): a chain stops there
        readers.setdefault(id(tensor), []).append(None)
    return readers


def _is_max_pooling(node) -> bool:
    """A plan node (None: a step's result) of a 2D max pooling on channels-last frames, frame by frame."""
    return (node is not None and not node.time_distributed and _kernel_name(node.layer) == "max_pool2d"
            and node.layer.data_format == "channels_last")


def _is_pointwise(node) -> bool:
    """A plan node of a 2D convolution with a 1x1 kernel, stride 1 and one group, on channels-last frames."""
    layer = node.layer
    return (node.kind == "mac" and not node.time_distributed and _kernel_name(layer) == "sparse_conv2d"
            and tuple(layer.kernel_size) == (1, 1) and tuple(layer.strides) == (1, 1) and layer.groups == 1
            and layer.data_format == "channels_last" and len(node.node.input_tensors) == 1)


def _kernel_name(layer) -> str | None:
    kind = registry.layer_kind(layer)
    return kind.runtime_kernel if kind is not None else None
