"""UCF101 at its real size: start-up, memory, evaluation and the frame cache, measured side by side.

Builds a UCF101 layout with the real dataset's size (13,320 videos, 101 classes, three folds, the
``HandstandPushups``/``HandStandPushups`` spelling quirk, CRLF list files), every video a hard link of the
real Xvid clip in ../shared/data/real_clips/, so decoding costs what it costs on the real dataset. Then it
measures, each in a fresh process:

- seconds to the first training step: cold (nothing remembered) and with the remembered video index;
- peak memory of a run that validates on the whole test split;
- final-evaluation time at --eval-clips 1 and 4 (decoding the videos, no frame cache);
- training clips/s decoded from video and read from the frame cache; cache bytes per video.

    python benchmarks/ucf101_scale.py [--videos 13320] [--work /tmp/ucf101-scale]

Every figure is printed with the command-line settings it used; the work folder is removed at the end
when the benchmark created it (no --work) and --keep is not given.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START = time.time()
REPO = Path(__file__).resolve().parents[1]
REAL_AVI = REPO.parent / "shared/data/real_clips/v_ApplyEyeMakeup_g01_c01.avi"
CLASSES = 101


def class_names() -> list[str]:
    # Class 37 carries UCF101's spelling quirk: lists say HandstandPushups, files say HandStandPushups.
    return [f"Action{index:03d}" if index != 37 else "HandstandPushups" for index in range(CLASSES)]


def build_layout(root: Path, videos: int) -> Path:
    """UCF101's layout with ``videos`` names (about 25 groups of 4-7 clips a class), hard links of one clip."""
    source = root / "source.avi"
    root.mkdir(parents=True)
    shutil.copyfile(REAL_AVI, source)  # a local copy: hard links need one file system
    names = class_names()
    per_class = [videos // CLASSES + (index < videos % CLASSES) for index in range(CLASSES)]
    lists = {split: {fold: [] for fold in (1, 2, 3)} for split in ("train", "test")}
    for label, (name, count) in enumerate(zip(names, per_class)):
        folder = root / "UCF-101" / name
        folder.mkdir(parents=True)
        file_class = "HandStandPushups" if name == "HandstandPushups" else name
        for clip in range(count):
            group, index = clip % 25 + 1, clip // 25 + 1
            file_name = f"v_{file_class}_g{group:02d}_c{index:02d}.avi"
            os.link(source, folder / file_name)
            for fold in (1, 2, 3):
                test = (fold - 1) * 7 < group <= fold * 7  # groups 1-7, 8-14, 15-21 are the test groups
                entry = f"{name}/{file_name}" + ("" if test else f" {label + 1}")
                lists["test" if test else "train"][fold].append(entry)
    lists_dir = root / "ucfTrainTestlist"
    lists_dir.mkdir()
    crlf = lambda lines: "".join(f"{line}\r\n" for line in lines)  # noqa: E731
    (lists_dir / "classInd.txt").write_text(crlf(f"{i + 1} {n}" for i, n in enumerate(names)), newline="")
    for split, folds in lists.items():
        for fold, lines in folds.items():
            (lists_dir / f"{split}list0{fold}.txt").write_text(crlf(lines), newline="")
    return root


# ---------------------------------------------------------------------------- measurements (child processes)
def _config(args: argparse.Namespace, **changes):
    from delta_keras.train import TrainConfig

    settings = dict(dataset="ucf101", data_dir=str(args.root), frames=8, image_size=112, batch_size=16,
                    backbone="tiny", epochs=1, steps_per_epoch=1, logdir=str(args.work / f"run-{time.time_ns()}"),
                    cache_dir=str(args.work / "cache"), verify_videos="full")
    settings.update(changes)
    return TrainConfig(**settings)


class _FirstStep(Exception):
    pass


def first_step(args: argparse.Namespace) -> dict:
    """Seconds from process start to the end of the first training step (`train`, stopped there)."""
    import keras

    from delta_keras.train import loop

    class Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise _FirstStep

    original = keras.Model.fit

    def fit(self, *a, callbacks=(), **k):
        return original(self, *a, callbacks=[Stop(), *callbacks], **k)

    keras.Model.fit = fit
    try:
        loop.train(_config(args), verbose=0)
    except _FirstStep:
        return {"seconds_to_first_step": time.time() - START}
    raise RuntimeError("training ended before its first step")


def validation_memory(args: argparse.Namespace) -> dict:
    """Peak memory (max RSS) of one training step followed by validation on the whole test split."""
    from delta_keras.train import builders

    config = _config(args, cache_dir=None)  # the default: validation clips decoded each epoch
    model = builders.compiled_model(config)
    steps = builders.validation_steps(config)
    started = time.time()
    model.fit(builders.train_dataset(config), steps_per_epoch=1, epochs=1, verbose=0,
              validation_data=builders.validation_dataset(config), validation_steps=steps)
    return {"validation_videos": steps * config.batch_size, "fit_with_validation_s": time.time() - started,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def evaluation_time(args: argparse.Namespace) -> dict:
    """Seconds of the final evaluation (every test video) at --eval-clips ``args.eval_clips``."""
    from delta_keras.train import builders, evaluation

    config = _config(args, eval_clips=args.eval_clips, cache_dir=None)  # decoded from the videos, as a first evaluation
    model = builders.build_model(config)
    builders.video_folder(config, "test")  # opened (remembered) before the clock starts
    started = time.time()
    result = evaluation.evaluate_clips(model, builders.evaluation_dataset(config))
    return {"eval_clips": args.eval_clips, "clips": result["clips"], "videos": result["videos"],
            "evaluation_s": time.time() - started}


def clip_rate(args: argparse.Namespace) -> dict:
    """Training clips/s decoded from video (no cache), then filling the cache, then read from the cache."""
    from delta_keras.data import FrameCache, VideoFolder
    from delta_keras.data.cache import decode_frames

    folder = VideoFolder(args.root, "train", index=args.work / "cache" / "video-index.json")
    cache_dir = args.work / "rate-cache"
    result = {}
    for name, cache in (("video", None), ("filling_cache", cache_dir), ("cache", cache_dir)):
        dataset = folder.dataset(frames=8, image_size=112, training=True, cache_dir=cache).take(args.clips).batch(16)
        started = time.time()
        clips = sum(int(batch.shape[0]) for batch, _ in dataset)
        result[f"clips_per_s_{name}"] = clips / (time.time() - started)
    cache = FrameCache(cache_dir)
    cached = cache.own_files()
    result["cache_bytes_per_video"] = cache.size_bytes() / max(len(cached), 1)
    result["raw_bytes_per_video"] = decode_frames(cached[0]).nbytes  # every video is the same clip
    result["frames_per_video"] = folder.videos[0].num_frames
    return result


CHILDREN = {"first-step": first_step, "validation-memory": validation_memory, "evaluation": evaluation_time,
            "clip-rate": clip_rate}


def child(name: str, args: argparse.Namespace, *extra: str) -> dict:
    command = [sys.executable, __file__, "--child", name, "--root", str(args.root), "--work", str(args.work),
               "--clips", str(args.clips), *extra]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO),
           "XDG_CACHE_HOME": str(args.work / "xdg")}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=13320)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--clips", type=int, default=320, help="Training clips read per clips/s figure.")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--eval-clips", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from delta_keras.quiet import start_tensorflow

        start_tensorflow()
        print(json.dumps(CHILDREN[args.child](args)), flush=True)
        # tf.data's reader threads may still be inside Python (tf.numpy_function) after a stopped `fit`, which can
        # hang the interpreter's shutdown: the measurement is out, so leave at once.
        os._exit(0)
    if not REAL_AVI.is_file():
        sys.exit(f"needs the real clip {REAL_AVI}")
    own_folder = args.work is None
    args.work = args.work or Path(tempfile.mkdtemp(prefix="ucf101-scale-"))
    if not own_folder and args.work.exists() and any(args.work.iterdir()):
        sys.exit(f"--work {args.work}: not empty; give a new or empty folder")
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    args.root = build_layout(args.work / "ucf101", args.videos)
    print(f"layout: {args.videos} videos, {CLASSES} classes, 3 folds, built in {time.time() - started:.1f} s "
          f"({args.root}); cores usable: {len(os.sched_getaffinity(0))}")
    results = {"cold": child("first-step", args), "remembered": child("first-step", args)}
    results["validation"] = child("validation-memory", args)
    for clips in (1, 4):
        results[f"eval{clips}"] = child("evaluation", args, "--eval-clips", str(clips))
    results["rate"] = child("clip-rate", args)
    r = results
    rows = [
        ("first training step, cold (probing every video)", f"{r['cold']['seconds_to_first_step']:.1f} s"),
        ("first training step, remembered index", f"{r['remembered']['seconds_to_first_step']:.1f} s"
         f"  ({r['cold']['seconds_to_first_step'] / r['remembered']['seconds_to_first_step']:.1f}x faster)"),
        ("peak memory, 1 step + validation on the whole test split",
         f"{r['validation']['peak_rss_gb']:.2f} GB  ({r['validation']['validation_videos']} videos, "
         f"{r['validation']['fit_with_validation_s']:.0f} s)"),
        ("final evaluation from video, --eval-clips 1", f"{r['eval1']['evaluation_s']:.1f} s  ({r['eval1']['videos']} videos)"),
        ("final evaluation from video, --eval-clips 4", f"{r['eval4']['evaluation_s']:.1f} s  "
         f"({r['eval4']['evaluation_s'] / r['eval1']['evaluation_s']:.2f}x the time of 1)"),
        ("training clips/s (8x112x112), decoded from video", f"{r['rate']['clips_per_s_video']:.0f}"),
        ("training clips/s, filling the cache", f"{r['rate']['clips_per_s_filling_cache']:.0f}"),
        ("training clips/s, from the cache", f"{r['rate']['clips_per_s_cache']:.0f}  "
         f"({r['rate']['clips_per_s_cache'] / r['rate']['clips_per_s_video']:.1f}x video)"),
        (f"cache bytes per video ({r['rate']['frames_per_video']} frames, short side 112)",
         f"{r['rate']['cache_bytes_per_video'] / 1e6:.2f} MB  (raw {r['rate']['raw_bytes_per_video'] / 1e6:.1f} MB, "
         f"{r['rate']['raw_bytes_per_video'] / r['rate']['cache_bytes_per_video']:.1f}x smaller)"),
    ]
    width = max(len(name) for name, _ in rows)
    print("\n".join(f"{name:<{width}}  {value}" for name, value in rows))
    print(json.dumps(results))
    if own_folder and not args.keep:
        shutil.rmtree(args.work)  # the temporary folder this run created


if __name__ == "__main__":
    main()
