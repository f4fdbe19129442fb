"""The frame plan: a clip model compiled once into the nodes a frame-by-frame executor runs, and the one
dispatch that runs them.

Each node of the model's graph gets a *kind*, from the layer kinds of `delta_keras.registry`:

- ``mac``: a MAC layer (its exact linear ``stages`` attached): what an executor updates with the change of
  its input;
- ``quantize`` / ``memory``: a `DeltaActivation` quantising each frame, or sending a neuron's value only when
  it moved past its threshold (state: what it last sent);
- ``previous_frame``: a layer that also reads the previous frame (`FrameDifference`; state: that frame);
- ``time_mean``: an average over the clip's time axis, a running mean when streaming (state: the sum);
- ``identity``, ``fold``, ``unfold``: views of their input (with one frame per step, folding time into
  the batch is a squeeze of the time axis and unfolding an expand);
- ``evaluate``: any other frame-wise layer (affine or nonlinear), re-evaluated on the frame's values.

A MAC layer over the clip's time axis (a temporal head's ``Conv1D``) reads several frames, later ones too: it and
every node after it form the plan's tail (`Tail`), which the executors evaluate at each step on the sequences of
its inputs over the frames so far.

`FramePlan.run` walks the nodes in graph order, runs the views, quantisers and frame-wise layers itself and
hands every other node (`HANDLED`: MAC layers and the kinds with state) to the executor's handler of its kind:
the simulator's engine (`delta_keras.sim.DeltaInference`, which counts and proves) and the runtime
(`delta_keras.runtime.DeltaRuntime`, which executes) differ only in their handlers.
"""

from __future__ import annotations

from typing import Callable, Mapping

import keras
import numpy as np
import tensorflow as tf

from delta_keras import registry
from delta_keras.frames import geometry
from delta_keras.layers import DeltaActivation
from delta_keras.models import graph as graph_lib


def _identity(x):
    return x


def _fold(x):
    return x[:, 0]


def _unfold(x):
    return x[:, None]


# Named functions, not lambdas: AutoGraph cannot tell lambdas on one line apart and warns when it traces them.
VIEWS = {"identity": _identity, "fold": _fold, "unfold": _unfold}


def _quantize(node, values: dict):
    # Through the class: Keras replaces `layer.quantize` on instances by its own model-quantisation wrapper,
    # which rejects a tensor argument.
    return node.layer.quantize_values(values[id(node.input)])


def _evaluate(node, values: dict):
    return graph_lib.call_node(node.node, values)


# Kinds without state, which the plan runs itself on the frame's values.
STATELESS = {"quantize": _quantize, "evaluate": _evaluate}
# The kinds an executor handles (`FramePlan.run`): those with state or work of its own.
HANDLED = ("mac", "memory", "previous_frame", "time_mean")


def node_keys(nodes, prefix: str = ""):
    """Yields ``(node, key)``: the layer's name, with ``:k`` for the k-th call of a shared layer."""
    calls = {}
    for node in nodes:
        layer, _ = registry.unwrap(node.operation)
        calls[id(layer)] = calls.get(id(layer), -1) + 1
        name = prefix + getattr(layer, "name", type(layer).__name__)
        yield node, name + (f":{calls[id(layer)]}" if calls[id(layer)] else "")


def check_clips(model, clips) -> np.ndarray:
    """Validates clips against the model's input: ``(N, T, ...)`` or one clip ``(T, ...)``; returns float32 NumPy."""
    clips = np.asarray(clips, "float32")
    expected = tuple(model.inputs[0].shape)
    if clips.ndim == len(expected) - 1:
        clips = clips[None]
    if clips.ndim != len(expected) or any(e is not None and e != c for e, c in zip(expected[1:], clips.shape[1:])):
        raise ValueError(f"{model.name}: clips of shape {clips.shape} do not fit the model input {expected} "
                         "(expected (clips, frames, ...) or a single clip (frames, ...))")
    if clips.shape[1] < 1 or clips.shape[0] < 1:
        raise ValueError(f"{model.name}: need at least one clip of one frame, got shape {clips.shape}")
    return clips


