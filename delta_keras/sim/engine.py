"""`DeltaInference`: runs a clip model frame by frame as a delta accelerator would, counting its MACs."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from delta_keras.frames import FrameNode, FramePlan, check_clips, geometry
from delta_keras.models import graph as graph_lib


@dataclasses.dataclass
class _Frame:
    """What the handlers of one frame read (``state``) and write (``new``, the MACs and accumulator errors of
    each MAC layer, in plan order), while the frame's function traces."""

    state: dict
    new: dict
    macs: list = dataclasses.field(default_factory=list)
    errors: list = dataclasses.field(default_factory=list)


class DeltaInference:
    """Runs a clip model frame by frame as a delta accelerator: linear layers update accumulators with changes.

    Each MAC layer (convolution, depthwise, dense) keeps its accumulated output and updates it with only
    the change of its input. The other layers act on one frame each (batch normalisation, add, pooling,
    ReLU, softmax, the `DeltaActivation` and `Quantize` quantisers, `ImagePreprocessing`...): they are
    re-evaluated on the accumulated state and pass on the change of their output. For an affine layer
    that equals propagating the change through it, but exactly in float, so a change that cancels is a
    zero, as on integer hardware. Every tensor starts from zero, so frame 0 is charged for its nonzero
    activations. The engine counts the MACs of the changes it streams, frame by frame: per linear stage,
    each nonzero entry of the input's change charged its fan-out (by linearity, NeuroBench's sum of the
    layer's op on the 0/1 mask of the nonzero changes with an all-ones kernel), independently of
    `count_macs`, which takes the changes from the clip's forward pass.

    Supported graphs: flat functional clip models whose image layers run on time folded into batch
    (``(B*T, ...)``, by `FoldTime` / `UnfoldTime` or by reshapes) or inside `TimeDistributed`, with
    delta_keras' layers: everything `delta_keras.sparsify`, `strip_sparsity` and `video_classifier`
    build. `FrameDifference` keeps the previous input frame as state. A `GlobalAveragePooling1D` over
    time (or ``ops.mean(x, axis=1)``) becomes a running mean, so after the last frame the output equals
    the forward pass over the clip; MAC layers after it then run every frame (``count_macs`` charges
    them once per clip). A MAC layer over the clip's time axis (a temporal head's ``Conv1D``) and the layers
    after it are evaluated at each step on the frames so far (`delta_keras.frames.plan.Tail`; not in ``macs``).
    Recurrent layers, nested models, `DeltaActivation(output="delta")` and layers
    of unknown kind raise `NotImplementedError` naming the layer.

    On TensorFlow each frame is one call of a compiled function (traced once per batch size); on the other
    backends the frames run eagerly.

    Args:
        model: a clip model, input ``(batch, frames, ...)``.
        check_accumulators: also keep each MAC layer's float64 delta accumulator and record, per layer, its
            largest distance to the output (``accumulator_error``): how far a float accumulator would drift
            (slower: a float64 convolution per MAC layer and frame).

    Example:

    >>> engine = DeltaInference(model)            # doctest: +SKIP
    >>> outputs = engine.run(clips)               # (batch, frames, ...) like model(clips)  # doctest: +SKIP
    >>> engine.macs["conv1"]                      # MACs per frame, summed over the batch  # doctest: +SKIP
    >>> engine.reset(); y0 = engine.step(frame0)  # streaming: one frame at a time  # doctest: +SKIP
    """

    def __init__(self, model: keras.Model, check_accumulators: bool = False):
        self.plan = FramePlan(model, "DeltaInference")
        self.model = model
        self.time = model.inputs[0].shape[1]
        self.check_accumulators = check_accumulators
        self._frame: _Frame | None = None  # the frame being traced (or run eagerly)
        self._handlers = {"mac": self._mac, "memory": self._memory, "previous_frame": self._previous_frame,
                          "time_mean": self._time_mean}
        # One frame is one call of a compiled function (traced once per batch size): the state goes in and out
        # as a dict of tensors. Another backend's layers run eagerly on the TensorFlow tensors' values.
        compiled = keras.backend.backend() == "tensorflow"
        self._step = tf.function(self._run_frame, autograph=False) if compiled else self._run_frame
        self._tail = self.plan.tail(compiled)
        self.reset()

    def reset(self) -> None:
        """Forgets every state (call between videos): all tensors and accumulators back to zero."""
        self._state = None  # created at the first frame, for its batch size
        self.frames = 0
        self.accumulator_error = {key: 0.0 for key in self.plan.mac_keys} if self.check_accumulators else {}
        self.macs = {key: [] for key in self.plan.mac_keys}
        if self._tail is not None:
            self._tail.reset()

    def step(self, frame):
        """Feeds one frame ``(batch, ...)`` (or ``(...)``) and returns the model's output for it.

        Returns:
            The output computed with the state carried from previous frames: for a per-frame output
            ``(batch, 1, ...)``; after a time average, the average over the frames seen so far; with layers over
            the time axis (a temporal head), the model's output on the frames seen so far.
        """
        frame_shape = tuple(self.model.inputs[0].shape[2:])
        frame = tf.convert_to_tensor(frame, "float32")
        if tuple(frame.shape) == frame_shape:
            frame = frame[None]
        if tuple(frame.shape[1:]) != frame_shape:
            raise ValueError(f"{self.model.name}: a frame must have shape (batch, *{frame_shape}), got {frame.shape}")
        if self._state is None:
            self._state = self._zero_state(frame.shape[0])
        elif frame.shape[0] != self._state[self._FRAMES].shape[0]:
            raise ValueError(f"{self.model.name}: a frame of batch {frame.shape[0]} after frames of batch "
                             f"{self._state[self._FRAMES].shape[0]}; call reset() between clips")
        output, self._state, macs, errors = self._step(frame, self._state)
        if self._tail is not None:  # the layers over the clip's time axis, on the frames so far
            output = self._tail(output)
        for key, count in zip(self.plan.mac_keys, macs.numpy()):
            self.macs[key].append(int(count))
        for key, error in zip(self.accumulator_error, errors.numpy()):
            self.accumulator_error[key] = max(self.accumulator_error[key], float(error))
        self.frames += 1
        return output

    def run(self, clips) -> np.ndarray:
        """Runs clips ``(batch, frames, ...)`` from a reset state, frame by frame.

        Returns:
            The outputs like ``model(clips)``: per-frame outputs stacked on axis 1, or the final output
            of a model that averages over time.
        """
        clips = check_clips(self.model, clips)
        self.reset()
        return self.plan.stack([self.step(clips[:, t]) for t in range(clips.shape[1])])

    # ------------------------------------------------------------------ one frame, compiled
    _FRAMES = "/frames"  # the state's frame counter (one per clip: its length is the batch)

    def _zero_state(self, batch: int) -> dict:
        """Every state at zero for ``batch`` clips: what each stateful node keeps between frames."""
        state = {key: tf.zeros(shape) for key, shape in self.plan.state_shapes(batch).items()}
        state[self._FRAMES] = tf.zeros((batch,), "int32")  # frames since reset
        if self.check_accumulators:
            shapes = self.plan.frame_shapes(batch)
            for key, node in self.plan.mac_nodes.items():
                state[key + "/accumulator"] = tf.zeros(shapes[id(node.output)], "float64")
        return state

    def _run_frame(self, frame, state: dict):
        """One frame: ``(output, new state, MACs per MAC layer, accumulator errors)``. The handlers read ``state``
        and write ``new`` through ``self._frame`` while this traces."""
        self._frame = _Frame(state, {self._FRAMES: state[self._FRAMES] + 1})
        values = self.plan.run(frame, self._handlers)
        frame_io, self._frame = self._frame, None
        as_vector = lambda items, dtype: tf.stack(items) if items else tf.zeros(0, dtype)
        return (self.plan.output(values), frame_io.new, as_vector(frame_io.macs, tf.int64),
                as_vector(frame_io.errors, tf.float64))

    # ------------------------------------------------------------------ the plan's handlers
    def _memory(self, node: FrameNode, values: dict):
        state, new = self._frame.state, self._frame.new
        new[node.key] = node.layer.memory_step(state[node.key], values[id(node.input)])
        return new[node.key]

    def _previous_frame(self, node: FrameNode, values: dict):
        # The layer's own op on (previous frame, frame), last frame kept. On frame 0 the previous frame is the
        # frame itself, as `FrameDifference` pads the clip with its first frame.
        state, new = self._frame.state, self._frame.new
        frame = values[id(node.input)]
        previous = tf.where(state[self._FRAMES][0] == 0, frame, state[node.key])
        new[node.key] = frame
        window = tf.concat([previous, frame], axis=1)
        return graph_lib.call_node(node.node, {id(node.input): window})[:, 1:]

    def _time_mean(self, node: FrameNode, values: dict):
        state, new = self._frame.state, self._frame.new
        new[node.key] = state[node.key] + values[id(node.input)][:, 0]
        return new[node.key] / tf.cast(new[self._FRAMES][0], "float32")

    def _mac(self, node: FrameNode, values: dict):
        """Counts the MACs of a MAC layer's input change and returns the layer's output on the input.

        The MACs are those of the nonzero entries of the change (every state starts at zero, so frame 0 is
        charged for its nonzero inputs), each charged its fan-out: by linearity, the sum NeuroBench takes of the
        layer's op on the 0/1 mask of the nonzero changes with an all-ones kernel (`delta_keras.frames.geometry`).
        The output is the layer's own call on its reconstructed input, the value an accumulator with exact
        (integer) arithmetic holds: a float accumulator would drift from it by rounding, and a quantiser downstream
        near a rounding tie would then differ from the forward pass. With ``check_accumulators`` a float64 delta
        accumulator is kept alongside, and its largest distance to the output reported in ``accumulator_error``.
        """
        state, new, macs, errors = self._frame.state, self._frame.new, self._frame.macs, self._frame.errors
        value, previous = values[id(node.input)], state[node.key]
        new[node.key] = value
        as_frames = (lambda x: tf.reshape(x, (-1, *x.shape[2:]))) if node.time_distributed else (lambda x: x)
        macs.append(geometry.changed_macs(node.stages, as_frames(value), as_frames(previous)))
        output = graph_lib.call_node(node.node, values)
        if self.check_accumulators:
            change = tf.cast(as_frames(value - previous), "float64")
            for stage in node.stages:
                change = stage.apply(change, tf.constant(stage.kernel, "float64"))
            accumulated = state[node.key + "/accumulator"] + tf.reshape(change, output.shape)
            new[node.key + "/accumulator"] = accumulated
            linear = tf.cast(accumulated, "float32")
            if getattr(node.layer, "use_bias", False):
                linear = linear + node.layer.bias
            if getattr(node.layer, "activation", None) is not None:
                linear = node.layer.activation(linear)
            distance = tf.abs(linear - tf.cast(output, "float32"))
            errors.append(tf.cast(tf.reduce_max(distance), "float64") if distance.shape.num_elements() else
                          tf.constant(0.0, tf.float64))
        return output
