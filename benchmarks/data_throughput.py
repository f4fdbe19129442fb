"""Clips per second of the data sources, measured side by side.

Reads 16x112x112 training clips from the real UCF101 AVI (linked many times into
a UCF101 tree) three ways: decoding with OpenCV (first epoch, no cache),
filling the frame cache, and reading the cache; then renders 16x64x64
synthetic clips. Run from the repository root:

    python benchmarks/data_throughput.py
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import tensorflow as tf

from delta_keras.data import synthetic_actions, ucf101

REAL_AVI = Path(__file__).resolve().parents[1].parent / "shared/data/real_clips/v_ApplyEyeMakeup_g01_c01.avi"


def throughput(dataset: tf.data.Dataset, batch_size: int = 8) -> tuple[float, float]:
    """Iterates `dataset` once in batches.

    Returns:
        Clips per wall-clock second, and clips per CPU second of this process
        (all threads). On a shared machine the second is the steadier figure:
        times the number of cores it estimates the rate with the cores to itself.
    """
    clips, start, cpu_start = 0, time.perf_counter(), _cpu_seconds()
    for batch, _ in dataset.batch(batch_size).prefetch(2):
        clips += int(batch.shape[0])
    return clips / (time.perf_counter() - start), clips / (_cpu_seconds() - cpu_start)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ucf101_tree(root: Path, video: Path, copies: int) -> Path:
    """A one-class UCF101 tree whose `copies` videos all link to `video`."""
    (root / "UCF-101" / "ApplyEyeMakeup").mkdir(parents=True)
    (root / "ucfTrainTestlist").mkdir()
    (root / "ucfTrainTestlist" / "classInd.txt").write_text("1 ApplyEyeMakeup\n")
    lines = []
    for i in range(copies):
        relative = f"ApplyEyeMakeup/v_ApplyEyeMakeup_g{i // 7 + 1:02d}_c{i % 7 + 1:02d}.avi"
        os.symlink(video.resolve(), root / "UCF-101" / relative)
        lines.append(f"{relative} 1\n")
    (root / "ucfTrainTestlist" / "trainlist01.txt").write_text("".join(lines))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=REAL_AVI, help="video to decode (default: the real UCF101 AVI)")
    parser.add_argument("--videos", type=int, default=96, help="videos in the UCF101 tree")
    parser.add_argument("--synthetic-videos", type=int, default=512)
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = ucf101_tree(Path(scratch) / "ucf", args.video, args.videos)
        settings = dict(frames=16, image_size=112, seed=0)
        results["decode (OpenCV, seek)"] = throughput(ucf101(root, **settings))
        cached = ucf101(root, cache_dir=Path(scratch) / "cache", **settings)
        results["cache fill (first epoch)"] = throughput(cached)
        results["cached (later epochs)"] = throughput(cached)
    synthetic = synthetic_actions("train", num_videos=args.synthetic_videos, frames=16, image_size=64)
    results["synthetic 16x64x64"] = throughput(synthetic)

    cores = len(os.sched_getaffinity(0))
    print(f"\n{args.video.name} -> 16x112x112 training clips; synthetic 16x64x64; {cores} cores")
    print(f"  {'source':28s} {'clips/s':>8s} {'clips/CPU-s':>12s} {f'x {cores} cores':>10s}")
    for name, (rate, cpu_rate) in results.items():
        print(f"  {name:28s} {rate:8.1f} {cpu_rate:12.1f} {cpu_rate * cores:10.1f}")

if __name__ == "__main__":
    main()
