"""`DeltaInference`: runs a clip model frame by frame as a delta accelerator would, counting its MACs."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from delta_keras.frames import FrameNode, FramePlan, check_clips
from delta_keras.models import graph as graph_lib


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
        self.plan = FramePlan(model, "DeltaInference")
        self.model = model
        self.time = model.inputs[0].shape[1]
        self._handlers = {"mac": self._mac, "memory": self._memory, "previous_frame": self._previous_frame,
                          "time_mean": self._time_mean}
        self.reset()

    def reset(self) -> None:
        """Forgets every state (call between videos): all tensors and accumulators back to zero."""
        self._last = {}  # id(KerasTensor) -> its value at the previous frame (none: zero)
        self._accumulators = {}  # MAC node key -> accumulated linear output (bias excluded)
        self._sums = {}  # time-mean node key -> running sum
        self._previous = {}  # previous-frame node key -> its input at the previous frame
        self._sent = {}  # memory-mode DeltaActivation node key -> what it last sent, per neuron
        self.frames = 0
        self.accumulator_error = {key: 0.0 for key in self.plan.mac_keys}
        self.macs = {key: [] for key in self.plan.mac_keys}

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
        values = self.plan.run(frame, self._handlers)
        self._last = values
        self.frames += 1
        return self.plan.output(values)

    def run(self, clips) -> np.ndarray:
        """Runs clips ``(batch, frames, ...)`` from a reset state, frame by frame.

        Returns:
            The outputs like ``model(clips)``: per-frame outputs stacked on axis 1, or the final output
            of a model that averages over time.
        """
        clips = check_clips(self.model, clips)
        self.reset()
        return self.plan.stack([self.step(clips[:, t]) for t in range(clips.shape[1])])

    # ------------------------------------------------------------------ the plan's handlers
    def _change(self, tensor, values: dict):
        """A tensor's change since the previous frame (every tensor starts from zero)."""
        previous = self._last.get(id(tensor))
        return values[id(tensor)] if previous is None else values[id(tensor)] - previous

    def _memory(self, node: FrameNode, values: dict):
        value = values[id(node.input)]
        sent = node.layer.memory_step(self._sent.get(node.key, tf.zeros_like(value)), value)
        self._sent[node.key] = sent
        return sent

    def _previous_frame(self, node: FrameNode, values: dict):
        # The layer's own op on (previous frame, frame), last frame kept. On frame 0 the previous frame is the
        # frame itself, as `FrameDifference` pads the clip with its first frame.
        frame = values[id(node.input)]
        window = tf.concat([self._previous.get(node.key, frame), frame], axis=1)
        self._previous[node.key] = frame
        return graph_lib.call_node(node.node, {id(node.input): window})[:, 1:]

    def _time_mean(self, node: FrameNode, values: dict):
        total = self._sums.get(node.key, 0.0) + values[id(node.input)][:, 0]
        self._sums[node.key] = total
        return total / (self.frames + 1)

    def _mac(self, node: FrameNode, values: dict):
        """Updates a MAC layer's accumulator with the change of its input; returns the layer's new output.

        The MACs performed are counted from the nonzero changes. The output is the layer's own call on
        its reconstructed input, the value an accumulator with exact (integer) arithmetic holds: a float
        accumulator would drift from it by rounding, and a quantiser downstream near a rounding tie would
        then differ from the forward pass. The float64 delta accumulator is kept alongside, and its largest
        distance to the output is reported in ``accumulator_error``.
        """
        layer, change = node.layer, self._change(node.input, values)
        shape = change.shape
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
        output = graph_lib.call_node(node.node, values)
        linear = tf.cast(accumulated, "float32")
        if getattr(layer, "use_bias", False):
            linear = linear + layer.bias
        if getattr(layer, "activation", None) is not None:
            linear = layer.activation(linear)
        linear = tf.reshape(linear, output.shape)
        error = float(tf.reduce_max(tf.abs(linear - tf.cast(output, "float32")))) if linear.shape.num_elements() else 0.0
        self.accumulator_error[node.key] = max(self.accumulator_error[node.key], error)
        return output
