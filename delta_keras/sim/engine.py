"""`DeltaInference`: runs a clip model frame by frame as a delta accelerator would, counting its MACs."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from delta_keras import registry
from delta_keras.layers import DeltaActivation
from delta_keras.models import graph as graph_lib
from delta_keras.sim import geometry
from delta_keras.sim.count import check_clips, node_keys

# Frame-wise layers and operations without MACs (the registry's "affine" and "nonlinear" roles) are
# re-evaluated on the accumulated state every frame; the change of their output is passed on. Non-linear ones
# must be. For affine ones (batch normalisation, add, average pooling, padding, reshapes, the input's
# `ImagePreprocessing`...) it equals propagating the change through them, but exactly in float: a change that
# cancels (a quantised value moving within an average pool) is an exact zero, as on integer hardware, rather
# than a rounding residue that would charge the next MAC layer.
# Nodes that only view their input: its value and its change pass through the same view. With one
# frame per step, folding time into batch is a squeeze of the time axis and unfolding an expand.
def _identity(x):
    return x


def _fold(x):
    return x[:, 0]


def _unfold(x):
    return x[:, None]


# Named functions, not lambdas: AutoGraph cannot tell lambdas on one line apart and warns when it traces them.
VIEWS = {"identity": _identity, "fold": _fold, "unfold": _unfold}


class FrameNode:
    """How a frame-by-frame executor (this engine, `delta_keras.runtime.DeltaRuntime`) runs one graph node.

    ``kind`` is one of ``mac``, ``evaluate`` (re-evaluated on the accumulated state), ``identity``,
    ``previous_frame`` (a layer that also reads the previous frame), ``time_mean``, ``fold`` or ``unfold``.
    """

    def __init__(self, node, key: str, time: int | None):
        self.node, self.key, self.op = node, key, node.operation
        self.layer, self.time_distributed = geometry.unwrap(self.op)
        self.kind = self._kind(time)
        self.stages = None
        if self.kind == "mac":
            shape = node.input_tensors[0].shape
            self.stages = geometry.stages(self.layer, shape[2:] if self.time_distributed else shape[1:])

    def _kind(self, time):
        layer, name = self.layer, type(self.layer).__name__
        if isinstance(layer, keras.Model):
            raise NotImplementedError(f"{self.key}: nested models are not supported by DeltaInference; "
                                      "build the clip model as one flat graph")
        kind = registry.layer_kind(layer)
        role = kind.role if kind is not None else None
        if geometry.is_mac_layer(layer):
            if kind is not None and kind.recurrent:
                raise NotImplementedError(f"{self.key}: recurrent layers are not supported by DeltaInference")
            geometry.stages(layer, self.node.input_tensors[0].shape[1:])  # raises UncountableLayer early
            return "mac"
        if role == "previous_frame" and self.time_distributed:
            raise NotImplementedError(f"{self.key}: {name} needs the time axis; it cannot run inside TimeDistributed")
        if role in ("fold", "unfold", "previous_frame"):
            return role
        if isinstance(layer, DeltaActivation) and layer.output_mode != "quantized":
            raise NotImplementedError(f"{self.key}: DeltaInference runs DeltaActivation(output='quantized') only "
                                      f"(got output={layer.output_mode!r}): the engine computes the deltas itself")
        if registry.averages_over_time(layer) and not self.time_distributed:
            return "time_mean"  # averaging over the clip's time axis: a running mean when streaming
        if hasattr(layer, "axis") and layer.axis is None:
            raise NotImplementedError(f"{self.key}: {name} over every axis mixes the clip's frames")
        if not isinstance(layer, keras.layers.Layer):
            # `ops.reshape` folding time into batch and back: with one frame per step, a squeeze and an
            # expand. (A `Reshape` layer keeps the batch axis, so it cannot fold time.)
            shape_in = tuple(self.node.input_tensors[0].shape)
            shape_out = tuple(self.node.output_tensors[0].shape)
            if len(shape_out) == len(shape_in) - 1 and shape_out[1:] == shape_in[2:] and shape_in[1] == time:
                return "fold"
            if len(shape_out) == len(shape_in) + 1 and shape_out[2:] == shape_in[1:] and shape_out[1] == time:
                return "unfold"
        if role in ("affine", "nonlinear"):
            return "evaluate"
        if role == "pass_through":
            return "identity"
        raise NotImplementedError(f"{self.key}: DeltaInference cannot run {name} (supported: the registry's MAC, "
                                  "affine, nonlinear, pass-through, time-fold and previous-frame layers; teach it "
                                  "a layer with delta_keras.registry.register_layer)")


class DeltaInference:
    """Runs a clip model frame by frame as a delta accelerator: linear layers update accumulators with changes.

    Each MAC layer (convolution, depthwise, dense) keeps its accumulated output and updates it with only
    the change of its input. The other layers act on one frame each (batch normalisation, add, pooling,
    ReLU, softmax, the `DeltaActivation` and `Quantize` quantisers, `ImagePreprocessing`...): they are
    re-evaluated on the accumulated state and pass on the change of their output. For an affine layer
    that equals propagating the change through it, but exactly in float, so a change that cancels is a
    zero, as on integer hardware. Every tensor starts from zero, so frame 0 is charged for its nonzero
    activations. The engine counts the MACs it performs from its own work: per linear stage, the layer's
    operation on the 0/1 mask of the nonzero changes with an all-ones kernel, summed (NeuroBench's
    method), independently of `count_macs`.

    Supported graphs: flat functional clip models whose image layers run on time folded into batch
    (``(B*T, ...)``, by `FoldTime` / `UnfoldTime` or by reshapes) or inside `TimeDistributed`, with
    delta_keras' layers: everything `delta_keras.sparsify`, `strip_sparsity` and `video_classifier`
    build. `FrameDifference` keeps the previous input frame as state. A `GlobalAveragePooling1D` over
    time (or ``ops.mean(x, axis=1)``) becomes a running mean, so after the last frame the output equals
    the forward pass over the clip; MAC layers after it then run every frame (``count_macs`` charges
    them once per clip). Recurrent layers, nested models, `DeltaActivation(output="delta")` and layers
    of unknown kind raise `NotImplementedError` naming the layer.

    Args:
        model: a clip model, input ``(batch, frames, ...)``.

    Example:

    >>> engine = DeltaInference(model)            # doctest: +SKIP
    >>> outputs = engine.run(clips)               # (batch, frames, ...) like model(clips)  # doctest: +SKIP
    >>> engine.macs["conv1"]                      # MACs per frame, summed over the batch  # doctest: +SKIP
    >>> engine.reset(); y0 = engine.step(frame0)  # streaming: one frame at a time  # doctest: +SKIP
    """

    def __init__(self, model: keras.Model):
        calls = graph_lib.layer_calls(model)  # first: a subclassed model has no graph (a clear error)
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise NotImplementedError(f"{model.name}: DeltaInference runs single-input, single-output models")
        self.model = model
        self.time = model.inputs[0].shape[1]
        self._nodes = [FrameNode(node, key, self.time) for node, key in node_keys(calls)]
        self.reset()

    def reset(self) -> None:
        """Forgets every state (call between videos): all tensors and accumulators back to zero."""
        self._values = {}  # id(KerasTensor) -> current value
        self._accumulators = {}  # MAC node key -> accumulated linear output (bias excluded)
        self._sums = {}  # time-mean node key -> running sum
        self._previous = {}  # previous-frame node key -> its input at the previous frame
        self._sent = {}  # memory-mode DeltaActivation node key -> what it last sent, per neuron
        self.frames = 0
        self.accumulator_error = {node.key: 0.0 for node in self._nodes if node.kind == "mac"}
        self.macs = {node.key: [] for node in self._nodes if node.kind == "mac"}

    def step(self, frame):
        """Feeds one frame ``(batch, ...)`` (or ``(...)``) and returns the model's output for it.

        Returns:
            The output computed with the state carried from previous frames: for a per-frame output
            ``(batch, 1, ...)``; after a time average, the average over the frames seen so far.
        """
        frame_shape = tuple(self.model.inputs[0].shape[2:])
        frame = tf.convert_to_tensor(frame, "float32")
        if tuple(frame.shape) == frame_shape:
            frame = frame[None]
        if tuple(frame.shape[1:]) != frame_shape:
            raise ValueError(f"{self.model.name}: a frame must have shape (batch, *{frame_shape}), got {frame.shape}")
        changes = {}
        self._set(self.model.inputs[0], frame[:, None], changes)
        for node in self._nodes:
            self._run(node, changes)
        self.frames += 1
        return self._values[id(self.model.outputs[0])]

    def run(self, clips) -> np.ndarray:
        """Runs clips ``(batch, frames, ...)`` from a reset state, frame by frame.

        Returns:
            The outputs like ``model(clips)``: per-frame outputs stacked on axis 1, or the final output
            of a model that averages over time.
        """
        clips = check_clips(self.model, clips)
        self.reset()
        outputs = [self.step(clips[:, t]) for t in range(clips.shape[1])]
        if self.model.outputs[0].shape[1:2] == (self.time,) and len(self.model.outputs[0].shape) >= 3:
            return np.concatenate([np.asarray(o) for o in outputs], axis=1)
        return np.asarray(outputs[-1])

    def _set(self, tensor, value, changes):
        """Stores a tensor's new value and its change since the previous frame."""
        previous = self._values.get(id(tensor))
        changes[id(tensor)] = value if previous is None else value - previous
        self._values[id(tensor)] = value

    def _run(self, node: FrameNode, changes: dict) -> None:
        output = node.node.output_tensors[0]
        inputs = node.node.input_tensors
        if node.kind == "mac":
            self._set(output, self._mac(node, changes[id(inputs[0])]), changes)
        elif node.kind == "evaluate":
            if isinstance(node.layer, DeltaActivation) and node.layer.memory:
                value = self._values[id(inputs[0])]
                sent = node.layer.memory_step(self._sent.get(node.key, tf.zeros_like(value)), value)
                self._sent[node.key] = sent
                self._set(output, sent, changes)
            elif isinstance(node.layer, DeltaActivation):
                # Through the class: Keras replaces `layer.quantize` on instances by its own model-quantisation
                # wrapper, which rejects a tensor argument.
                self._set(output, node.layer.quantize_values(self._values[id(inputs[0])]), changes)
            else:
                self._set(output, self._call(node, self._values), changes)
        elif node.kind in VIEWS:
            view, source = VIEWS[node.kind], id(inputs[0])
            self._values[id(output)], changes[id(output)] = view(self._values[source]), view(changes[source])
        elif node.kind == "previous_frame":
            # The layer's own op on (previous frame, frame), last frame kept. On frame 0 the previous frame
            # is the frame itself, as `FrameDifference` pads the clip with its first frame.
            frame = self._values[id(inputs[0])]
            window = tf.concat([self._previous.get(node.key, frame), frame], axis=1)
            self._previous[node.key] = frame
            self._set(output, self._call(node, {id(inputs[0]): window})[:, 1:], changes)
        elif node.kind == "time_mean":
            total = self._sums.get(node.key, 0.0) + self._values[id(inputs[0])][:, 0]
            self._sums[node.key] = total
            self._set(output, total / (self.frames + 1), changes)

    def _call(self, node: FrameNode, values: dict):
        return graph_lib.call_node(node.node, values)

    def _mac(self, node: FrameNode, change):
        """Updates a MAC layer's accumulator with the change of its input; returns the layer's new output.

        The MACs performed are counted from the nonzero changes. The output is the layer's own call on
        its reconstructed input, the value an accumulator with exact (integer) arithmetic holds: a float
        accumulator would drift from it by rounding, and a quantiser downstream near a rounding tie would
        then differ from the forward pass. The float64 delta accumulator is kept alongside, and its largest
        distance to the output is reported in ``accumulator_error``.
        """
        layer, shape = node.layer, change.shape
        if node.time_distributed:
            change = tf.reshape(change, (-1, *shape[2:]))
        change = tf.cast(change, "float64")
        macs = 0.0
        for stage in node.stages:
            # The MACs performed: the layer's own op on the mask of nonzero changes, all-ones kernel, summed.
            touched = stage.apply(tf.cast(tf.not_equal(change, 0), "float32"), tf.ones(stage.kernel.shape))
            macs += float(tf.reduce_sum(tf.cast(touched, "float64")))
            change = stage.apply(change, tf.constant(stage.kernel, "float64"))
        self.macs[node.key].append(int(macs))
        accumulated = self._accumulators.get(node.key, 0.0) + change
        self._accumulators[node.key] = accumulated
        output = self._call(node, self._values)
        linear = tf.cast(accumulated, "float32")
        if getattr(layer, "use_bias", False):
            linear = linear + layer.bias
        if getattr(layer, "activation", None) is not None:
            linear = layer.activation(linear)
        linear = tf.reshape(linear, output.shape)
        error = float(tf.reduce_max(tf.abs(linear - tf.cast(output, "float32")))) if linear.shape.num_elements() else 0.0
        self.accumulator_error[node.key] = max(self.accumulator_error[node.key], error)
        return output
