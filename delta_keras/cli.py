"""Command-line entry points: ``delta-keras-train``, ``delta-keras-eval``, ``delta-keras-sim`` and
``delta-keras-stream``.

``experiments/ucf101_train.py``, ``experiments/ucf101_eval.py`` and ``python -m delta_keras.sim`` call the same
functions. Every command turns the errors a user can cause into one line on stderr and an exit status:

- 0: done;
- 2: bad input (a flag, a data folder, a video, a model or checkpoint, a file it would have to overwrite);
- 3: training stopped because the loss became NaN or infinite (the last good checkpoint stays).

``run_train`` and ``run_eval`` return the results (for scripts and tests); ``train_main``, ``eval_main``,
``sim_main`` and ``stream_main`` return the exit status, as console entry points must (``sys.exit`` of anything else is a failure).
"""

from __future__ import annotations

import argparse
import contextlib
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
    from delta_keras.frames.geometry import UncountableLayer  # noqa: PLC0415
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
    from delta_keras.frames import check_clips  # noqa: PLC0415
    from delta_keras.sim.count import count_macs  # noqa: PLC0415
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


STREAM_DOC = """Stream a video through a model frame by frame, with DeltaRuntime and with the dense forward pass.

Prints the time per frame of both and the speedup (frames 1..T-1: frame 0 runs dense in both), the MACs the
changes trigger (zero_delta) and the MACs the runtime executed against dense, and the largest difference of
the runtime's outputs from the model's forward pass over the first --check-frames frames. MODEL is a saved
clip model (.keras, input (batch, frames, height, width, channels)), or an image model with --step (a
fixed-step quantiser after every activation) or --threshold (deltas with memory).

    delta-keras-stream runs/refined/checkpoints/epoch-0005.keras camera.mp4 --frames 300 --out scores.csv
    delta-keras-stream hed.keras street.mp4 --size 192x256 --step 8 --out edges.avi
"""


