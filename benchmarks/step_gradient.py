"""Which step gradient reaches fewer nonzero deltas at the same task loss: "lsq" or "paper"?

Trains the same small clip CNN (a DeltaActivation after each of its three activations) on the
embedded synthetic actions with each ``step_gradient`` mode over a sweep of sparsity weights, and
prints, for every run, the validation task loss (cross-entropy, sparsity loss excluded), accuracy,
the nonzero-delta fraction of what feeds the next layers (neuron-weighted over the three layers,
first frame not charged) and the mean step. The two modes measure the penalty in different units
(levels crossed against activation values), so they are compared by their trade-off curves, not by
equal weights: the last lines give, for each mode, the lowest density reached at a task loss no
worse than ``--max-loss-increase`` above the run without sparsity loss.

    python benchmarks/step_gradient.py [--epochs 4] [--videos 600]
"""

from __future__ import annotations

import argparse

import keras
import numpy as np

from delta_keras import DeltaActivation
from delta_keras.data import SYNTHETIC_CLASSES, synthetic_actions

WEIGHTS = {"lsq": [0.0, 1e-3, 3e-3, 1e-2, 3e-2], "paper": [1e-2, 3e-2, 1e-1, 3e-1]}


def clip_cnn(frames: int, size: int, **delta_kwargs) -> keras.Model:
    """Per-frame CNN with a DeltaActivation after each activation and a temporal-conv head."""

    def per_frame(layer, x):
        return keras.layers.TimeDistributed(layer)(x)

    clips = keras.Input((frames, size, size, 3))
    x = per_frame(keras.layers.Rescaling(1 / 255), clips)
    for filters in (16, 32):
        x = per_frame(keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu"), x)
        x = DeltaActivation(**delta_kwargs)(x)
    x = per_frame(keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"), x)
    x = DeltaActivation(**delta_kwargs)(x)
    x = per_frame(keras.layers.GlobalAveragePooling2D(), x)
    x = keras.layers.Conv1D(64, 3, padding="same", activation="relu")(x)  # sees motion across frames
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(clips, keras.layers.Dense(len(SYNTHETIC_CLASSES))(x))


def run(mode: str, weight: float, train, test, args) -> dict:
    keras.utils.set_random_seed(args.seed)
    model = clip_cnn(args.frames, args.size, step_init=0.05, step_gradient=mode, sparsity_weight=weight)
    task_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(3e-3), task_loss, metrics=["accuracy"])
    model.fit(train, epochs=args.epochs, verbose=0)
    deltas = [layer for layer in model.layers if isinstance(layer, DeltaActivation)]
    for layer in deltas:
        layer.reset_statistics()
    losses, correct, count = [], 0, 0
    for clips, labels in test:
        logits = model(clips, training=False)
        losses.append(float(task_loss(labels, logits)) * len(labels))
        correct += int(np.sum(np.argmax(keras.ops.convert_to_numpy(logits), -1) == labels.numpy()))
        count += len(labels)
    stats = [layer.statistics() for layer in deltas]
    neurons = np.array([s["neurons_per_frame"] for s in stats], float)
    density = float(np.sum(neurons * [s["delta_density"] for s in stats]) / neurons.sum())
    steps = [float(keras.ops.mean(layer.step)) for layer in deltas]
    return {"mode": mode, "weight": weight, "task_loss": sum(losses) / count, "accuracy": correct / count,
            "delta_density": density, "mean_step": float(np.mean(steps))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--videos", type=int, default=600, help="training videos (test: a quarter)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-loss-increase", type=float, default=0.05)
    args = parser.parse_args()

    def data(split, videos):
        return synthetic_actions(split, videos, args.frames, args.size, seed=args.seed).batch(32).cache()

    train, test = data("train", args.videos), data("test", args.videos // 4)
    results = [run(mode, weight, train, test, args) for mode, weights in WEIGHTS.items() for weight in weights]
    print(f"{'mode':6s} {'weight':>8s} {'task loss':>9s} {'accuracy':>8s} {'delta density':>13s} {'mean step':>9s}")
    for r in results:
        print(f"{r['mode']:6s} {r['weight']:8.0e} {r['task_loss']:9.3f} {r['accuracy']:8.3f} "
              f"{r['delta_density']:13.4f} {r['mean_step']:9.4f}")
    budget = results[0]["task_loss"] + args.max_loss_increase
    print(f"lowest delta density at task loss <= {budget:.3f} (no-sparsity loss + {args.max_loss_increase}):")
    for mode in WEIGHTS:
        within = [r for r in results if r["mode"] == mode and r["task_loss"] <= budget]
        best = min((r["delta_density"] for r in within), default=float("nan"))
        print(f"  {mode:6s} {best:.4f}")


if __name__ == "__main__":
    main()