class FrameNode:
    """One node of the plan: its graph node, key (layer name, ``:k`` for a shared layer's k-th call), layer
    (unwrapped from ``TimeDistributed``), ``kind`` (see the module docstring) and, for ``mac``, its stages."""

    def __init__(self, node, key: str, time: int | None, executor: str):
        self.node, self.key, self.op = node, key, node.operation
        self.layer, self.time_distributed = registry.unwrap(self.op)
        self.executor = executor
        self.kind = self._kind(time)
        self.stages = None  # a MAC node's, set by the plan: they depend on where the clip's time axis is

    @property
    def input(self):
        return self.node.input_tensors[0]

    @property
    def output(self):
        return self.node.output_tensors[0]

    def _unsupported(self, why: str) -> NotImplementedError:
        return NotImplementedError(f"{self.key}: {why}")

    def _kind(self, time):
        layer, name = self.layer, type(self.layer).__name__
        if isinstance(layer, keras.Model):
            raise self._unsupported(f"nested models are not supported by {self.executor}; build the clip model as "
                                    "one flat graph")
        kind = registry.layer_kind(layer)
        role = kind.role if kind is not None else None
        if geometry.is_mac_layer(layer):
            if kind is not None and kind.recurrent:
                raise self._unsupported(f"recurrent layers are not supported by {self.executor}")
            geometry.stages(layer, self.input.shape[1:])  # raises UncountableLayer early
            return "mac"
        if role == "previous_frame" and self.time_distributed:
            raise self._unsupported(f"{name} needs the time axis; it cannot run inside TimeDistributed")
        if role in ("fold", "unfold", "previous_frame"):
            return role
        if isinstance(layer, DeltaActivation):
            if layer.output_mode != "quantized":
                raise self._unsupported(f"{self.executor} runs DeltaActivation(output='quantized') only (got "
                                        f"output={layer.output_mode!r}): it computes the deltas itself")
            return "memory" if layer.memory else "quantize"
        if registry.averages_over_time(layer) and not self.time_distributed:
            return "time_mean"
        if hasattr(layer, "axis") and layer.axis is None:
            raise self._unsupported(f"{name} over every axis mixes the clip's frames")
        if registry.is_operation(layer):
            # `ops.reshape` folding time into batch and back. (A `Reshape` layer keeps the batch axis, so it
            # cannot fold time.)
            shape_in, shape_out = tuple(self.input.shape), tuple(self.output.shape)
            if len(shape_out) == len(shape_in) - 1 and shape_out[1:] == shape_in[2:] and shape_in[1] == time:
                return "fold"
            if len(shape_out) == len(shape_in) + 1 and shape_out[2:] == shape_in[1:] and shape_out[1] == time:
                return "unfold"
        if role in ("affine", "nonlinear"):
            return "evaluate"
        if role == "pass_through":
            return "identity"
        raise self._unsupported(f"{self.executor} cannot run {name} (supported: the registry's MAC, affine, "
                                "nonlinear, pass-through, time-fold and previous-frame layers; teach it a layer "
                                "with delta_keras.registry.register_layer)")


