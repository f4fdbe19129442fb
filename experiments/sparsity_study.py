"""The sparsity study: accuracy against effective-MAC reduction for every method, one command.

Runs, with the same backbone, data and budget: the dense baseline; post-hoc delta inference (the trained
baseline with fixed-step quantisers, several steps, no training) and post-hoc deltas with memory
(Event Neural Networks' rule, per-layer thresholds calibrated on held-out videos, no training); the
spatial L1 baseline (refinement, several weights); DeltaActivation refined from the baseline (several
weights, both step gradients; and with memory) and from scratch. Writes <out>/summary.json, the figures, and with --report a Markdown report generated from
the summaries.

    python experiments/sparsity_study.py --out results/tiny --report docs/RESULTS.md
    python experiments/sparsity_study.py --dataset ucf101 --data-dir /data/ucf101 --backbone mobilenet \
        --image-size 112 --frames 16 --out results/ucf101-mobilenet

Completed runs in --out are reused, so an interrupted study continues where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from delta_keras.cli import CommandParser
from delta_keras.quiet import start_command
from delta_keras.study import ALL_METHODS, StudyConfig, run_study, write_report
from delta_keras.train import ConfigError, add_config_arguments, config_from_args

REAL_CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_clips" / "v_ApplyEyeMakeup_g01_c01.avi"
DEFAULTS = StudyConfig(base=None)


def floats(text: str) -> tuple:
    return tuple(float(v) for v in text.split(",") if v)


def words(text: str) -> tuple:
    return tuple(v for v in text.split(",") if v)


def parser() -> argparse.ArgumentParser:
    p = CommandParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s = p.add_argument_group("study")
    s.add_argument("--out", default="results/study", help="Study folder: run folders, summary.json, figures.")
    s.add_argument("--methods", type=words, default=ALL_METHODS, help=f"Comma-separated, of {','.join(ALL_METHODS)}.")
    s.add_argument("--dense-epochs", type=int, default=DEFAULTS.dense_epochs,
                   help="Epochs of the baseline and of DeltaActivation from scratch.")
    s.add_argument("--refine-epochs", type=int, default=DEFAULTS.refine_epochs, help="Epochs of the refinements.")
    s.add_argument("--refine-learning-rate", type=float, default=DEFAULTS.refine_learning_rate)
    s.add_argument("--posthoc-steps", type=floats, default=DEFAULTS.posthoc_steps, help="Comma-separated steps.")
    s.add_argument("--posthoc-agreements", type=floats, default=DEFAULTS.posthoc_agreements,
                   help="Post-hoc memory: agreement targets with the baseline's predictions on held-out videos, "
                        "one point each.")
    s.add_argument("--posthoc-thresholds", type=floats, default=DEFAULTS.posthoc_thresholds,
                   help="Post-hoc memory: the thresholds each layer's calibration tries.")
    s.add_argument("--l1-weights", type=floats, default=DEFAULTS.l1_weights)
    s.add_argument("--delta-weights", type=floats, default=DEFAULTS.delta_weights)
    s.add_argument("--memory-weights", type=floats, default=DEFAULTS.memory_weights,
                   help="Sparsity weights of the memory-mode refinements (delta_memory_refine).")
    s.add_argument("--step-gradients", type=words, default=DEFAULTS.step_gradients,
                   help="Step gradients of the refined DeltaActivation runs (lsq,paper).")
    s.add_argument("--scratch-step-gradients", type=words, default=DEFAULTS.scratch_step_gradients)
    s.add_argument("--delta-step-init", type=float, default=DEFAULTS.step_init)
    s.add_argument("--delta-input-step", type=float, default=DEFAULTS.input_step_init,
                   help="Also quantise the input frames of the delta and post-hoc runs, with this initial step "
                        "(pixel units, 0-255).")
    s.add_argument("--calibration-videos", type=int, default=None,
                   help="Post-hoc memory: calibrate on the centre clips of at most this many selection videos "
                        "(class-balanced; default: all). Each layer's every threshold tried is one pass over them.")
    s.add_argument("--headline-seeds", type=lambda text: tuple(int(v) for v in text.split(",") if v), default=(),
                   help="Comma-separated other seeds: the dense baseline, each post-hoc kind's chosen point and the "
                        "best DeltaActivation point run again with each (the report shows their spread).")
    s.add_argument("--whole-clips", action="store_true",
                   help="Measure every model on whole test videos (every frame at --frame-stride, frame 0 charged) "
                        "instead of the training's evaluation clips (--dataset ucf101 or folder).")
    s.add_argument("--refine-from-posthoc", action="store_true",
                   help="Start delta_refine from the post-hoc fixed-step point and delta_memory_refine from the "
                        "post-hoc memory point chosen on the selection set, instead of the dense model.")
    s.add_argument("--posthoc-target", type=float, default=DEFAULTS.posthoc_target,
                   help="Target: the best DeltaActivation point has this many times fewer zero_delta MACs than the "
                        "best post-hoc point at equal or better accuracy.")
    s.add_argument("--dense-target", type=float, default=None,
                   help="Target: the dense baseline's video accuracy (0.3 = 30 %%).")
    s.add_argument("--tolerance", type=float, default=DEFAULTS.tolerance, help="Accuracy loss allowed (0.01 = 1 point).")
    s.add_argument("--real-clip", default=str(REAL_CLIP) if REAL_CLIP.is_file() else None,
                   help="Video for the density-over-frames figure ('' for none).")
    s.add_argument("--real-clip-frames", type=int, default=DEFAULTS.real_clip_frames)
    s.add_argument("--report", help="Also write this Markdown report (e.g. docs/RESULTS.md), figures copied "
                                    "under <report folder>/results/<study>/.")
    s.add_argument("--report-also", action="append", default=[], help="Other study folders to include in the report.")
    s.add_argument("--report-real-footage", action="append", default=[],
                   help="Real-footage study folders (experiments/real_footage_study.py) to include in the report.")
    s.add_argument("--report-note", default="", help="Markdown put at the top of the report (what it covers).")
    s.add_argument("--report-keep", action="store_true",
                   help="Keep the sections of the existing report that this invocation does not write (studies not "
                        "given, as generated before); new sections go before the column definitions.")
    s.add_argument("--report-only", action="store_true", help="Only (re)write the report from existing summaries.")
    add_config_arguments(p, exclude=("sparsity", "sparsity_weight", "sparsity_schedule", "sparsity_start_step",
                                     "sparsity_warmup_steps", "step_init", "granularity", "step_gradient",
                                     "include_input", "input_step_init", "memory", "checkpoint_every_steps",
                                     "init_from", "epochs", "logdir", "resume"))
    p.set_defaults(steps_per_epoch=100, synthetic_videos=4800, synthetic_test_videos=240, validation_steps=8)
    return p


def study_from_args(args: argparse.Namespace) -> StudyConfig:
    return StudyConfig(
        base=config_from_args(args), out=args.out, methods=args.methods, dense_epochs=args.dense_epochs,
        refine_epochs=args.refine_epochs, refine_learning_rate=args.refine_learning_rate,
        posthoc_steps=args.posthoc_steps, posthoc_agreements=args.posthoc_agreements,
        posthoc_thresholds=args.posthoc_thresholds, l1_weights=args.l1_weights, delta_weights=args.delta_weights,
        memory_weights=args.memory_weights,
        step_gradients=args.step_gradients, scratch_step_gradients=args.scratch_step_gradients,
        step_init=args.delta_step_init, input_step_init=args.delta_input_step, tolerance=args.tolerance, real_clip=args.real_clip or None,
        real_clip_frames=args.real_clip_frames, whole_clips=args.whole_clips, calibration_videos=args.calibration_videos,
        posthoc_target=args.posthoc_target, dense_target=args.dense_target, headline_seeds=args.headline_seeds,
        refine_from_posthoc=args.refine_from_posthoc)


def main(argv: list[str] | None = None) -> dict | None:
    start_command()
    command = parser()
    args = command.parse_args(argv)
    study = study_from_args(args)
    summary = None
    if not args.report_only:
        try:
            dataclasses.replace(study.base, epochs=study.dense_epochs).validate()
            study.validate()
        except (ConfigError, ValueError) as error:
            command.error(str(error))
        summary = run_study(study)
    if args.report:
        write_report([args.out, *args.report_also], args.report, preamble=args.report_note,
                     real_footage=args.report_real_footage, keep=args.report_keep)
        print(f"report: {args.report}")
    return summary


if __name__ == "__main__":
    main()
