"""How video decoding scales with cores: threads against processes, side by side in one run.

The loaders decode in Python callbacks (`tf.numpy_function` under tf.data, a thread pool when probing).
OpenCV releases the GIL while it decodes, so threads should scale; the Python around each call (seeking,
colour conversion, resizing, stacking) holds it. This benchmark decodes random 8-frame clips of the real
UCF101 clip (resized to short side 112, as training does) with 1, 2, 4... workers, as threads and as
processes, and prints clips/s and the speedup over one worker. It needs only OpenCV and NumPy (the decoder
module is loaded on its own), so it runs on machines without TensorFlow too.

    python benchmarks/decode_scaling.py [--clips 400] [--video PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL_AVI = REPO.parent / "shared/data/real_clips/v_ApplyEyeMakeup_g01_c01.avi"


def _video_module():
    spec = importlib.util.spec_from_file_location("delta_keras_video", REPO / "delta_keras/data/video.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VIDEO = _video_module()


def decode_clip(task: tuple[str, int]) -> int:
    path, start = task
    return int(VIDEO.read_frames(path, np.arange(start, start + 8), 112).shape[0])


def one_read_for_all_clips(path: str, frames: int, clips: int = 4, rounds: int = 20) -> tuple[float, float]:
    """Seconds to read one evaluation clip, and the ``clips`` evenly spread evaluation clips of a video in one read
    (as the loaders do: one open, one forward decode)."""
    starts = [((2 * k + 1) * (frames - 8)) // (2 * clips) for k in range(clips)]
    spread = np.concatenate([np.arange(s, s + 8) for s in starts])
    centre = np.arange((frames - 8) // 2, (frames - 8) // 2 + 8)
    timings = []
    for indices in (centre, spread):
        started = time.perf_counter()
        for _ in range(rounds):
            VIDEO.read_frames(path, indices, 112)
        timings.append((time.perf_counter() - started) / rounds)
    return timings[0], timings[1]


def rate(pool_class, workers: int, tasks: list) -> float:
    with pool_class(max_workers=workers) as pool:
        list(pool.map(decode_clip, tasks[:workers]))  # start the workers (processes import OpenCV) first
        started = time.perf_counter()
        decoded = sum(pool.map(decode_clip, tasks, chunksize=4) if pool_class is ProcessPoolExecutor
                      else pool.map(decode_clip, tasks))
    return decoded / 8 / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", default=str(REAL_AVI))
    parser.add_argument("--clips", type=int, default=400)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    frames = VIDEO.probe_video(args.video)
    one, four = one_read_for_all_clips(args.video, frames)
    print(f"evaluation reads: 1 centre clip {1000 * one:.1f} ms; the 4 evaluation clips of the video in one read "
          f"{1000 * four:.1f} ms ({four / one:.2f}x)")
    rng = np.random.default_rng(0)
    tasks = [(args.video, int(s)) for s in rng.integers(0, frames - 8, args.clips)]
    counts = [n for n in (1, 2, 4, 8, 16, 32) if n <= cores]
    print(f"{args.clips} random 8-frame clips of {Path(args.video).name} ({frames} frames), short side 112; "
          f"{cores} usable cores")
    print(f"{'workers':>7}  {'threads clips/s':>15}  {'speedup':>7}  {'processes clips/s':>17}  {'speedup':>7}")
    base = {}
    for workers in counts:
        row = []
        for pool_class in (ThreadPoolExecutor, ProcessPoolExecutor):
            value = rate(pool_class, workers, tasks)
            base.setdefault(pool_class, value)
            row += [value, value / base[pool_class]]
        print(f"{workers:>7}  {row[0]:>15.1f}  {row[1]:>6.2f}x  {row[2]:>17.1f}  {row[3]:>6.2f}x")


if __name__ == "__main__":
    main()