class FramePlan:
    """A clip model compiled once into frame nodes (`FrameNode`), for a frame-by-frame executor.

    Args:
        model: a flat functional clip model with one input ``(batch, frames, ...)`` and one output.
        executor: the executor's name, for error messages.

    Raises:
        NotImplementedError: a graph or layer the executors cannot run; the message names the layer.
    """

    def __init__(self, model: keras.Model, executor: str):
        calls = graph_lib.layer_calls(model)  # first: a subclassed model has no graph (a clear error)
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise NotImplementedError(f"{model.name}: {executor} runs single-input, single-output models")
        self.model = model
        self.time = model.inputs[0].shape[1]
        self.nodes = [FrameNode(node, key, self.time, executor) for node, key in node_keys(calls)]
        # Which tensors keep the clip's time axis (of length 1 per step): the input, and what follows it until a
        # fold or a time mean removes it (an unfold gives it back).
        self.clip_level = {id(model.inputs[0]): True}
        for node in self.nodes:
            level = self.clip_level.get(id(node.input), False) if node.node.input_tensors else False
            level = {"fold": False, "unfold": True, "time_mean": False}.get(node.kind, level)
            for tensor in node.node.output_tensors:
                self.clip_level[id(tensor)] = level
        # A MAC layer over the clip's time axis (a temporal head's Conv1D) reads several frames, future ones too,
        # so it has no frame-by-frame value: it and every node after it form the tail (`Tail`), evaluated at each
        # step on the sequences of its inputs over the frames so far. The nodes before it run frame by frame.
        self.tail_nodes, tail_tensors = [], set()
        for node in self.nodes:
            if self.mixes_frames(node) or any(id(t) in tail_tensors for t in node.node.input_tensors):
                self.tail_nodes.append(node)
                tail_tensors.update(id(t) for t in node.node.output_tensors)
        self.nodes = [node for node in self.nodes if node not in self.tail_nodes]
        self.tail_inputs = list({id(t): t for node in self.tail_nodes for t in node.node.input_tensors
                                 if id(t) not in tail_tensors}.values())
        if self.tail_nodes:
            first = self.tail_nodes[0]
            if self.clip_level[id(model.outputs[0])]:
                raise NotImplementedError(
                    f"{first.key}: {type(first.layer).__name__} runs over the clip's time axis (it mixes frames) and "
                    f"the model's output keeps that axis, so a frame's output would change after {executor} returned "
                    "it; streaming needs an output without a time axis (e.g. a temporal head ending in a time "
                    "average)")
            for tensor in self.tail_inputs:
                if not self.clip_level[id(tensor)]:
                    raise NotImplementedError(f"{first.key}: the layers over the clip's time axis read a tensor "
                                              f"without one ({tensor.name}); {executor} cannot stream them")
        self.mac_nodes = {node.key: node for node in self.nodes if node.kind == "mac"}
        self.mac_keys = list(self.mac_nodes)

        # Each MAC layer's stages on one step's input (a clip-level input keeps a time axis of length 1), their
        # fan-out maps computed now, eagerly: constants of the executors' compiled steps.
        shapes = self.frame_shapes(1)
        for node in self.mac_nodes.values():
            node.stages = geometry.stages(node.layer, shapes[id(node.input)][2 if node.time_distributed else 1:])
            for stage in node.stages:
                stage.fan_out_rows(False)

    def mixes_frames(self, node: FrameNode) -> bool:
        """Whether ``node`` is a MAC layer over the clip's time axis (not one that maps only the last axis)."""
        kind = registry.layer_kind(node.layer)
        return (node.kind == "mac" and bool(self.clip_level.get(id(node.input))) and not node.time_distributed
                and not (kind is not None and kind.last_axis))

    def frame_shapes(self, batch_size: int) -> dict[int, tuple]:
        """The shape of every tensor of the graph for one frame of ``batch_size`` clips, by tensor id."""
        shapes = {}
        for tensor in [self.model.inputs[0], *(t for node in self.nodes for t in node.node.output_tensors)]:
            tail = tensor.shape[2:] if self.clip_level[id(tensor)] else tensor.shape[1:]
            shapes[id(tensor)] = (batch_size, 1, *tail) if self.clip_level[id(tensor)] else (batch_size, *tail)
        return shapes

    def state_shapes(self, batch_size: int) -> dict[str, tuple]:
        """Per stateful node (by key), the shape of what it keeps between frames for ``batch_size`` clips: its
        input at the previous frame (``mac``, ``previous_frame``), what it last sent (``memory``) or a running sum,
        which has no time axis (``time_mean``)."""
        shapes = self.frame_shapes(batch_size)
        states = {}
        for node in self.nodes:
            if node.kind in ("mac", "memory", "previous_frame", "time_mean"):
                shape = shapes[id(node.input)]
                states[node.key] = (shape[0], *shape[2:]) if node.kind == "time_mean" else shape
        return states

    def run(self, frame, handlers: Mapping[str, Callable[[FrameNode, dict], object]],
            overrides: Mapping[int, Callable[[FrameNode, dict], object]] | None = None) -> dict:
        """Runs one frame ``(batch, ...)`` through the nodes: views and `STATELESS` kinds here, each of `HANDLED`
        by its handler (``handler(node, values) -> output``, ``values`` the frame's tensors so far by id), and
        the nodes in ``overrides`` (by ``id(node)``) by their own handler instead. Returns the values."""
        values = {id(self.model.inputs[0]): frame[:, None]}
        overrides = overrides or {}
        for node in self.nodes:
            if id(node) in overrides:
                output = overrides[id(node)](node, values)
            elif node.kind in HANDLED:
                output = handlers[node.kind](node, values)
            else:
                output = self.evaluate(node, values)
            values[id(node.output)] = output
        return values

    @staticmethod
    def evaluate(node: FrameNode, values: dict):
        """The output of a node without state (a view or a `STATELESS` kind) on the frame's ``values``."""
        if node.kind in VIEWS:
            return VIEWS[node.kind](values[id(node.input)])
        return STATELESS[node.kind](node, values)

    @property
    def results(self) -> list:
        """The tensors a step hands back: the model's output, or with a tail the tail's inputs (`Tail` turns their
        sequences into the output)."""
        return self.tail_inputs if self.tail_nodes else [self.model.outputs[0]]

    def output(self, values: dict):
        """What a step returns of the frame's ``values``: the model's output, or with a tail the list of the tail's
        inputs."""
        if self.tail_nodes:
            return [values[id(tensor)] for tensor in self.results]
        return values[id(self.model.outputs[0])]

    def tail(self, compiled: bool) -> Tail | None:
        """The `Tail` of this plan (a compiled function where ``compiled``), or None where it has none."""
        return Tail(self, compiled) if self.tail_nodes else None

    @property
    def output_per_frame(self) -> bool:
        """Whether the model's output keeps the clip's time axis (one output per frame), or has none (after a
        time mean: each step's output is the mean so far)."""
        return self.clip_level[id(self.model.outputs[0])]

    def stack(self, outputs: list) -> np.ndarray:
        """The outputs of a clip's steps as the model would return them for the clip: per-frame outputs stacked
        on the time axis, or the last one where the output has no time axis (after a time mean)."""
        if self.output_per_frame:
            return np.concatenate([np.asarray(o) for o in outputs], axis=1)
        return np.asarray(outputs[-1])


