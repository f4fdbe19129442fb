"""Command-line entry points: ``delta-keras-train``, ``delta-keras-eval`` and ``delta-keras-sim``.

``experiments/ucf101_train.py``, ``experiments/ucf101_eval.py`` and ``python -m delta_keras.sim`` call the same
functions. Every command turns the errors a user can cause into one line on stderr and an exit status:

- 0: done;
- 2: bad input (a flag, a data folder, a video, a model or checkpoint, a file it would have to overwrite);
- 3: training stopped because the loss became NaN or infinite (the last good checkpoint stays).

``run_train`` and ``run_eval`` return the results (for scripts and tests); ``train_main``, ``eval_main`` and
``sim_main`` return the exit status, as console entry points must (``sys.exit`` of anything else is a failure).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, NoReturn

from delta_keras.quiet import start_command

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_NON_FINITE_LOSS = 3


class BadInput(ValueError):
    """An input a command cannot use (e.g. a model that is not a clip model); the message names it."""


class CommandParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose errors are one line, ``<prog>: error: <message> (see --help)``, and
    exit status 2: the usage block argparse prints first would bury the line that matters."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message.splitlines()[0]} (see {self.prog} --help)\n")


def _user_errors() -> tuple[type[BaseException], ...]:
    from delta_keras.data import DataLayoutError, VideoDecodeError  # noqa: PLC0415
    from delta_keras.files import UnsafeWriteError  # noqa: PLC0415
    from delta_keras.sim.geometry import UncountableLayer  # noqa: PLC0415
    from delta_keras.train import ConfigError  # noqa: PLC0415
    from delta_keras.train.run_folder import CorruptCheckpointError  # noqa: PLC0415

    return (BadInput, ConfigError, DataLayoutError, CorruptCheckpointError, UnsafeWriteError, FileNotFoundError,
            VideoDecodeError, UncountableLayer)


def run_main(prog: str, main: Callable[[], object]) -> object:
    """Runs ``main()``; a user's error becomes ``<prog>: error: <one line>`` and its exit status."""
    from delta_keras.train.run_folder import NonFiniteLossError  # noqa: PLC0415

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


def _progress_style(choice: str) -> int:
    """Keras' ``verbose``: a live progress bar on a terminal, one line per epoch when output goes to a file."""
    return {"bar": 1, "epoch": 2, "none": 0}.get(choice, 1 if sys.stdout.isatty() else 2)


TRAIN_DOC = """Train a video classifier that is sparse in time (or its dense baseline) and report what it saves.

    delta-keras-train --sparsity delta --epochs 5 --logdir runs/delta
    delta-keras-train --dataset ucf101 --data-dir /data/ucf101 --backbone mobilenet \\
        --weights imagenet --frames 16 --image-size 112 --sparsity delta --init-from runs/dense

The run folder (--logdir) holds TensorBoard events, checkpoints, config.json and results.json; continue a
killed run with the same command and --resume. Exit status: 0 done, 2 bad input, 3 the loss became
NaN or infinite (training stopped; the last good checkpoint is kept).
"""


def run_train(argv: list[str] | None = None) -> dict:
    """``delta-keras-train``'s work; returns the run's results."""
    start_command()
    from delta_keras.train import ConfigError, add_config_arguments, check_run, config_from_args, summary_table, train  # noqa: PLC0415

    prog = _prog(argv, "delta-keras-train")
    parser = CommandParser(prog=prog, description=TRAIN_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser)
    parser.add_argument("--progress", choices=("auto", "bar", "epoch", "none"), default="auto",
                        help="Progress output: a bar, a line per epoch, or none (default auto: a bar on a terminal, "
                             "a line per epoch when output goes to a file).")
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        check_run(config)
    except ConfigError as error:
        parser.error(str(error))

    def run() -> dict:
        results = train(config, command_line=[prog, *(sys.argv[1:] if argv is None else argv)],
                        verbose=_progress_style(args.progress))
        if results:
            print("\n" + summary_table(results))
            print(f"\nrun folder: {config.logdir}\nview it:    {tensorboard_command(config.logdir)}")
        return results

    return run_main(prog, run)


def train_main(argv: list[str] | None = None) -> int:
    """The ``delta-keras-train`` console command: `run_train`, exit status 0 when it is done."""
    run_train(argv)
    return EXIT_OK


def tensorboard_command(logdir: str | Path) -> str:
    """The TensorBoard command that works as printed: the one beside this Python (a virtual environment's
    ``bin``), or plain ``tensorboard`` where it is on the PATH."""
    import shutil  # noqa: PLC0415

    beside = Path(sys.executable).parent / "tensorboard"
    on_path = shutil.which("tensorboard")
    program = "tensorboard" if on_path and Path(on_path).resolve() == beside.resolve() else str(beside)
    return f"{program} --logdir {logdir}"


