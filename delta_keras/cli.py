"""Command-line entry points: ``delta-keras-train``, ``delta-keras-eval`` and ``delta-keras-sim``.

``experiments/ucf101_train.py`` and ``experiments/ucf101_eval.py`` call the same functions. Every entry
point turns the errors a user can cause into one line on stderr and an exit status:

- 2: bad input (a flag, a data folder, a checkpoint, a file it would have to overwrite);
- 3: training stopped because the loss became NaN or infinite (the last good checkpoint stays).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from delta_keras.quiet import start_tensorflow

EXIT_BAD_INPUT = 2
EXIT_NON_FINITE_LOSS = 3


def _user_errors() -> tuple[type[BaseException], ...]:
    from delta_keras.data import DataLayoutError  # noqa: PLC0415
    from delta_keras.files import UnsafeWriteError  # noqa: PLC0415
    from delta_keras.train import ConfigError  # noqa: PLC0415
    from delta_keras.train.run import CorruptCheckpointError  # noqa: PLC0415

    return ConfigError, DataLayoutError, CorruptCheckpointError, UnsafeWriteError, FileNotFoundError


def run_main(prog: str, main: Callable[[], object]) -> object:
    """Runs ``main()``; a user's error becomes ``<prog>: error: <one line>`` and its exit status."""
    from delta_keras.train.run import NonFiniteLossError  # noqa: PLC0415

    try:
        return main()
    except NonFiniteLossError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_NON_FINITE_LOSS) from error
    except _user_errors() as error:
        print(f"{prog}: error: {str(error).splitlines()[0]}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from error


def _prog(argv: list[str] | None, default: str) -> str:
    return default if argv is not None else Path(sys.argv[0]).name


TRAIN_DOC = """Train a video classifier that is sparse in time (or its dense baseline) and report what it saves.

    delta-keras-train --sparsity delta --epochs 5 --logdir runs/delta
    delta-keras-train --dataset ucf101 --data-dir /data/ucf101 --backbone mobilenet \\
        --weights imagenet --frames 16 --image-size 112 --sparsity delta --init-from runs/dense

The run folder (--logdir) holds TensorBoard events, checkpoints, config.json and results.json; continue a
killed run with the same command and --resume. Exit status: 0 done, 2 bad input, 3 the loss became
NaN or infinite (training stopped; the last good checkpoint is kept).
"""


def train_main(argv: list[str] | None = None) -> dict:
    """``delta-keras-train`` (and ``experiments/ucf101_train.py``)."""
    start_tensorflow()
    from delta_keras.train import ConfigError, add_config_arguments, check_run, config_from_args, summary_table, train  # noqa: PLC0415

    prog = _prog(argv, "delta-keras-train")
    parser = argparse.ArgumentParser(prog=prog, description=TRAIN_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        check_run(config)
    except ConfigError as error:
        parser.error(str(error))

    def run() -> dict:
        results = train(config, command_line=[prog, *(sys.argv[1:] if argv is None else argv)])
        if results:
            print("\n" + summary_table(results))
            print(f"\nrun folder: {config.logdir}    view it: tensorboard --logdir {config.logdir}")
        return results

    return run_main(prog, run)


EVAL_DOC = """Evaluate a checkpoint as the training script evaluates a finished run.

    delta-keras-eval runs/delta                      # the run's newest checkpoint that loads
    delta-keras-eval runs/delta/checkpoints/epoch-0003.keras --eval-clips 10

Prints clip- and video-level accuracy (video level: softmax averaged over --eval-clips evenly spread clips),
the layers' densities and the simulator's MAC reductions, and writes them as JSON (--output).
"""


def eval_main(argv: list[str] | None = None) -> dict:
    """``delta-keras-eval`` (and ``experiments/ucf101_eval.py``)."""
    start_tensorflow()
    from delta_keras.files import write_json  # noqa: PLC0415
    from delta_keras.train import evaluate_checkpoint, summary_table  # noqa: PLC0415

    prog = _prog(argv, "delta-keras-eval")
    parser = argparse.ArgumentParser(prog=prog, description=EVAL_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="A run folder (its newest checkpoint that loads) or a .keras checkpoint in one.")
    parser.add_argument("--eval-clips", type=int, help="Clips per video (default: the run's).")
    parser.add_argument("--batch-size", type=int, help="Clips per batch (default: the run's).")
    parser.add_argument("--data-dir", help="Where the dataset is now (default: the run's).")
    parser.add_argument("--output", help="JSON file for the results (default: <run>/eval_results.json).")
    args = parser.parse_args(argv)
    if not Path(args.checkpoint).exists():
        parser.error(f"{args.checkpoint}: no such checkpoint or run folder")
    overrides = {k: v for k, v in vars(args).items() if k in ("eval_clips", "batch_size", "data_dir") and v is not None}

    def run() -> dict:
        results = evaluate_checkpoint(args.checkpoint, **overrides)
        output = args.output or Path(results["checkpoint"]).parent.parent / "eval_results.json"
        write_json(output, results)
        print(summary_table(results) + f"\n\nresults: {output}")
        return results

    return run_main(prog, run)


def sim_main(argv: list[str] | None = None) -> int:
    """``delta-keras-sim`` (and ``python -m delta_keras.sim``)."""
    start_tensorflow()
    from delta_keras.sim.__main__ import main  # noqa: PLC0415

    return run_main(_prog(argv, "delta-keras-sim"), lambda: main(argv))
