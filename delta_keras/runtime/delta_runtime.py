"""`DeltaRuntime`: runs a clip model frame by frame, multiplying only the changes of each MAC layer's input."""

from __future__ import annotations

import numbers

import keras
import numpy as np
import tensorflow as tf

from delta_keras.frames import FrameNode, FramePlan, check_clips, geometry
from delta_keras.models import graph as graph_lib
from delta_keras.runtime.calibration import MeasuredBreakEven, measure_break_evens
from delta_keras.runtime.fused import Fusion, FusedChain, convolution_runs, fuse as fuse_plan, output_pass_chains
from delta_keras.runtime.kernels import SECONDS, SparseConv, delta_kernel, kernel_class
from delta_keras.runtime.runs import ConvolutionRun


def relative_change(frame, previous):
    """``mean |frame - previous| / mean |frame|``: the statistic a scene cut is detected by (``cut_above``)."""
    return tf.reduce_mean(tf.abs(frame - previous)) / (tf.reduce_mean(tf.abs(frame)) + 1e-12)


class DeltaRuntime:
    """Streams frames through a clip model, doing a MAC layer's work only for the input elements that changed.

    Each ``Conv2D`` (any stride, dilation, "same"/"valid" padding, one group) and each ``Dense`` on vectors
    keeps its output in an accumulator. Per frame, its input is compared with the previous one and only the
    changed elements are multiplied and added in (`delta_keras.runtime.kernels`: a compiled, multi-threaded
    element-sparse kernel, so the MACs done are exactly the ``zero_delta`` MACs). When more than its
    ``dense_above`` share of a layer's input changed, the layer is recomputed densely instead, which also clears the
    accumulator's float rounding; on a scene cut (see ``cut_above``) and the first frame the whole frame runs
    densely, as the dense model does. Other MAC layers (depthwise, separable, grouped, transposed, 1D/3D
    convolutions) run densely every frame; layers without MACs run on the whole frame, but for the ReLU and
    per-frame quantiser after a sparse convolution, which its output pass applies. A frame is one
    `tf.function` call (no retracing); the convolutions' states are NumPy arrays the kernel updates in place
    (host memory: this is a CPU runtime). Without ``count_macs``, convolutions that read nothing but the previous
    one's output pass (a VGG trunk) run in one call into the kernels a frame (``runs``,
    `delta_keras.runtime.runs`).

    Graphs, frame-0 charging and outputs are those of `delta_keras.sim.DeltaInference` (any model that
    `sparsify`, `strip_sparsity` or `video_classifier` builds, memory-mode `DeltaActivation` included; a
    temporal head's ``Conv1D`` over the clip's frames and the layers after it run densely at each step on the
    frames so far, `delta_keras.frames.plan.Tail`, so a step returns the model's output on the clip so far):
    ``run(clips)`` equals ``model(clips)`` within float32 rounding, and ``macs`` (the MACs each layer's nonzero
    input changes trigger) equals `count_macs`' ``zero_delta``. ``executed_macs`` is what the runtime actually
    multiplied: dense frames and dense-only layers at their dense cost.

    TensorFlow backend; convolutions need numba (``pip install 'delta_keras[runtime]'``), else they run
    densely. The weights are read when the runtime is built: build a new one after changing them. Batch > 1
    works (clips streamed side by side, one state each; a layer goes dense when the batch as a whole changed
    a lot), but batch-1 streaming is what it is made for.

    Args:
        model: a clip model, input ``(batch, frames, ...)`` (``frames`` may be None).
        batch_size: clips per step.
        dense_above: share of changed input elements above which a layer is recomputed densely (estimated
            from 8192 elements spread over the input: a wrong guess costs time, never exactness). None (the
            default): each layer's `delta_keras.runtime.kernels.break_even`, from a cost model of the sparse kernel
            and the dense layer (0.19-0.24 for most of VGG16's 3x3 convolutions, 0 on 3 colour channels); a
            float: every layer's; a dict: ``{layer name: share}`` for some layers, the others' break-evens.
        count_macs: count ``macs`` on every frame; without it, frames a layer computes densely are not
            compared in full (the sparse updates count theirs for free), a convolution chooses dense or sparse in
            the graph and hands a dense frame's state to its kernel at the end of the frame, a memory threshold after
            a convolution runs in its output pass (its state kept by the kernel), and scene cuts are detected.
        cut_above: relative change of the frame itself, ``mean |frame - previous| / mean |frame|``, above which
            a frame is a scene cut: the whole frame then runs densely, without a per-layer decision (only
            without ``count_macs``). Over 12 frames of the 13 real clips, consecutive frames stay below 0.27 but
            for a cut inside two of them (1.25, 0.58), and the first frames of two different clips differ by
            0.42 or more (`benchmarks/streaming_speed.py --cuts`).
        fuse: fused sparse layers (`delta_keras.runtime.fused`): each convolution evaluates the ReLU, quantiser
            or memory threshold and max pooling after it only where its changes landed, and hands the next
            convolution a list of changes instead of a frame to compare; the same outputs and MAC counts. Off by
            default: on 2 cores it is slower on real clips, with per-frame quantisers or memory thresholds (its floor,
            on a static scene, is lower; docs/runtime.md, "Fused sparse layers").
        min_fan_out: a convolution whose input elements each trigger fewer MACs (kernel height x width x filters
            / strides) runs densely: comparing an element with the previous frame's costs far more than one MAC
            of a dense convolution, so below this the comparison alone outweighs the MACs it could save (HED's
            1x1 side outputs to one channel: 1 MAC per element). Without ``count_macs``, such a 1x1 convolution
            (stride 1) that reads a sparse convolution's output-pass result is computed in that pass, from each
            finished row.
        resync_every: a convolution that ran sparse with changes this many frames in a row is recomputed densely
            (0: never, and the rounding its float32 accumulator collects then wanders over a stream), the rounding
            cleared (`delta_keras.runtime.kernels`); the convolutions' recomputations are spread over the frames
            (one every ``resync_every / convolutions`` frames where every frame changes; none in a still scene) and
            count in ``executed_macs``.

    Attributes:
        dense_above: ``{layer name: share}`` in use, for each layer with a delta kernel.
        fusion: the `delta_keras.runtime.fused.Fusion` in use (empty without ``fuse``).
        runs: ``{first layer key: (keys, ConvolutionRun)}``, the convolutions brought up to date in one call a frame
            (empty with ``count_macs`` or ``fuse``).

    Example:

    >>> runtime = DeltaRuntime(clip_model)             # doctest: +SKIP
    >>> for frame in camera:                           # doctest: +SKIP
    ...     edges = runtime.step(frame)                # (1, 1, ...): this frame's output
    >>> runtime.reset()                                # between videos  # doctest: +SKIP
    """

    def __init__(self, model: keras.Model, batch_size: int = 1, dense_above: float | dict[str, float] | None = None,
                 count_macs: bool = True, cut_above: float = 0.35, fuse: bool = False, min_fan_out: int = 128,
                 resync_every: int = 32):
        shares = dense_above if isinstance(dense_above, dict) else {} if dense_above is None else {None: dense_above}
        for name, share in shares.items():
            if not (isinstance(share, numbers.Real) and 0.0 <= share <= 1.0):
                where = "" if name is None else f"[{name!r}]"
                raise ValueError(f"dense_above{where} must be a share in [0, 1], got {share!r}")
        if not cut_above >= 0.0:
            raise ValueError(f"cut_above must be >= 0, got {cut_above!r}")
        if not (isinstance(resync_every, int) and resync_every >= 0):
            raise ValueError(f"resync_every must be an int >= 0 (0: never), got {resync_every!r}")
        self.plan = FramePlan(model, "DeltaRuntime")
        self.model, self.batch_size, self.count = model, batch_size, count_macs
        shapes, state_shapes = self.plan.frame_shapes(batch_size), self.plan.state_shapes(batch_size)
        self._state, self._kernels = {}, {}
        self.dense_above: dict[str, float] = {}
        # Per MAC layer: the MACs of one dense frame (whole batch), padding taps included.
        self.dense_macs: dict[str, int] = {}
        frame_shapes = {key: shapes[id(node.input)][2 if node.time_distributed else 1:]
                        for key, node in self.plan.mac_nodes.items()}
        # The convolutions that run with the sparse kernel, and the fused epilogue of each.
        convolutions = {key for key, node in self.plan.mac_nodes.items()
                        if kernel_class(node.layer, frame_shapes[key], min_fan_out) is SparseConv}
        self.fusion = fuse_plan(self.plan, convolutions) if fuse else Fusion({}, {}, {})
        # Unfused: the ReLU and per-frame quantiser after a convolution run in its output pass, not in TensorFlow;
        # without counting, a memory threshold (its state in the kernel) and the 1x1 convolutions that read the pass's
        # output too (counting, they run as the dense model runs them, so that the layers after them count what
        # `count_macs` counts, not their last bit's changes).
        self.finishes = {} if fuse else output_pass_chains(self.plan, convolutions, sides=not count_macs,
                                                           memory=not count_macs)
        # The memory thresholds of output passes, by node key: the key of the convolution whose kernel keeps the state.
        remembered = {node.key: key for key, chain in self.finishes.items() for node in chain.absorbed
                      if node.kind == "memory"}
        # Without counting, convolutions that read nothing but the output pass of the one before them run in one
        # call a frame (`delta_keras.runtime.runs`).
        runs = [] if count_macs else convolution_runs(self.plan, self.finishes)
        in_runs = {key for keys in runs for key in keys}
        # Staggered re-syncs: the i-th of n sparse convolutions starts i / n of the way to its first.
        in_order = [key for key in self.plan.mac_keys if key in convolutions]
        phases = {key: i * resync_every // len(in_order) for i, key in enumerate(in_order)}
        for node in self.plan.nodes:
            if node.kind == "mac":
                # One step's input, batch axis excluded (a clip-level tensor keeps its time axis, of length 1).
                frame_shape = frame_shapes[node.key]
                chain, finish = self.fusion.chains.get(node.key), self.finishes.get(node.key)
                share = shares.get(node.layer.name, shares.get(None))  # None: the layer's break-even
                kernel = delta_kernel(node.layer, frame_shape, batch_size, node.stages[0].fan_out(False), share,
                                      count_macs, chain.epilogue if chain else None, min_fan_out,
                                      finish.epilogue if finish else None, resync_every, phases.get(node.key, 0),
                                      [side.layer for side in finish.sides] if finish else (), node.key in in_runs)
                self._kernels[node.key] = kernel
                if kernel is not None:
                    self.dense_above[node.layer.name] = float(kernel.dense_above)
                self.dense_macs[node.key] = sum(stage.dense_macs() for stage in node.stages) * batch_size
                if kernel is None and count_macs:  # runs densely; the previous input is kept to count the changes' MACs
                    self._state[node.key] = tf.Variable(tf.zeros((batch_size, *frame_shape)), trainable=False)
            elif node.kind in ("previous_frame", "time_mean", "memory") and node.key not in remembered:
                self._state[node.key] = tf.Variable(tf.zeros(state_shapes[node.key]), trainable=False)
        unknown = sorted(set(shares) - {None} - set(self.dense_above))
        if unknown:
            raise ValueError(f"dense_above names {', '.join(map(repr, unknown))}: not a layer with a delta kernel "
                             f"(those are {', '.join(self.dense_above) or 'none'})")
        for reader, (producer, which) in self.fusion.sources.items():
            self._kernels[reader].source = getattr(self._kernels[producer], which)
        for producer, wholes in self.fusion.whole.items():
            self._kernels[producer].wholes = tuple(wholes)
        self._chain_of = {self._kernels[key]: chain for key, chain in self.fusion.chains.items()}
        self._finish_of = {self._kernels[key]: chain for key, chain in self.finishes.items()}
        self._remembered = {key: self._kernels[convolution] for key, convolution in remembered.items()}
        self.runs = {keys[0]: (keys, ConvolutionRun([self._kernels[key] for key in keys])) for keys in runs}
        self._shapes = shapes
        self.mac_layers = self.plan.mac_keys
        self._handlers = {"memory": self._memory, "previous_frame": self._previous_frame, "time_mean": self._time_mean}
        self._frames = tf.Variable(0, trainable=False)
        self.cut_above = cut_above
        self._last_frame = tf.Variable(tf.zeros((batch_size, *model.inputs[0].shape[2:])), trainable=False)
        frame_spec = tf.TensorSpec((batch_size, *model.inputs[0].shape[2:]), "float32")
        self._step = tf.function(self._run_frame, input_signature=[frame_spec])
        self._tail = self.plan.tail(compiled=True)
        self.reset()

    def reset(self) -> None:
        """Forgets every state (call between videos): the next frame is charged as a first frame."""
        for variable in self._state.values():
            variable.assign(tf.zeros_like(variable))
        for kernel in self._kernels.values():
            if kernel is not None:
                kernel.reset()
        self._frames.assign(0)
        self._macs, self._executed = [], []
        if self._tail is not None:
            self._tail.reset()

    def step(self, frame):
        """Feeds one frame ``(batch_size, ...)`` (or ``(...)`` at batch 1); returns the model's output for it.

        Returns:
            The output with the state carried from previous frames: for a per-frame output ``(batch, 1, ...)``;
            after a time average, the average over the frames seen so far; with layers over the time axis (a
            temporal head), the model's output on the frames seen so far.
        """
        frame = tf.convert_to_tensor(frame, "float32")
        expected = (self.batch_size, *self.model.inputs[0].shape[2:])
        if frame.shape.rank == len(expected) - 1:
            frame = frame[None]
        if tuple(frame.shape) != expected:
            raise ValueError(f"{self.model.name}: a frame must have shape {expected}, got {tuple(frame.shape)}")
        output, macs, executed = self._step(frame)
        if self._tail is not None:  # the layers over the clip's time axis, on the frames so far
            output = self._tail(output)
        self._macs.append(macs)
        self._executed.append(executed)
        return output

    def run(self, clips) -> np.ndarray:
        """Runs clips ``(batch_size, frames, ...)`` from a reset state; returns the outputs like ``model(clips)``."""
        clips = check_clips(self.model, clips)
        self.reset()
        return self.plan.stack([self.step(clips[:, t]) for t in range(clips.shape[1])])

    @property
    def macs(self) -> dict[str, list[int]]:
        """Per MAC layer, per frame since `reset`: the MACs its nonzero input changes trigger (``zero_delta``)."""
        if not self.count:
            raise RuntimeError("this DeltaRuntime does not count MACs (count_macs=False)")
        return self._per_layer(self._macs)

    @property
    def executed_macs(self) -> dict[str, list[int]]:
        """Per MAC layer, per frame since `reset`: the MACs the runtime multiplied (dense frames at dense cost)."""
        return self._per_layer(self._executed)

    @property
    def kernel_seconds(self) -> dict[str, float]:
        """Wall seconds the sparse convolution kernels spent since the runtime was built, by pass: listing the
        changed elements (``changes``: comparing frames, or summing the fan-outs of a fused producer's list),
        multiplying them into the accumulators and finishing the outputs (``multiply``: the output pass included),
        the fused epilogues (``epilogue``) and the dense frames of convolutions in a run (``dense``: TensorFlow's
        convolution and the output pass). The rest of a frame's time is the graph's other work (and the dense
        recomputations outside runs)."""
        kernels = [k for k in self._kernels.values() if isinstance(k, SparseConv)]
        return {part: sum(k.seconds[part] for k in kernels) for part in SECONDS}

    @property
    def run_kernels(self) -> list[SparseConv]:
        """The kernels of the convolutions in ``runs``, in the order they run: those that choose dense or sparse
        themselves, by a ``dense_above`` that `calibrate` can set."""
        return [kernel for keys, run in self.runs.values() for kernel in run.kernels]

    def calibrate(self, clips, strides=(1, 2, 4), repeats: int = 3) -> dict[str, MeasuredBreakEven]:
        """Sets each convolution of a run's ``dense_above`` to the share that streamed ``clips`` ``(batch_size,
        frames, ...)`` fastest on this machine, inside the run (`delta_keras.runtime.calibration`): every convolution
        timed with its neighbours at a few shares, on the clips' frames and on every ``strides``-th frame (larger
        changes). Clips like those the runtime will stream give break-evens for them, best the stream's own first
        frames. The runtime is reset. Whatever the shares, outputs stay the forward pass's up to float32 rounding at
        quantiser ties; a convolution that runs sparse more often decides more ties the other way (HED at 192x192,
        step 8, with ``block1_conv1`` sparse up to 0.45 of its input changed: 27.7 % of the outputs off by more than
        1e-3 against 9.9 %, the largest difference 5.4e-2 against 2.8e-2).

        Returns:
            ``{layer name: MeasuredBreakEven}``: the share chosen, the one before and the time at each share tried.
        """
        clips = check_clips(self.model, clips)
        if clips.shape[0] != self.batch_size:
            raise ValueError(f"clips: expected a batch of {self.batch_size} clips, got {clips.shape[0]}")
        measured = measure_break_evens(self, clips, strides, repeats)
        for kernel in self.run_kernels:
            kernel.use_dense_above(measured[kernel.layer.name].share)
            self.dense_above[kernel.layer.name] = kernel.dense_above
        return measured

    def _per_layer(self, frames: list) -> dict[str, list[int]]:
        table = np.asarray(frames, np.int64).reshape(len(frames), len(self.mac_layers))
        return {key: table[:, i].tolist() for i, key in enumerate(self.mac_layers)}

    # ------------------------------------------------------------------ one frame, compiled
    def _run_frame(self, frame):
        if self.count or not any(isinstance(k, SparseConv) for k in self._kernels.values()):
            result = self._run_nodes(frame, whole_frame_dense=False)
        else:
            # A scene cut (or the first frame) changes every layer's input: the whole frame runs densely, as the
            # dense model does, and the kernels get their state in one hand-over instead of one call a layer.
            cut = tf.logical_or(tf.equal(self._frames, 0), relative_change(frame, self._last_frame) > self.cut_above)
            result = tf.cond(cut, lambda: self._run_nodes(frame, whole_frame_dense=True),
                             lambda: self._run_nodes(frame, whole_frame_dense=False))
        self._last_frame.assign(frame)
        self._frames.assign_add(1)
        return result

    def _run_nodes(self, frame, whole_frame_dense: bool):
        macs, executed, handed = [], [], []
        fused = {}  # tensor id -> its value this frame, for the layers a fused epilogue evaluated (or its token)
        ran = {}  # key -> its `ConvolutionRun` update this frame, for the convolutions of a run

        def mac(node: FrameNode, values: dict):
            kernel = self._kernels[node.key]
            if whole_frame_dense and isinstance(kernel, SparseConv):
                value = self._mac_input(node, values)
                if kernel.chooses_in_graph:  # the samples the next frame's choice compares against
                    kernel.chooses_dense(value)
                summed = kernel.summed(value)
                handed.append((kernel, value, summed))
                macs.append(tf.constant(0, tf.int64))
                executed.append(tf.constant(self.dense_macs[node.key], tf.int64))
                return self._mac_output(node, kernel.activate(summed))
            output, counted, done = self._mac(node, values, fused, handed, ran)
            macs.append(counted)
            executed.append(done)
            return output

        # On a frame run densely as a whole the epilogues' layers run in TensorFlow like the others.
        chains = [*self.fusion.chains.values(), *self.finishes.values()]
        absorbed = {} if whole_frame_dense else {id(n): lambda n, values: fused[id(n.output)]
                                                 for chain in chains for n in chain.absorbed}
        values = self.plan.run(frame, {**self._handlers, "mac": mac}, absorbed)
        output = self.plan.output(values)
        if handed:
            handovers = []
            for kernel, value, summed in handed:
                chain = self._chain_of.get(kernel)
                states = [values[chain.out]] + ([values[chain.pooled]] if chain.pooled is not None else []) if chain else []
                side = self._side_sums(kernel, values) if whole_frame_dense and kernel.sides else None
                handovers.append(kernel.handover(value, summed, *states, side=side))
            with tf.control_dependencies([SparseConv.keep([kernel for kernel, *_ in handed], handovers)]):
                output = tf.nest.map_structure(tf.identity, output)
        as_ints = lambda counts: tf.stack([tf.cast(c, tf.int64) for c in counts]) if counts else tf.zeros(0, tf.int64)
        return output, as_ints(macs), as_ints(executed)

    def _side_sums(self, kernel: SparseConv, values: dict):
        """The sums (bias included, before their activation) of the side convolutions of ``kernel``'s output pass on a
        frame computed as a whole, concatenated on channels, as the pass keeps them: the layers' outputs where their
        activations are linear (HED's), else computed again."""
        sides = self._finish_of[kernel].sides
        if any(side.layer.activation is not keras.activations.linear for side in sides):
            return kernel.side_sums(self._mac_input(sides[0], values))
        return tf.concat([tf.reshape(values[id(side.output)], (*kernel.side_shape[:3], -1)) for side in sides], -1)

    def _mac_input(self, node: FrameNode, values: dict):
        value = values[id(node.input)]
        return tf.reshape(value, (-1, *value.shape[2:])) if node.time_distributed else value

    def _mac_output(self, node: FrameNode, output):
        return output[:, None] if node.time_distributed else output

    def _mac(self, node: FrameNode, values: dict, fused: dict, handed: list, ran: dict):
        if node.key in self.runs:  # the first of a run: every convolution of it, in one call
            keys, run = self.runs[node.key]
            ran.update(zip(keys, run.update(self._mac_input(node, values))))
        if node.key in ran:
            return self._output_pass(node, fused, *ran.pop(node.key))
        kernel = self._kernels[node.key]
        if isinstance(kernel, SparseConv) and kernel.source is not None:
            # Its changes come as a list: the producer's output (a token, or the tensor) only orders the steps.
            value = values[id(node.input)]
        else:
            value = self._mac_input(node, values)
        chain = self.fusion.chains.get(node.key)
        if chain is not None:
            (token, *wholes), counted, executed = kernel.update(value)
            for absorbed in chain.absorbed:
                fused[id(absorbed.output)] = token
            for which, whole in zip(kernel.wholes, wholes):
                tensor = chain.out if which == "out" else chain.pooled
                fused[tensor] = tf.reshape(whole, self._shapes[tensor])
            return fused.get(id(node.output), token), counted, executed
        finish = self.finishes.get(node.key)
        if finish is not None:
            output, counted, executed = kernel.update(value, lambda full: self._finish(node, finish, full), handed)
            output, *sides = output if finish.sides else [output]
            return self._output_pass(node, fused, output, sides, counted, executed)
        if isinstance(kernel, SparseConv):
            output, counted, executed = kernel.update(value, handovers=handed)
            return self._mac_output(node, output), counted, executed
        if kernel is not None:
            output, counted, executed = kernel.update(value)
            return self._mac_output(node, output), counted, executed
        counted = tf.constant(0, tf.int64)
        if self.count:  # without counting, no copy of the input is kept
            previous = self._state[node.key]
            counted = geometry.changed_macs(node.stages, value, previous)
            previous.assign(value)
        # A side convolution of an output pass (`output_pass_chains`) was computed there.
        output = fused[id(node.output)] if id(node.output) in fused else graph_lib.call_node(node.node, values)
        return output, counted, tf.constant(self.dense_macs[node.key], tf.int64)

    def _output_pass(self, node: FrameNode, fused: dict, output, sides: list, counted, executed):
        """What a convolution's output pass computed, as the plan's values: its side convolutions' outputs, and its
        chain's output (with a pooling in the pass, the pooled output: the only reader of the former), for every
        layer the pass absorbed (read by nobody but the last). ``output`` None: a convolution of a run but the
        last, whose output nobody but the next convolution of the run reads (``counted`` stands in)."""
        finish = self.finishes[node.key]
        for side, side_output in zip(finish.sides, sides):
            fused[id(side.output)] = tf.reshape(side_output, self._shapes[id(side.output)])
        finished = counted if output is None else tf.reshape(
            output, self._shapes[finish.out if finish.pooled is None else finish.pooled])
        for absorbed in finish.absorbed:
            fused[id(absorbed.output)] = finished
        if output is None or finish.out == id(node.output):
            return finished, counted, executed
        return self._mac_output(node, output), counted, executed

    def _finish(self, node: FrameNode, chain: FusedChain, output):
        """The layers of an output-pass epilogue (``chain``, after MAC ``node``) run in TensorFlow, as the dense
        model runs them, on the activated ``output`` of a frame computed densely; ``output``'s shape kept."""
        value = self._mac_output(node, output)
        for absorbed in chain.absorbed:
            if id(absorbed.output) != chain.pooled:  # a pooling in the output pass: the kernel's (`SparseConv.pools`)
                value = self.plan.evaluate(absorbed, {id(absorbed.input): value})
        return tf.reshape(value, output.shape)

    # ------------------------------------------------------------------ the plan's other handlers
    def _memory(self, node: FrameNode, values: dict):
        kernel = self._remembered.get(node.key)
        if kernel is not None:  # an output pass's threshold on a frame run densely as a whole: its state in the kernel
            value = values[id(node.input)]
            return tf.ensure_shape(tf.numpy_function(kernel.remember, [value], tf.float32), value.shape)
        sent = node.layer.memory_step(self._state[node.key], values[id(node.input)])
        self._state[node.key].assign(sent)
        return sent

    def _previous_frame(self, node: FrameNode, values: dict):
        # On frame 0 the previous frame is the frame itself, as `FrameDifference` pads a clip.
        source = values[id(node.input)]
        previous = tf.where(self._frames == 0, source, self._state[node.key])
        self._state[node.key].assign(source)
        window = tf.concat([previous, source], axis=1)
        return graph_lib.call_node(node.node, {id(node.input): window})[:, 1:]

    def _time_mean(self, node: FrameNode, values: dict):
        total = self._state[node.key].assign_add(values[id(node.input)][:, 0])
        return total / tf.cast(self._frames + 1, tf.float32)