EVAL_DOC = """Evaluate a checkpoint as the training script evaluates a finished run.

    delta-keras-eval runs/delta                      # the run's newest checkpoint that loads
    delta-keras-eval runs/delta/checkpoints/epoch-0003.keras --eval-clips 10

Prints clip- and video-level accuracy (video level: softmax averaged over --eval-clips evenly spread clips),
the layers' densities and the simulator's MAC reductions, and writes them as JSON (--output).
"""


def run_eval(argv: list[str] | None = None) -> dict:
    """``delta-keras-eval``'s work; returns the results."""
    start_command()
    from delta_keras.files import write_json  # noqa: PLC0415
    from delta_keras.train import evaluate_checkpoint, summary_table  # noqa: PLC0415

    prog = _prog(argv, "delta-keras-eval")
    parser = CommandParser(prog=prog, description=EVAL_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
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


def eval_main(argv: list[str] | None = None) -> int:
    """The ``delta-keras-eval`` console command: `run_eval`, exit status 0 when it is done."""
    run_eval(argv)
    return EXIT_OK


SIM_DOC = """Count the MACs a saved clip model performs on real videos, per layer and frame, under every policy.

    delta-keras-sim runs/delta/checkpoints/epoch-0005.keras video1.avi video2.mp4 --frames 16 --json out.json

Decodes a clip of each video (through the public delta_keras.data API), resizes it to the model's input
size, counts the MACs of every layer under every policy and prints the table. Exit status: 0 done, 2 bad
input (a missing, damaged or non-video file; a file that is not a .keras model; an output it would overwrite).
"""


def sim_main(argv: list[str] | None = None) -> int:
    """``delta-keras-sim`` (and ``python -m delta_keras.sim``); returns the exit status."""
    start_command()
    from delta_keras.sim.count import POLICIES  # noqa: PLC0415

    prog = _prog(argv, "delta-keras-sim")
    parser = CommandParser(prog=prog, description=SIM_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a saved clip model (.keras)")
    parser.add_argument("videos", nargs="+", help="video files (anything OpenCV decodes)")
    parser.add_argument("--frames", type=int, default=16,
                        help="frames per clip, >= 1, where the model does not fix it (default 16)")
    parser.add_argument("--start", type=int, default=0, help="first frame of each clip (default 0)")
    parser.add_argument("--granularity", default="element", help="element, vector:N or tile:H[xW]")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    parser.add_argument("--json", help="write the full report as JSON")
    parser.add_argument("--csv", help="write the table as CSV")
    parser.add_argument("--plot", help="write the figure (PNG, PDF, ...)")
    parser.add_argument("--tensorboard", help="write TensorBoard scalars to this log directory")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing --csv/--plot files (a --json file is replaced only if this tool wrote it)")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.start < 0:
        parser.error(f"--frames must be >= 1 and --start >= 0, got {args.frames} and {args.start}")
    for path in (args.model, *args.videos):
        if Path(path).is_dir():
            parser.error(f"{path}: is a folder, expected a file")
        if not Path(path).is_file():
            parser.error(f"{path}: no such file")
    if not args.overwrite:
        for flag, path in (("--csv", args.csv), ("--plot", args.plot)):
            if path and Path(path).exists():
                parser.error(f"{flag} {path}: exists; pass --overwrite to replace it")
    if args.json:
        from delta_keras.files import check_replaceable, is_generated_json  # noqa: PLC0415

        try:  # before any work, not after counting
            check_replaceable(args.json, is_generated_json, "--json file")
        except FileExistsError as error:
            parser.error(str(error))
    return run_main(prog, lambda: _simulate(args))


def _simulate(args: argparse.Namespace) -> int:
    import numpy as np  # noqa: PLC0415

    from delta_keras.data import read_clip  # noqa: PLC0415
    from delta_keras.sim.count import check_clips, count_macs  # noqa: PLC0415
    from delta_keras.train.run_folder import load_checkpoint  # noqa: PLC0415

    model = load_checkpoint(args.model)
    if not model.inputs or len(model.inputs[0].shape) != 5:
        raise BadInput(f"{args.model}: not a clip model (input {model.inputs[0].shape if model.inputs else None}; "
                                "expected (batch, frames, height, width, channels))")
    height, width = model.inputs[0].shape[2:4]
    frames = model.inputs[0].shape[1] or args.frames
    try:
        clips = check_clips(model, np.stack([read_clip(v, frames, (height, width), args.start) for v in args.videos]))
    except ValueError as error:  # e.g. colour frames for a grey-scale model
        raise BadInput(f"{args.model}: {error}") from error
    # A live progress bar on a terminal only: in a file it is a line of carriage returns and colour codes.
    report = count_macs(model, clips, args.policies, args.granularity, batch_size=1, progress=sys.stdout.isatty())
    print(report.table())
    for key, value in report.neurobench().items():
        print(f"NeuroBench {key}: {value:.6g}")
    for path, write in ((args.json, report.to_json), (args.csv, report.to_csv), (args.plot, report.plot),
                        (args.tensorboard, report.write_tensorboard)):
        if path:
            write(path)
    return EXIT_OK
