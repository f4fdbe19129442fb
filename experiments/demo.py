"""`make demo`: a dense baseline and its delta refinement on the embedded synthetic actions, compared.

Trains the tiny backbone densely, then loads those weights into the same network with a DeltaActivation
after every ReLU and on the input frames, and fine-tunes it with the sparsity loss (the paper's refinement
phase). Prints accuracy, temporal density and MAC reductions side by side, and the TensorBoard command.
About 2-3 minutes on 2 CPU cores. Everything it writes goes to --logdir/dense and --logdir/delta; a rerun replaces
those two, and only in a folder an earlier demo made (marked by a .delta_keras_demo file): any other non-empty
folder is refused, never cleared.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from delta_keras.cli import CommandParser, tensorboard_command
from delta_keras.quiet import start_command

MARKER = ".delta_keras_demo"
RUNS = ("dense", "delta")
FILES = (*RUNS, "comparison.md")  # what the demo writes in its folder, and replaces on a rerun

# Settings measured to train the tiny model well above chance (1/12) on 2 CPU cores within the budget.
DATA = dict(dataset="synthetic", frames=8, image_size=32, synthetic_videos=4800, synthetic_test_videos=240,
            eval_clips=4, batch_size=16, steps_per_epoch=100, validation_steps=8)
DENSE = dict(sparsity="none", epochs=12, optimizer="adam", learning_rate=3e-3)
DELTA = dict(sparsity="delta", epochs=6, learning_rate=1e-3, sparsity_weight=3e-3, step_init=0.5,
             include_input=True, input_step_init=32.0)  # input frames quantised too, in pixel units


def main(argv: list[str] | None = None) -> dict:
    parser = CommandParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", default="runs/demo", help="Folder of the two runs (default: runs/demo): new, empty, "
                        "or made by an earlier demo.")
    parser.add_argument("--dense-epochs", type=int, default=DENSE["epochs"])
    parser.add_argument("--delta-epochs", type=int, default=DELTA["epochs"])
    parser.add_argument("--steps-per-epoch", type=int, default=DATA["steps_per_epoch"])
    args = parser.parse_args(argv)
    start_command()
    from delta_keras.files import UnsafeWriteError, atomic_save, fresh_folder  # noqa: PLC0415
    from delta_keras.train import TrainConfig, summary_table, train  # noqa: PLC0415

    try:
        root = fresh_folder(args.logdir, MARKER, FILES)
    except UnsafeWriteError as error:
        parser.error(str(error))
    base = TrainConfig(**{**DATA, "steps_per_epoch": args.steps_per_epoch})
    dense_config = dataclasses.replace(base, **{**DENSE, "epochs": args.dense_epochs}, logdir=str(root / "dense"))
    delta_config = dataclasses.replace(base, **{**DELTA, "epochs": args.delta_epochs}, logdir=str(root / "delta"),
                                       init_from=str(root / "dense"))
    results = {}
    for name, config in (("dense", dense_config), ("delta", delta_config)):
        print(f"\n=== {name}: {config.sparsity} sparsity, {config.epochs} epochs -> {config.logdir}")
        results[name] = train(config, command_line=["experiments/demo.py", *(sys.argv[1:] if argv is None else argv)], verbose=2)
        print(summary_table(results[name]))
    print("\n" + comparison(results))
    atomic_save(root / "comparison.md", lambda path: path.write_text(markdown(results)))
    print(f"\nView both runs: {tensorboard_command(root)}")
    return results


def comparison_rows(results: dict) -> list[tuple[str, str, str]]:
    """Dense vs delta side by side: ``(what, dense, delta)`` rows, figures as README and docs/training.md print them."""
    rows = []
    for label, get in (
        ("video accuracy", lambda r: f"{r['evaluation']['video_accuracy']:.3f}"),
        ("clip accuracy", lambda r: f"{r['evaluation']['clip_accuracy']:.3f}"),
        ("temporal density of the MAC layers' inputs (neuron-weighted, t >= 1)",
         lambda r: f"{r['macs']['summary']['input_delta_density']:.3f}"),
        ("MACs, dense / zero_activation", lambda r: f"{r['macs']['summary']['zero_activation_reduction']:.2f}x"),
        ("MACs, dense / zero_delta", lambda r: f"{r['macs']['summary']['zero_delta_reduction']:.2f}x"),
    ):
        rows.append((label, get(results["dense"]), get(results["delta"])))
    return rows


def comparison(results: dict) -> str:
    """Dense vs delta side by side, as a text table (with the wall times)."""
    rows = [("", "dense", "delta"), *comparison_rows(results),
            ("wall time (s)", *(f"{results[name]['wall_time_s']:.0f}" for name in RUNS))]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows)


def markdown(results: dict) -> str:
    """The comparison as the Markdown table of docs/training.md (its figures are checked against a fresh run)."""
    lines = ["|  | dense | delta |", "|---|---|---|"]
    return "\n".join(lines + [f"| {a} | {b} | {c} |" for a, b, c in comparison_rows(results)]) + "\n"


if __name__ == "__main__":
    main()