class Tail:
    """The layers over the clip's time axis and everything after them (`FramePlan.tail_nodes`; a temporal head: a
    ``Conv1D`` over the frames' features, a time average, the logits), evaluated at every step on the sequences of
    their inputs over the frames seen so far: a step's output is the model's output on the clip so far, and after
    the last frame the model's output on the clip.

    Where the tail is a time average of positions that each read a bounded window of frames (``Conv1D`` layers of
    stride 1 and "same" or "causal" padding, and layers that act on each position alone) followed by layers of the
    average, a step costs the same at any frame: the tail keeps the inputs of the window's last frames and the sum
    of the positions no later frame can change (whose window lies inside the frames seen), and evaluates only the
    positions near the end (with the zero padding after the last frame, as the model does on the clip so far).
    Any other tail is evaluated again on every frame since `reset`, at a cost that grows with them.

    Args:
        plan: the frame plan whose tail this is.
        compiled: run the tail as `tf.function`s (traced again when the frame count first changes, then for any).
    """

    def __init__(self, plan: FramePlan, compiled: bool):
        self.plan = plan
        self.window = _time_window(plan)
        step = self._window_step if self.window is not None else self._whole_step
        self._step = tf.function(step, reduce_retracing=True) if compiled else step
        self.reset()

    def reset(self) -> None:
        self.sequences: list | None = None
        self.frames = 0
        self.final_sum = None  # with a window: the sum of the positions no later frame changes

    def __call__(self, frame_values: list):
        """Appends one frame's tail inputs ``(batch, 1, ...)`` (`FramePlan.output`) to the sequences and returns the
        model's output on the frames so far."""
        frame_values = list(frame_values)
        if self.sequences is None:  # empty sequences of the frames' shapes
            self.sequences = [value[:, :0] for value in frame_values]
            if self.window is not None:
                mean = self.plan.tail_nodes[self.window[0]]
                self.final_sum = tf.zeros((frame_values[0].shape[0], *mean.input.shape[2:]), frame_values[0].dtype)
        self.frames += 1
        if self.window is None:
            output, self.sequences = self._step(self.sequences, frame_values)
        else:
            output, self.sequences, self.final_sum = self._step(self.sequences, frame_values, self.final_sum,
                                                                tf.constant(self.frames))
        return output

    def _whole_step(self, sequences: list, frame_values: list):
        sequences = [tf.concat([sequence, value], axis=1) for sequence, value in zip(sequences, frame_values)]
        return self.evaluate(*sequences), sequences

    def _window_step(self, sequences: list, frame_values: list, final_sum, frames):
        """One step with a window (see the class): the inputs of the frames the last positions read, the position
        ``t - after`` added to ``final_sum`` (the last one no later frame changes; none yet while t < after), the
        positions after it evaluated with the zero padding after frame t."""
        index, before, after = self.window
        mean = self.plan.tail_nodes[index]
        sequences = [tf.concat([sequence, value], axis=1)[:, -(before + after + 1):]
                     for sequence, value in zip(sequences, frame_values)]
        positions = self._run(self.plan.tail_nodes[:index], sequences)[id(mean.input)]
        # Frames start..t in the window; position t - after is at t - after - start.
        t, start = frames - 1, frames - tf.shape(positions)[1]
        final = t - after
        settled = final >= 0
        at = tf.maximum(final - start, 0)
        final_sum = final_sum + tf.where(settled, positions[:, at], tf.zeros_like(final_sum))
        later = tf.reduce_sum(positions[:, at + tf.cast(settled, at.dtype):], axis=1)
        # The average's own layer on one position: the model's output from the average.
        values = {id(mean.input): ((final_sum + later) / tf.cast(frames, final_sum.dtype))[:, None]}
        output = self._run(self.plan.tail_nodes[index:], (), values)[id(self.plan.model.outputs[0])]
        return output, sequences, final_sum

    def evaluate(self, *sequences):
        """The model's output from the sequences ``(batch, frames, ...)`` of the tail's inputs."""
        return self._run(self.plan.tail_nodes, sequences)[id(self.plan.model.outputs[0])]

    def _run(self, nodes: list, sequences, values: dict | None = None) -> dict:
        values = {**(values or {}), **{id(t): s for t, s in zip(self.plan.tail_inputs, sequences)}}
        for node in nodes:
            values[id(node.output)] = graph_lib.call_node(node.node, values)
        return values


