"""A clip model one frame at a time: what the simulator and the runtime share.

- `geometry`: each MAC layer's exact linear stages on one frame and their fan-out maps (what a nonzero input
  element costs), from the layer kinds of `delta_keras.registry`;
- `plan`: the frame plan: a clip model compiled once into frame nodes (MAC layers, quantisers, memory,
  views, time means, layers that read the previous frame, frame-wise layers) and the one dispatch that runs
  them, for two executors: `delta_keras.sim.DeltaInference` (counts and proves) and
  `delta_keras.runtime.DeltaRuntime` (executes).
"""

from delta_keras.frames.plan import FrameNode, FramePlan, check_clips, node_keys

__all__ = ["FrameNode", "FramePlan", "check_clips", "node_keys"]
