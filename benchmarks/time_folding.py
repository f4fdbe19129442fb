"""Training-step time: `sparsify`'s time folding against TimeDistributed around every layer.

Both clip models are MobileNet v1 (alpha 0.25) with a DeltaActivation after each of its 27 ReLU6 and
compute the same function. `sparsify` folds time into batch once and unfolds it only around the
sparsity layers (`UnfoldTime -> DeltaActivation -> FoldTime`); the other model wraps every image layer
in `keras.layers.TimeDistributed`, as the original authors did. The models are timed side by side,
interleaved round by round, and the ratio of median step times is printed (< 1: folding is faster).

    python benchmarks/time_folding.py [--frames 8] [--size 64] [--batch 4] [--rounds 5] [--steps 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import keras
import numpy as np

from delta_keras import DeltaActivation, sparsify
from delta_keras.models import graph
from delta_keras.registry import is_activation

LAYER_KWARGS = dict(step_init=0.25, sparsity_weight=1e-4)


def time_distributed_model(image_model: keras.Model, frames: int) -> keras.Model:
    """The same network with every layer wrapped in TimeDistributed (single-input layers only)."""

    def visit(layer, x, **kwargs):
        x = keras.layers.TimeDistributed(graph.copy_layer(layer))(x, **kwargs)
        return DeltaActivation(**LAYER_KWARGS)(x) if is_activation(layer) else x

    clips = keras.Input((frames, *image_model.input.shape[1:]))
    return keras.Model(clips, graph.run_graph(image_model, clips, visit))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()

    image_model = keras.applications.MobileNet(weights=None, alpha=0.25, input_shape=(args.size, args.size, 3), classes=10)
    models = {
        "sparsify (fold once)": sparsify(image_model, frames=args.frames, **LAYER_KWARGS),
        "TimeDistributed per layer": time_distributed_model(image_model, args.frames),
    }
    rng = np.random.default_rng(0)
    clips = rng.uniform(0, 1, (args.batch, args.frames, args.size, args.size, 3)).astype("float32")
    labels = np.tile(rng.integers(0, 10, (args.batch, 1)), (1, args.frames))
    times = {name: [] for name in models}
    for model in models.values():
        model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
        model.train_on_batch(clips, labels)  # trace and warm up
    for _ in range(args.rounds):
        for name, model in models.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(clips, labels)
            times[name].append((time.perf_counter() - start) / args.steps)
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        print(f"{name:28s} {median * 1000:8.1f} ms/step")
    folded, distributed = medians.values()
    print(f"ratio fold/TimeDistributed: {folded / distributed:.2f}")


if __name__ == "__main__":
    main()
