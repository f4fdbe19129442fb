"""Evaluate a checkpoint as the training script evaluates a finished run.

    python experiments/ucf101_eval.py runs/delta                 # the run's last checkpoint
    python experiments/ucf101_eval.py runs/delta/checkpoints/epoch-0003.keras --eval-clips 10

Prints clip- and video-level accuracy (video level: softmax averaged over --eval-clips evenly spread clips),
the layers' densities and the simulator's MAC reductions, and writes them as JSON (--output).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from delta_keras.train import ConfigError, evaluate_checkpoint, summary_table
from delta_keras.train.run import write_json


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="A run folder (its last checkpoint) or a .keras checkpoint in one.")
    parser.add_argument("--eval-clips", type=int, help="Clips per video (default: the run's).")
    parser.add_argument("--batch-size", type=int, help="Clips per batch (default: the run's).")
    parser.add_argument("--data-dir", help="Where the dataset is now (default: the run's).")
    parser.add_argument("--output", help="JSON file for the results (default: <run>/eval_results.json).")
    args = parser.parse_args(argv)
    if not Path(args.checkpoint).exists():
        parser.error(f"{args.checkpoint}: no such checkpoint or run folder")
    overrides = {k: v for k, v in vars(args).items() if k in ("eval_clips", "batch_size", "data_dir") and v is not None}
    try:
        results = evaluate_checkpoint(args.checkpoint, **overrides)
    except (ConfigError, FileNotFoundError) as error:
        parser.error(str(error))
    output = args.output or Path(results["checkpoint"]).parent.parent / "eval_results.json"
    write_json(output, results)
    print(summary_table(results) + f"\n\nresults: {output}")
    return results


if __name__ == "__main__":
    main()
