"""Does `DeltaRuntime` drift from the forward pass over a long stream? Its deviation, window by window.

HED (the real pretrained edge detector) with post-hoc quantisers streams a real clip of a few hundred frames
frame by frame; every output is compared with the reference computed without any state carried over:

- per-frame quantisers (``--step``): the clip model's forward pass (its frames are independent);
- memory thresholds (``--memory``): `delta_keras.sim.DeltaInference`, which recomputes every layer from its
  whole input each frame (no accumulator), with the same thresholds.

Per window of ``--window`` frames it prints the share of output elements off the reference by more than 1e-3,
the largest difference and the edge F1 against the reference. A runtime whose accumulators collect rounding
error shows the share growing from window to window; one that does not shows it flat.

    python benchmarks/streaming_drift.py [--clip sam2_cups.mp4] [--size 96,128] [--step 8] [--frames 300]
    python benchmarks/streaming_drift.py --memory --step 4
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from delta_keras import sparsify
from delta_keras.data import read_clip
from delta_keras.models.hed import hed_edge_detector
from delta_keras.runtime import DeltaRuntime
from delta_keras.sim import DeltaInference
from delta_keras.study.real_footage import edge_f1

FOOTAGE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "footage")


def deviations(outputs: np.ndarray, reference: np.ndarray, window: int) -> list[dict]:
    """Per window of frames: share off by > 1e-3, largest difference, edge F1 (outputs ``(frames, ...)``)."""
    rows = []
    for start in range(0, len(outputs), window):
        mine, theirs = outputs[start:start + window], reference[start:start + window]
        error = np.abs(mine - theirs)
        rows.append({"frames": f"{start}-{start + len(mine) - 1}", "off": float(np.mean(error > 1e-3)),
                     "max": float(error.max()), "f1": edge_f1(theirs, mine)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default="sam2_cups.mp4", help=f"a clip in {FOOTAGE} (or a path)")
    parser.add_argument("--size", default="96,128", help="frame height,width")
    parser.add_argument("--step", type=float, default=8.0, help="quantisation step (memory: the threshold)")
    parser.add_argument("--memory", action="store_true", help="memory thresholds instead of per-frame steps")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--resync-every", type=int, default=32,
                        help="DeltaRuntime's resync_every: each convolution recomputed densely after this many sparse "
                             "updates in a row that multiplied changes (0: never)")
    parser.add_argument("--dense-above", type=float,
                        help="DeltaRuntime's dense_above for every layer (default: each layer's break-even)")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split(","))
    path = args.clip if os.path.isfile(args.clip) else os.path.join(FOOTAGE, args.clip)
    clip = read_clip(path, args.frames, (height, width))[None]
    model = sparsify(hed_edge_detector(height, width), frames=None, step_init=args.step, granularity="layer",
                     memory=args.memory)
    runtime = DeltaRuntime(model, count_macs=False, resync_every=args.resync_every, dense_above=args.dense_above)
    outputs = np.concatenate([np.asarray(runtime.step(clip[:, t]))[0] for t in range(clip.shape[1])])
    if args.memory:
        engine = DeltaInference(model)
        reference = np.concatenate([np.asarray(engine.step(clip[:, t]))[0] for t in range(clip.shape[1])])
    else:
        reference = np.concatenate([np.asarray(model(clip[:, t:t + 25]))[0] for t in range(0, clip.shape[1], 25)])
    shares = "each layer's break-even" if args.dense_above is None else f"{args.dense_above:g}"
    mode = f"memory threshold {args.step:g}" if args.memory else f"step {args.step:g}"
    print(f"HED {height}x{width}, {mode}, {os.path.basename(path)}: {clip.shape[1]} frames through DeltaRuntime "
          f"against {'DeltaInference' if args.memory else 'the forward pass'}; re-sync every {args.resync_every} "
          f"sparse updates with changes, dense above {shares}")
    print(f"{'frames':>9} {'off > 1e-3':>10} {'max':>8} {'edge F1':>8}")
    for row in deviations(outputs, reference, args.window):
        print(f"{row['frames']:>9} {row['off']:>10.2%} {row['max']:>8.1e} {row['f1']:>8.4f}")


if __name__ == "__main__":
    main()
