"""Which step gradient reaches fewer nonzero deltas at the same accuracy: "lsq" or "paper"?

Trains the tiny backbone densely on the embedded synthetic actions once, then refines it with a
DeltaActivation after every ReLU (the paper's refinement phase) with each ``step_gradient`` mode over
a sweep of sparsity weights, all with the same data, steps and seed. For every run it prints clip
accuracy, the nonzero-delta fraction of what feeds the next layers (neuron-weighted over the delta
layers, frames t >= 1, on the evaluation clips) and the simulator's zero_delta MAC reduction.

The two modes measure the penalty in different units (levels crossed against activation values), so
equal weights mean different strengths: they are compared by their trade-off curves. The last lines
give, for each mode, the lowest delta density among runs whose accuracy is within ``--max-drop`` of
the dense baseline.

    python benchmarks/step_gradient.py [--logdir runs/step_gradient] [--refine-epochs 3]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from delta_keras.files import fresh_folder
from delta_keras.train import TrainConfig, train

WEIGHTS = {"lsq": [1e-4, 1e-3, 3e-3, 1e-2], "paper": [1e-3, 1e-2, 3e-2, 1e-1]}
DATA = dict(dataset="synthetic", frames=8, image_size=32, synthetic_videos=4800, synthetic_test_videos=240,
            eval_clips=2, batch_size=16, steps_per_epoch=100, validation_steps=4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", default="runs/step_gradient")
    parser.add_argument("--dense-epochs", type=int, default=8)
    parser.add_argument("--refine-epochs", type=int, default=3)
    parser.add_argument("--max-drop", type=float, default=0.01, help="accuracy loss allowed (fraction)")
    args = parser.parse_args()
    names = ["dense", *(f"{mode}_{weight:g}" for mode, weights in WEIGHTS.items() for weight in weights)]
    root = fresh_folder(args.logdir, ".delta_keras_step_gradient", names)  # refuses a folder it did not make
    base = TrainConfig(**DATA)
    dense = train(dataclasses.replace(base, sparsity="none", epochs=args.dense_epochs, learning_rate=3e-3,
                                      logdir=str(root / "dense")), verbose=0)
    rows = [("dense", 0.0, dense)]
    for mode, weights in WEIGHTS.items():
        for weight in weights:
            config = dataclasses.replace(
                base, sparsity="delta", step_gradient=mode, sparsity_weight=weight, step_init=0.5,
                epochs=args.refine_epochs, learning_rate=1e-3, init_from=str(root / "dense"),
                logdir=str(root / f"{mode}_{weight:g}"),
            )
            rows.append((mode, weight, train(config, verbose=0)))

    def accuracy(results):
        return results["evaluation"]["clip_accuracy"]

    def density(results):
        return results["evaluation"]["density"].get("delta_density", float("nan"))

    print(f"{'mode':6s} {'weight':>7s} {'clip acc':>8s} {'delta density':>13s} {'zero_delta x':>12s}")
    for mode, weight, results in rows:
        reduction = results["macs"]["summary"]["zero_delta_reduction"]
        print(f"{mode:6s} {weight:7.0e} {accuracy(results):8.3f} {density(results):13.4f} {reduction:12.2f}")
    floor = accuracy(dense) - args.max_drop
    print(f"lowest delta density with clip accuracy >= {floor:.3f} (dense - {args.max_drop}):")
    for mode in WEIGHTS:
        within = [density(r) for m, _, r in rows if m == mode and accuracy(r) >= floor]
        print(f"  {mode:6s} {min(within, default=float('nan')):.4f}")


if __name__ == "__main__":
    main()