def stream_main(argv: list[str] | None = None) -> int:
    """``delta-keras-stream``; returns the exit status."""
    start_command()
    prog = _prog(argv, "delta-keras-stream")
    parser = CommandParser(prog=prog, description=STREAM_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a saved clip model (.keras), or an image model with --step or --threshold")
    parser.add_argument("video", help="a video file (anything OpenCV decodes)")
    parser.add_argument("--frames", type=int, help="at most this many frames, >= 2 (default: all)")
    parser.add_argument("--start", type=int, default=0, help="first frame (default 0)")
    parser.add_argument("--size", help="frame size HxW (or one number) where the model does not fix it")
    quantiser = parser.add_mutually_exclusive_group()
    quantiser.add_argument("--step", type=float, help="image model: one quantisation step after every activation")
    quantiser.add_argument("--threshold", type=float, help="image model: deltas with memory, one threshold")
    parser.add_argument("--check-frames", type=int, default=16,
                        help="frames on which the outputs are compared with the forward pass (default 16)")
    parser.add_argument("--out", help="write the runtime's outputs: .avi for image outputs, .csv for vectors")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out or --save-break-evens file (one delta_keras wrote)")
    parser.add_argument("--dense-above", metavar="SHARE_OR_JSON",
                        help="a layer runs densely on a frame where more than this share of its input changed, or the "
                             "shares by layer in a .json file that --save-break-evens wrote (default: each layer's "
                             "break-even, from the runtime's cost model)")
    parser.add_argument("--calibrate", type=int, metavar="N",
                        help="first measure each convolution's break-even on this machine on the video's first N "
                             "frames (DeltaRuntime.calibrate; N >= 2; unfused)")
    parser.add_argument("--save-break-evens", metavar="FILE.json",
                        help="write each layer's share (after --calibrate, as measured) with this machine to a .json "
                             "file, for --dense-above on later streams of this model at this frame size")
    parser.add_argument("--cut-above", type=float, default=0.35,
                        help="relative change of a frame above which the whole frame runs densely (a scene cut)")
    parser.add_argument("--fuse", action="store_true",
                        help="fused sparse layers: convolutions hand each other lists of changes (docs/runtime.md)")
    parser.add_argument("--resync-every", type=int, default=32,
                        help="a convolution that multiplied changes on this many frames in a row is recomputed "
                             "densely, clearing its float rounding (0: never; default 32)")
    parser.add_argument("--default-threads", action="store_true",
                        help="keep TensorFlow's and OpenMP's default threads (default: streaming_threads(), one "
                             "inter-op thread and a short OpenMP spin, for the runtime and the dense model alike)")
    args = parser.parse_args(argv)
    for path in (args.model, args.video):
        if Path(path).is_dir():
            parser.error(f"{path}: is a folder, expected a file")
        if not Path(path).is_file():
            parser.error(f"{path}: no such file")
    if args.frames is not None and args.frames < 2:
        parser.error(f"--frames must be >= 2 (a temporal delta needs two frames), got {args.frames}")
    if args.start < 0 or args.check_frames < 1:
        parser.error(f"--start must be >= 0 and --check-frames >= 1, got {args.start} and {args.check_frames}")
    if args.resync_every < 0:
        parser.error(f"--resync-every must be >= 0 (0: never), got {args.resync_every}")
    if args.calibrate is not None and (args.calibrate < 2 or args.fuse):
        parser.error(f"--calibrate N times the unfused runtime's convolutions on N >= 2 frames, got "
                     f"{args.calibrate}{' with --fuse' if args.fuse else ''}")
    args.break_evens = None  # where --dense-above names a file: (its path, what else it holds)
    if args.dense_above is not None:
        args.dense_above, args.break_evens = _dense_above(parser, args.dense_above)
    for flag in ("step", "threshold"):
        if getattr(args, flag) is not None and not getattr(args, flag) > 0:
            parser.error(f"--{flag} must be > 0, got {getattr(args, flag)}")
    if args.out:
        if Path(args.out).suffix.lower() not in (".avi", ".csv"):
            parser.error(f"--out {args.out}: expected a .avi (image outputs) or .csv (vectors) file")
        if Path(args.out).exists() and not args.overwrite:
            parser.error(f"--out {args.out}: exists; pass --overwrite to replace it")
    if args.save_break_evens:
        _check_break_evens_file(parser, args.save_break_evens, args.overwrite)
    if args.size is not None:
        try:
            args.size = tuple(int(v) for v in args.size.lower().split("x"))
        except ValueError:
            parser.error(f"--size {args.size}: expected HxW or one number, e.g. 192x256")
        args.size = args.size * 2 if len(args.size) == 1 else args.size
    return run_main(prog, lambda: _stream(args))


def _dense_above(parser: argparse.ArgumentParser, value: str) -> tuple[float | dict[str, float], tuple | None]:
    """``--dense-above``: one share, or the shares by layer of a file `save_break_evens` wrote (and the file)."""
    try:
        share = float(value)
    except ValueError:
        if Path(value).suffix.lower() != ".json" or not Path(value).is_file():
            parser.error(f"--dense-above {value}: expected a share in [0, 1] or an existing .json file of shares "
                         "(--save-break-evens)")
        from delta_keras.runtime.calibration import load_break_evens  # noqa: PLC0415

        try:
            shares, about = load_break_evens(value)
        except ValueError as error:
            parser.error(f"--dense-above {error}")
        return shares, (value, about)
    if not 0.0 <= share <= 1.0:
        parser.error(f"--dense-above must be a share in [0, 1], got {value}")
    return share, None


def _check_break_evens_file(parser: argparse.ArgumentParser, path: str, overwrite: bool) -> None:
    """``--save-break-evens``: a .json file that is new, or one this package wrote and --overwrite replaces."""
    from delta_keras.files import UnsafeWriteError, check_replaceable, is_generated_json  # noqa: PLC0415

    if Path(path).suffix.lower() != ".json":
        parser.error(f"--save-break-evens {path}: expected a .json file")
    if Path(path).exists() and not overwrite:
        parser.error(f"--save-break-evens {path}: exists; pass --overwrite to replace it")
    try:  # the check `save_break_evens` makes again when it writes, made before any work
        check_replaceable(path, is_generated_json, "--save-break-evens file")
    except UnsafeWriteError as error:
        parser.error(f"--save-break-evens {error}")


def _stream_model(args: argparse.Namespace):
    """The clip model to stream: the saved clip model, or the image model with post-hoc quantisers."""
    import keras  # noqa: PLC0415

    from delta_keras import sparsify  # noqa: PLC0415
    from delta_keras.train.run_folder import load_checkpoint  # noqa: PLC0415

    model = load_checkpoint(args.model)
    rank = len(model.inputs[0].shape) if getattr(model, "inputs", None) else 0
    converted = args.step is not None or args.threshold is not None
    if rank == 5 and converted:
        raise BadInput(f"{args.model}: already a clip model; --step and --threshold convert an image model")
    if rank == 4 and not converted:
        raise BadInput(f"{args.model}: an image model; give --step (a quantiser after every activation) or "
                       "--threshold (deltas with memory) to stream it")
    if rank not in (4, 5):
        raise BadInput(f"{args.model}: not an image or clip model (input {model.inputs[0].shape if rank else None})")
    shape = tuple(model.inputs[0].shape[1:])
    if None in shape[-3:-1]:  # frames of any size: the runtime keeps per-frame state, so it needs one
        if args.size is None:
            raise BadInput(f"{args.model}: takes frames of any size; give --size HxW")
        sized = keras.models.clone_model(model, input_tensors=keras.Input((*shape[:-3], *args.size, shape[-1])))
        sized.set_weights(model.get_weights())
        model = sized
    if rank == 4:
        memory = args.threshold is not None
        model = sparsify(model, frames=None, step_init=args.threshold if memory else args.step, granularity="layer",
                         memory=memory, sparsity_weight=0.0)
    return model, tuple(model.inputs[0].shape[2:4])


def _stream(args: argparse.Namespace) -> int:
    import time  # noqa: PLC0415

    import keras  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from delta_keras import strip_sparsity  # noqa: PLC0415
    from delta_keras.data import count_frames, read_clip  # noqa: PLC0415
    from delta_keras.runtime import DeltaRuntime, machine_summary, streaming_threads  # noqa: PLC0415
    from delta_keras.frames import check_clips  # noqa: PLC0415

    if not args.default_threads:
        # Inside a process that runs TensorFlow already (a test, a notebook) its threads stay as they are.
        with contextlib.suppress(RuntimeError):
            streaming_threads()
    model, size = _stream_model(args)
    available = count_frames(args.video) - args.start
    frames = min(available, args.frames or available)
    if frames < 2:
        raise BadInput(f"{args.video}: {max(available, 0)} frames from frame {args.start}; need at least 2")
    try:
        clip = check_clips(model, read_clip(args.video, frames, size, args.start)[None])
    except ValueError as error:  # e.g. colour frames for a grey-scale model
        raise BadInput(f"{args.model}: {error}") from error
    # Timed without counting (counting costs time a deployment would not spend); counted in a second pass.
    options = {"dense_above": args.dense_above, "cut_above": args.cut_above, "fuse": args.fuse,
               "resync_every": args.resync_every}
    try:
        runtime = DeltaRuntime(model, count_macs=False, **options)
    except ValueError as error:  # shares of a file for layers this model has not
        raise BadInput(f"--dense-above {args.break_evens[0] if args.break_evens else args.dense_above}: "
                       f"{error}") from error
    if args.break_evens:
        _report_break_evens(*args.break_evens, args.model, size)
    if args.calibrate:
        _calibrate(runtime, clip[:, :args.calibrate])
    if args.save_break_evens:
        from delta_keras.runtime.calibration import save_break_evens  # noqa: PLC0415

        measured = f"{args.video} frames {args.start}..{args.start + args.calibrate - 1}" if args.calibrate else None
        save_break_evens(args.save_break_evens, runtime.dense_above, model=args.model, frame_size=list(size),
                         calibrated_on=measured)
        print(f"break-evens: {args.save_break_evens}")
    dense = strip_sparsity(model)
    dense_step = tf.function(lambda frame: dense(frame, training=False))
    steps = (("runtime", runtime.step), ("dense", lambda frame: dense_step(frame[:, None])))
    seconds, outputs = {}, []
    for name, step in steps:
        bar = keras.utils.Progbar(frames, unit_name="frame") if sys.stdout.isatty() else None
        times = []
        for t in range(frames):
            started = time.perf_counter()
            output = np.asarray(step(tf.constant(clip[:, t])))
            times.append(time.perf_counter() - started)
            if name == "runtime":
                outputs.append(output)
            if bar is not None:
                bar.add(1)
        seconds[name] = float(np.mean(times[1:]))
    print(f"{args.video}: {frames} frames of {size[0]}x{size[1]} from frame {args.start}; {machine_summary()}")
    for name, label in (("dense", "dense forward, per frame"), ("runtime", "DeltaRuntime")):
        print(f"{label:<25} {1000 * seconds[name]:8.2f} ms/frame ({1 / seconds[name]:7.1f} frames/s)")
    print(f"speedup (frames 1..{frames - 1}): {seconds['dense'] / seconds['runtime']:.2f}x")
    counter = DeltaRuntime(model, **options)
    counter.run(clip)
    dense_macs = sum(counter.dense_macs.values()) * (frames - 1)
    later = lambda counts: sum(sum(per_frame[1:]) for per_frame in counts.values())  # noqa: E731
    triggered, executed = later(counter.macs), later(runtime.executed_macs)
    print(f"MACs, frames 1..{frames - 1}: dense {dense_macs:.4g}; the changes trigger {triggered:.4g} "
          f"({dense_macs / max(triggered, 1):.2f}x fewer); the runtime executed {executed:.4g} "
          f"({dense_macs / max(executed, 1):.2f}x fewer: dense-only layers and fallbacks at full cost)")
    checked = min(args.check_frames, frames)
    forward = np.asarray(model(clip[:, :checked], training=False))
    print(f"largest |runtime - forward pass| over the first {checked} frames: "
          f"{float(np.max(np.abs(runtime.plan.stack(outputs[:checked]) - forward))):.3g}")
    if args.out:
        _write_stream(args.out, np.concatenate(outputs, axis=0), runtime.plan.output_per_frame)
        print(f"outputs: {args.out}")
    return EXIT_OK


def _report_break_evens(path: str, about: dict, model: str, size: tuple) -> None:
    """Where the shares of ``--dense-above FILE`` come from, and whether they were measured for this stream (this
    machine, ``model``'s file name and frame ``size``)."""
    from delta_keras.runtime import machine_summary  # noqa: PLC0415

    machine, here = about.get("machine", "a machine not recorded"), machine_summary()
    print(f"break-evens from {path}, measured on {machine}")
    elsewhere = [f"on {machine}"] if machine != here else []
    if about.get("model") is not None and Path(about["model"]).name != Path(model).name:
        elsewhere.append(f"for {about['model']}")
    if about.get("frame_size") not in (None, list(size)):
        elsewhere.append(f"at {'x'.join(map(str, about['frame_size']))} frames")
    if elsewhere:
        print(f"note: they were measured {', '.join(elsewhere)}, not for this stream ({here}, "
              f"{Path(model).name}, {size[0]}x{size[1]}); --calibrate N measures them here")


def _calibrate(runtime, clip) -> None:
    """``runtime``'s break-evens measured on ``clip`` (`DeltaRuntime.calibrate`), printed beside the ones before."""
    try:
        measured = runtime.calibrate(clip)
    except ValueError as error:  # a model without a run of convolutions
        raise BadInput(f"--calibrate: {error}") from error
    print(f"calibrated on frames 0..{clip.shape[1] - 1}, dense above this share of changed inputs (before it): "
          + ", ".join(f"{name} {m.share:.2f} ({m.modelled:.2f})" for name, m in measured.items()))


def _write_stream(path: str, outputs: np.ndarray, per_frame: bool) -> None:
    """The runtime's outputs, one per frame: image outputs as a video (values in [0, 1] scaled to 255), vectors
    as CSV rows ``frame, output_0, ...``."""
    import numpy as np  # noqa: PLC0415

    from delta_keras.data import write_video  # noqa: PLC0415
    from delta_keras.files import atomic_save  # noqa: PLC0415

    outputs = outputs[:, 0] if per_frame else outputs  # (frames, ...)
    if path.lower().endswith(".avi"):
        if outputs.ndim != 4 or outputs.shape[-1] not in (1, 3):
            raise BadInput(f"--out {path}: the outputs are {outputs.shape[1:]} per frame, not images; use .csv")
        scale = 255.0 if float(outputs.max()) <= 1.0 else 1.0
        atomic_save(path, lambda temporary: write_video(temporary, outputs * scale))
        return
    rows = outputs.reshape(len(outputs), -1)
    header = "frame," + ",".join(f"output_{i}" for i in range(rows.shape[1]))
    lines = [header] + [f"{t}," + ",".join(f"{v:.6g}" for v in row) for t, row in enumerate(rows)]
    atomic_save(path, lambda temporary: temporary.write_text("\n".join(lines) + "\n"))
