"""Training-step time of a MobileNet-style clip model with and without DeltaActivation layers.

The model: MobileNet v1's stem and 13 depthwise-separable blocks at alpha 0.25, built from
TimeDistributed layers, on 8-frame 112x112 clips, batch 8; the sparse variants have a DeltaActivation
after each of its 27 ReLU6 activations, per-frame quantisation (``delta``) or deltas with memory
(``memory``, a recurrence over the frames). The three models are timed side by side in one run,
interleaved round by round, and the ratios of median step times to dense are printed (target: at most
1.05x). Every model is compiled as its backend does by default (``jit_compile="auto"``: XLA on JAX, none
on TensorFlow's CPU and on PyTorch) unless ``--jit-compile on|off`` says otherwise.

    python benchmarks/layer_overhead.py [--rounds 5] [--steps 10] [--jit-compile auto|on|off] [--parts]

``--parts`` also times per-frame layers without statistics, and without statistics or loss (the quantiser
alone), to show where the overhead goes.
"""

from __future__ import annotations

import argparse
import statistics
import time

import keras
import numpy as np

from delta_keras import DeltaActivation

# (pointwise filters at alpha 1, depthwise stride) of MobileNet v1's 13 blocks.
JIT_COMPILE = {"auto": "auto", "on": True, "off": False}
BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]


class WithoutStatistics(DeltaActivation):
    """Per-frame DeltaActivation that keeps no statistics (``--parts``: what the counting costs)."""

    def _update_statistics(self, measured, deltas, loss):
        pass


class QuantiserOnly(WithoutStatistics):
    """Per-frame DeltaActivation without statistics or loss (``--parts``: what the quantiser alone costs)."""

    def _loss(self, penalised):
        return keras.ops.zeros(())


LAYERS = {"delta": DeltaActivation, "memory": DeltaActivation, "delta, no statistics": WithoutStatistics,
          "quantiser only": QuantiserOnly}


def mobilenet_clip_model(frames: int, size: int, alpha: float, delta: str | None, classes: int = 10) -> keras.Model:
    """MobileNet v1 on every frame (TimeDistributed), with a DeltaActivation after each ReLU6 if ``delta``
    (a key of ``LAYERS``: ``"delta"``, per-frame quantisation; ``"memory"``, deltas with memory; or a part)."""

    def frame_layer(layer, x):
        return keras.layers.TimeDistributed(layer)(x)

    def activation(x):
        x = frame_layer(keras.layers.BatchNormalization(), x)
        x = frame_layer(keras.layers.ReLU(6.0), x)
        return LAYERS[delta](step_init=0.25, sparsity_weight=1e-4, memory=delta == "memory")(x) if delta else x

    clips = keras.Input((frames, size, size, 3))
    x = activation(frame_layer(keras.layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False), clips))
    for filters, stride in BLOCKS:
        x = activation(frame_layer(keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False), x))
        x = activation(frame_layer(keras.layers.Conv2D(int(filters * alpha), 1, use_bias=False), x))
    x = frame_layer(keras.layers.GlobalAveragePooling2D(), x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(clips, keras.layers.Dense(classes)(x))


def time_steps(model: keras.Model, x, y, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds per model")
    parser.add_argument("--steps", type=int, default=10, help="training steps per round")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=0.25)
    parser.add_argument("--parts", action="store_true",
                        help="also time per-frame layers without statistics, and without statistics or loss")
    parser.add_argument("--jit-compile", choices=JIT_COMPILE, default="auto",
                        help="XLA compilation of the training steps: the backend's default (auto), on or off")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(args.batch, args.frames, args.size, args.size, 3)).astype("float32")
    y = rng.integers(0, 10, size=args.batch)
    models = {}
    names = ["dense", "delta", "memory"] + (["delta, no statistics", "quantiser only"] if args.parts else [])
    for name in names:
        keras.utils.set_random_seed(0)
        model = mobilenet_clip_model(args.frames, args.size, args.alpha, None if name == "dense" else name)
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=JIT_COMPILE[args.jit_compile])
        try:
            time_steps(model, x, y, 3)  # trace and warm up
        except Exception as error:  # noqa: BLE001 (XLA cannot compile some graphs: say which, time the others)
            print(f"{name}: not timed, training step failed to compile ({type(error).__name__}: "
                  f"{str(error).strip().splitlines()[-1][:160]})")
            continue
        models[name] = model
    times = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            times[name].append(time_steps(model, x, y, args.steps))
    median = {name: statistics.median(values) for name, values in times.items()}
    layers = len(BLOCKS) * 2 + 1
    print(f"MobileNet v1 alpha={args.alpha}, {args.frames}x{args.size}x{args.size} clips, batch {args.batch}, "
          f"{layers} DeltaActivation layers, backend {keras.backend.backend()}, jit_compile={args.jit_compile} "
          f"(compiled with XLA: {models['dense'].jit_compile if 'dense' in models else '?'})")
    print("median training step: " + ", ".join(f"{name} {value * 1e3:.1f} ms" for name, value in median.items()))
    for name in names[1:]:
        if name in median:
            print(f"overhead ratio, {name}: {median[name] / median['dense']:.3f}x (target <= 1.05x)")
    if {"delta", "memory"} <= set(median):
        print(f"memory mode against per-frame quantisation: {median['memory'] / median['delta']:.3f}x")


if __name__ == "__main__":
    main()