def _time_window(plan: FramePlan) -> tuple | None:
    """``(index of the time average in the tail, frames before, frames after)`` where ``plan``'s tail averages over time positions that
    each read a bounded window of frames (see `Tail`): the frames each position reads before and after its own,
    summed over the tail's ``Conv1D`` layers. None for any other tail."""
    nodes = plan.tail_nodes
    means = [i for i, node in enumerate(nodes) if node.kind == "time_mean"]
    if not means:
        return None
    before = after = 0
    for node in nodes[:means[0]]:
        if plan.mixes_frames(node):
            layer, kind = node.layer, registry.layer_kind(node.layer)
            # A plain convolution over time alone (the registry's "conv" stages, one kernel axis), of stride 1.
            if not (kind is not None and kind.stages == "conv" and len(layer.kernel_size) == 1
                    and layer.strides == (1,) and layer.padding in ("same", "causal")
                    and layer.data_format == "channels_last"):
                return None
            span = (layer.kernel_size[0] - 1) * layer.dilation_rate[0]
            before += span if layer.padding == "causal" else span // 2
            after += 0 if layer.padding == "causal" else span - span // 2
        elif node.kind not in ("evaluate", "quantize", "identity", "mac") or not plan.clip_level[id(node.output)]:
            return None
    # The layers after the average read nothing from before it (but the average).
    earlier = {id(t) for node in nodes[:means[0]] for t in node.node.output_tensors} | {id(t) for t in plan.tail_inputs}
    if any(id(t) in earlier for node in nodes[means[0] + 1:] for t in node.node.input_tensors):
        return None
    return means[0], before, after
