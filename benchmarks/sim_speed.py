"""Speed of the simulator, measured side by side in one run.

Prints (count_macs, all policies: first call, second call, and repeated calls on the same model) / (plain
forward pass) and (DeltaInference) / (plain forward pass), against the forward pass run eagerly
(``model(clips)``) and compiled (`tf.function`), for a MobileNet (alpha=1, 224x224, random weights of seed 0,
1000-way dense head) clip model with DeltaActivation layers after every ReLU, time folded into batch, on one
16-frame clip of a real video. The random network's batch normalisations are set to the clip's own statistics
(each one's input mean and variance per channel), so that every layer's input has unit scale: with the
initial statistics (mean 0, variance 1) the activations shrink layer by layer and a quantiser of step 0.5
zeroes them from the third layer on, and a simulator timed on a network dead there measures nothing real.
Last, the ratio of the engine's own MAC count to `count_macs`' (1 where the two agree).

Usage: ``python benchmarks/sim_speed.py [--frames 16] [--size 224] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import numpy as np
import tensorflow as tf

from delta_keras import DeltaActivation
from delta_keras.data import read_clip
from delta_keras.runtime import machine_summary
from delta_keras.sim import count_macs
from delta_keras.sim.engine import DeltaInference

VIDEO = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "real_clips", "arm_wrestling_k400.mp4")


def mobilenet_clip_model(clips: np.ndarray) -> keras.Model:
    """MobileNet v1 applied per frame (time folded into batch), DeltaActivation after every ReLU, softmax
    averaged over time, its batch normalisations set to `clips`' statistics. MobileNet v1 is a chain, so its
    layers are re-applied in one flat graph."""
    frames, size = clips.shape[1], clips.shape[2]
    # Without MobileNet's own top: its Reshape layers' names collide with the reshape operations here.
    base = keras.applications.MobileNet(weights=None, input_shape=(size, size, 3), include_top=False, pooling="avg")
    rescaling = keras.layers.Rescaling(1 / 127.5, -1)
    match_batch_norms(base, rescaling(clips.reshape(-1, size, size, 3)))
    inputs = keras.Input((frames, size, size, 3))
    x = keras.ops.reshape(rescaling(inputs), (-1, size, size, 3))
    for layer in base.layers[1:]:
        x = layer(x)
        if isinstance(layer, keras.layers.ReLU):
            unfolded = DeltaActivation(step_init=0.5)(keras.ops.reshape(x, (-1, frames, *x.shape[1:])))
            x = keras.ops.reshape(unfolded, (-1, *x.shape[1:]))
    x = keras.ops.reshape(keras.layers.Dense(1000, activation="softmax")(x), (-1, frames, 1000))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(x))


def match_batch_norms(chain: keras.Model, images) -> None:
    """Set each batch normalisation of a chain of layers to its input's mean and variance per channel on
    `images`, in order, so that each normalises what reaches it (a data-dependent initialisation)."""
    x = images
    for layer in chain.layers[1:]:
        if isinstance(layer, keras.layers.BatchNormalization):
            mean, variance = keras.ops.moments(x, axes=(0, 1, 2))
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)
        x = layer(x)


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

    keras.utils.set_random_seed(0)
    clips = read_clip(VIDEO, args.frames, (args.size, args.size))[None]
    model = mobilenet_clip_model(clips)
    model(clips)  # warm-up: the forward pass is measured warm
    forward = best_time(lambda: model(clips), args.repeats)
    compiled = tf.function(model)
    compiled(clips)
    forward_compiled = best_time(lambda: compiled(clips), args.repeats)
    # count_macs end to end, every policy. The first call on a model probes its graph (running it eagerly),
    # computes the fan-out maps and traces the counting; the second compiles the forward pass; later calls
    # (same model, clip shape and kernel zeros) reuse all of it.
    first_count = best_time(lambda: count_macs(model, clips), 1)
    second_count = best_time(lambda: count_macs(model, clips), 1)
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
    print(f"count_macs, second call     {second_count:8.3f} s   {ratios(second_count)}  compiles the forward pass")
    print(f"count_macs, all policies    {counting:8.3f} s   {ratios(counting)}  repeated calls")
    print(f"DeltaInference              {inference:8.3f} s   {ratios(inference)}  one compiled call a frame")
    print(f"zero_delta MAC reduction    {report.reduction('zero_delta'):8.2f}x")
    # The engine counts the changes it streams, independently of count_macs: the two should agree.
    engine_macs = sum(sum(frames) for frames in engine.macs.values())
    print(f"engine's MACs / count_macs' {engine_macs / report.total('zero_delta'):8.4f}")


if __name__ == "__main__":
    main()
