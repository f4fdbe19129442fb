"""Speed of the simulator, measured side by side in one run.

Prints (count_macs, all policies: first call, and repeated calls on the same model) / (plain forward pass)
and (DeltaInference) / (plain forward pass), against the forward pass run eagerly (``model(clips)``) and
compiled (`tf.function`), for a MobileNet (alpha=1, 224x224, random weights, 1000-way
dense head) clip model with DeltaActivation layers after every ReLU, time folded into batch, on one
16-frame clip of a real video.

Usage: ``python benchmarks/sim_speed.py [--frames 16] [--size 224] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import tensorflow as tf

from delta_keras import DeltaActivation
from delta_keras.data import read_clip
from delta_keras.runtime import machine_summary
from delta_keras.sim import count_macs
from delta_keras.sim.engine import DeltaInference

VIDEO = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "real_clips", "arm_wrestling_k400.mp4")


def mobilenet_clip_model(frames: int, size: int) -> keras.Model:
    """MobileNet v1 applied per frame (time folded into batch), DeltaActivation after every ReLU, softmax
    averaged over time. MobileNet v1 is a chain, so its layers are re-applied in one flat graph."""
    # Without MobileNet's own top: its Reshape layers' names collide with the reshape operations here.
    base = keras.applications.MobileNet(weights=None, input_shape=(size, size, 3), include_top=False, pooling="avg")
    clips = keras.Input((frames, size, size, 3))
    x = keras.ops.reshape(keras.layers.Rescaling(1 / 127.5, -1)(clips), (-1, size, size, 3))
    for layer in base.layers[1:]:
        x = layer(x)
        if isinstance(layer, keras.layers.ReLU):
            unfolded = DeltaActivation(step_init=0.5)(keras.ops.reshape(x, (-1, frames, *x.shape[1:])))
            x = keras.ops.reshape(unfolded, (-1, *x.shape[1:]))
    x = keras.ops.reshape(keras.layers.Dense(1000, activation="softmax")(x), (-1, frames, 1000))
    return keras.Model(clips, keras.layers.GlobalAveragePooling1D()(x))


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model = mobilenet_clip_model(args.frames, args.size)
    clips = read_clip(VIDEO, args.frames, (args.size, args.size))[None]
    model(clips)  # warm-up: the forward pass is measured warm
    forward = best_time(lambda: model(clips), args.repeats)
    compiled = tf.function(model)
    compiled(clips)
    forward_compiled = best_time(lambda: compiled(clips), args.repeats)
    # count_macs end to end, every policy. The first call on a model probes its graph, computes the fan-out
    # maps and traces the counting; later calls (same model, clip shape and kernel zeros) reuse them.
    first_count = best_time(lambda: count_macs(model, clips), 1)
    counting = best_time(lambda: count_macs(model, clips), args.repeats)
    engine = DeltaInference(model)
    engine.run(clips)
    inference = best_time(lambda: engine.run(clips), 1)

    report = count_macs(model, clips)
    print(report.table())
    print(f"\nMobileNet {args.size}x{args.size}, 1 clip x {args.frames} frames, {machine_summary()}")
    print(f"plain forward pass          {forward:8.3f} s   (eager; compiled: {forward_compiled:.3f} s)")
    ratios = lambda seconds: f"ratio {seconds / forward:6.2f}x  (compiled forward: {seconds / forward_compiled:5.2f}x)"
    print(f"count_macs, first call      {first_count:8.3f} s   {ratios(first_count)}  probe, fan-outs, trace")
    print(f"count_macs, all policies    {counting:8.3f} s   {ratios(counting)}  repeated calls")
    print(f"DeltaInference              {inference:8.3f} s   {ratios(inference)}  one compiled call a frame")
    print(f"zero_delta MAC reduction    {report.reduction('zero_delta'):8.2f}x")


if __name__ == "__main__":
    main()
