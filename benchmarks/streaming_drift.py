"""Does `DeltaRuntime` drift from the forward pass over a long stream? Its deviation, window by window.

HED (the real pretrained edge detector) with post-hoc quantisers streams a real clip of a few hundred frames
frame by frame; every output is compared with the reference computed without any state carried over:

- per-frame quantisers (``--step``): the clip model's forward pass (its frames are independent);
- memory thresholds (``--memory``): `delta_keras.sim.DeltaInference`, which recomputes every layer from its
  whole input each frame (no accumulator), with the same thresholds.

Per window of ``--window`` frames it prints the share of output elements off the reference by more than 1e-3,
the largest difference and the edge F1 against the reference. A runtime whose accumulators collect rounding
error shows the share growing from window to window; one that does not shows it flat.

The reference is float32 too, and its rounding depends on the convolution library. So the reference is computed a
second time in a child process with TensorFlow's other CPU convolution library (``TF_ENABLE_ONEDNN_OPTS`` flipped:
oneDNN against Eigen), and the table shows how far that second reference is from the first. Where the runtime is
no further from the reference than the two references are from each other, what remains is float32 itself, not
the runtime (``--no-second-reference`` skips it).

``--calibrate N`` first times the convolutions' break-evens on the clip's first N frames (`DeltaRuntime.calibrate`,
as ``delta-keras-stream --calibrate N`` does) and streams with them: a convolution that runs sparse more often decides
more float32 ties at its quantiser otherwise than the forward pass, and the table shows whether that grows.

    python benchmarks/streaming_drift.py [--clip sam2_cups.mp4] [--size 96,128] [--step 8] [--frames 300]
    python benchmarks/streaming_drift.py --memory --step 4
    python benchmarks/streaming_drift.py --calibrate 12
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

from delta_keras import sparsify
from delta_keras.data import read_clip
from delta_keras.models.hed import hed_edge_detector
from delta_keras.runtime import DeltaRuntime, streaming_threads
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


def reference_outputs(model, clip: np.ndarray, memory: bool) -> np.ndarray:
    """Outputs ``(frames, ...)`` computed without a runtime's state: `DeltaInference` for memory thresholds (it
    recomputes every layer from its whole input each frame), else the clip model's forward pass."""
    if memory:
        engine = DeltaInference(model)
        return np.concatenate([np.asarray(engine.step(clip[:, t]))[0] for t in range(clip.shape[1])])
    return np.concatenate([np.asarray(model(clip[:, t:t + 25]))[0] for t in range(0, clip.shape[1], 25)])


def onednn_on(environment) -> bool:
    # TensorFlow's default on x86 Linux: oneDNN unless TF_ENABLE_ONEDNN_OPTS is 0 or false (any case, as TensorFlow
    # reads it).
    return environment.get("TF_ENABLE_ONEDNN_OPTS", "1").lower() not in ("0", "false")


def second_reference(arguments: list[str]) -> np.ndarray:
    """The reference recomputed in a child process with the other convolution library (TensorFlow reads
    ``TF_ENABLE_ONEDNN_OPTS`` once, at import)."""
    environment = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0" if onednn_on(os.environ) else "1")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "reference.npy")
        subprocess.run([sys.executable, __file__, *arguments, "--save-reference", path], env=environment,
                       check=True, stdout=subprocess.DEVNULL)
        return np.load(path)


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
    parser.add_argument("--calibrate", type=int, metavar="N",
                        help="time the convolutions' break-evens on the clip's first N frames first "
                             "(DeltaRuntime.calibrate; N >= 2)")
    parser.add_argument("--no-second-reference", action="store_true",
                        help="skip the reference computed with the other convolution library")
    parser.add_argument("--save-reference", help=argparse.SUPPRESS)  # the child process's output file
    args = parser.parse_args()
    if args.calibrate is not None and args.calibrate < 2:
        parser.error(f"--calibrate N times the convolutions on N >= 2 frames, got {args.calibrate}")
    streaming_threads()  # as a deployment streams (and calibrates): before TensorFlow's first op
    height, width = (int(v) for v in args.size.split(","))
    path = args.clip if os.path.isfile(args.clip) else os.path.join(FOOTAGE, args.clip)
    clip = read_clip(path, args.frames, (height, width))[None]
    model = sparsify(hed_edge_detector(height, width), frames=None, step_init=args.step, granularity="layer",
                     memory=args.memory)
    if args.save_reference:
        np.save(args.save_reference, reference_outputs(model, clip, args.memory))
        return
    runtime = DeltaRuntime(model, count_macs=False, resync_every=args.resync_every, dense_above=args.dense_above)
    shares = "each layer's break-even" if args.dense_above is None else f"{args.dense_above:g}"
    if args.calibrate:
        measured = runtime.calibrate(clip[:, :args.calibrate])
        moved = ", ".join(f"{name} {m.share:.2f} ({m.modelled:.2f})" for name, m in measured.items()
                          if m.share != m.modelled)
        shares = f"as calibrated on frames 0..{args.calibrate - 1} ({moved or 'none moved'})"
    outputs = np.concatenate([np.asarray(runtime.step(clip[:, t]))[0] for t in range(clip.shape[1])])
    reference = reference_outputs(model, clip, args.memory)
    other = None if args.no_second_reference else second_reference(sys.argv[1:])
    mode = f"memory threshold {args.step:g}" if args.memory else f"step {args.step:g}"
    print(f"HED {height}x{width}, {mode}, {os.path.basename(path)}: {clip.shape[1]} frames through DeltaRuntime "
          f"against {'DeltaInference' if args.memory else 'the forward pass'}; re-sync every {args.resync_every} "
          f"sparse updates with changes, dense above {shares}")
    library, second = ("oneDNN", "Eigen") if onednn_on(os.environ) else ("Eigen", "oneDNN")
    print(f"reference: convolutions by {library}" + ("" if other is None else
          f"; second reference: the same computed by {second} (TF_ENABLE_ONEDNN_OPTS flipped, a child process)"))
    columns = [("runtime vs reference", deviations(outputs, reference, args.window))]
    if other is not None:
        columns += [(f"{second} vs {library} reference", deviations(other, reference, args.window)),
                    (f"runtime vs {second} reference", deviations(outputs, other, args.window))]
    print(f"{'':>9}" + "".join(f" | {title:^28}" for title, _ in columns))
    print(f"{'frames':>9}" + f" | {'off > 1e-3':>10} {'max':>8} {'edge F1':>8}" * len(columns))
    for index, row in enumerate(columns[0][1]):
        print(f"{row['frames']:>9}" + "".join(f" | {rows[index]['off']:>10.2%} {rows[index]['max']:>8.1e} "
                                              f"{rows[index]['f1']:>8.4f}" for _, rows in columns))


if __name__ == "__main__":
    main()
