"""Does temporal sparsity make streaming inference faster on a CPU? `DeltaRuntime` against dense, side by side.

For HED (VGG16 edge detector, the real pretrained network of `delta_keras.models.hed`) at a few frame sizes
and post-hoc quantisation steps (sparsity levels), on real clips, in one process with the same weights:

- ``dense``: the same clip model (``strip_sparsity``: the quantisers without the training-only loss and
  statistics) compiled with `tf.function`, one frame per call;
- ``runtime``: `delta_keras.DeltaRuntime`, one ``step(frame)`` per frame.

Per setting it prints milliseconds per frame (frames 1..T-1: frame 0 is dense for both), the speedup, the MAC
reduction over those frames (``zero_delta``: dense MACs / MACs of the nonzero changes, elementwise, as
`count_macs` counts them) and the reduction of the MACs the runtime executed (dense-only layers and dense
fallbacks at full cost), and where the runtime's time goes over those frames: listing changed elements,
multiplying them in (with the output pass, which finishes every output), the dense frames of convolutions inside
a run of convolutions (unfused: a fallback or a re-sync, TensorFlow's convolution and the output pass), the fused
runtime's epilogues, and the rest (the graph's other layers, dense frames outside runs, handing outputs between
TensorFlow and the kernels). Before timing it checks, on the first clip, that the runtime's outputs match the
forward pass and that its MAC counts equal `count_macs`. ``cuts`` counts the
frames the runtime takes for scene cuts (relative change above its ``cut_above``: it runs them densely as a whole,
as the dense model does), and ``w/o cuts`` is the speedup over the other frames. Both the dense model and the
runtime run under `delta_keras.runtime.streaming_threads` (one TensorFlow inter-op thread, a short OpenMP spin;
``--default-threads``: the libraries' defaults).

Scene cuts: ``cut`` alternates the frames of two clips, so every frame is a scene cut; the runtime must
then fall back to dense and not be much slower (target >= 0.9x). ``static`` repeats the first clip's first
frame: nothing changes after frame 0, so its time is the runtime's floor, what it costs to find no change.

    python benchmarks/streaming_speed.py [--sizes 96,192] [--steps 8,32] [--frames 12] [--repeats 2]
    python benchmarks/streaming_speed.py --model RUN_FOLDER_OR_KERAS_FILE     # a trained clip model instead
    python benchmarks/streaming_speed.py --classifier [--model RUN]   # the study's classifier on JHMDB clips

``--layers`` measures instead, for single VGG16 layers of HED on the change between two frames of the first
clip, the share of changed elements, of pixels with any changed channel and of 8x8 output tiles a change
reaches (what a pixel- or tile-gathering kernel would have to compute), and the time of the element-sparse
kernel against the layer's dense convolution. ``--break-even`` times each layer's sparse kernel against its
dense convolution at several shares of changed input elements and prints the share where they cross, next to
the runtime's cost model (`delta_keras.runtime.kernels.break_even`, the default ``dense_above``). ``--calibrate``
adds a third runtime to HED's rows, timed side by side: the unfused one with the break-evens `DeltaRuntime.calibrate`
measures inside its run on a footage clip that no row streams, or (``--calibrate own``) on each clip's own frames after
the timed ones, as a deployment calibrates on the first seconds of its stream. ``--cuts`` prints the relative change
of consecutive frames, ``mean |frame - previous| / mean |frame|``, of every real clip against that between the first
frames of two different clips: the statistic `DeltaRuntime` detects scene cuts with (``cut_above``).

``--pause MS`` sleeps before every frame, the runtime's and the dense model's alike, as a camera's frames come at its
frame rate and not one right after the other: on a CPU whose library threads go to sleep between frames, a dense
frame after a pause costs more than one right after another (docs/runtime.md, "What a scene cut costs").
"""

from __future__ import annotations

import argparse
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from delta_keras import sparsify, strip_sparsity
from delta_keras.models import video_classifier
from delta_keras.models.hed import hed_edge_detector
from delta_keras.runtime import DeltaRuntime, machine_summary, streaming_threads
from delta_keras.runtime.delta_runtime import relative_change
from delta_keras.sim import count_macs
from delta_keras.data import read_clip
from delta_keras.study.methods import delta_layers, posthoc_delta_model
from delta_keras.study.real_footage import edge_f1
from delta_keras.train import TrainConfig, build_model
from delta_keras.train.run_folder import load_model_from

CLIPS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "real_clips")
FOOTAGE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "footage")
JHMDB = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "jhmdb")
# The first clip of each of these JHMDB classes: a face and hands (brush_hair), a still camera (golf), a moving one (run).
CLASSIFIER_CLASSES = ("brush_hair", "golf", "run")
DEFAULT_CLIPS = "v_ApplyEyeMakeup_g01_c01.avi,hmdb51_talk.mp4,cleaning_pool_k400.mp4"
# `--calibrate`: a footage clip none of the rows streams (a still camera, a person moving), and the strides its frames
# are streamed at (larger strides: more change a frame).
CALIBRATION_CLIP = "sam2_bedroom.mp4"
OWN_FRAMES = "own"  # `--calibrate own`: each clip on its own frames after the timed ones
CALIBRATION_STRIDES = (1, 2, 4)


def per_frame_seconds(step, frames: list, pause: float = 0.0) -> np.ndarray:
    """Wall seconds of ``step(frame)`` for each frame, each result waited for (and, with ``pause``, each frame after
    that many seconds asleep: a camera's frame not there yet)."""
    seconds = []
    for frame in frames:
        if pause:
            time.sleep(pause)
        started = time.perf_counter()
        np.asarray(step(frame))
        seconds.append(time.perf_counter() - started)
    return np.asarray(seconds)


def check(model, runtime: DeltaRuntime, clip: np.ndarray) -> str:
    """Outputs against the forward pass and MAC counts against count_macs, as one line."""
    outputs, expected = runtime.run(clip), np.asarray(model(clip))
    error = np.abs(outputs - expected)
    report = count_macs(model, clip, policies=("zero_delta",))
    # Layers counted once a frame (count_macs counts a layer after a time average once a clip; the runtime, once a
    # step).
    frames = clip.shape[1]
    counted = np.asarray([layer.macs("zero_delta") for layer in report.layers if len(layer.macs("zero_delta")) == frames],
                         np.float64)
    ours = np.asarray([runtime.macs[layer.name] for layer in report.layers
                       if len(layer.macs("zero_delta")) == frames], np.float64)
    f1 = f"edge F1 against the forward pass {edge_f1(expected, outputs):.4f}; " if outputs.ndim >= 4 else ""
    return (f"max |output - forward| {error.max():.1e}, outputs off by > 1e-3: {np.mean(error > 1e-3):.2%}, {f1}"
            f"MACs per frame vs count_macs: largest difference "
            f"{np.max(np.abs(ours - counted).sum(0) / counted.sum(0)):.1e}"
            f" of a frame's total, layers x frames equal: {np.mean(ours == counted):.0%}")


def measure(runtimes: dict, counter: DeltaRuntime, dense, clip: np.ndarray, repeats: int, pause: float = 0.0) -> dict:
    """Per-frame seconds of each of ``runtimes`` and of ``dense`` (medians over repeats, each repeat running them one
    after the other, so that all see the same machine load; each frame after ``pause`` seconds asleep), each runtime's
    share of time in its kernels' passes over frames 1..T-1 (medians over repeats), the MAC reductions over those
    frames (``counter`` counts the zero_delta MACs) and which frames are scene cuts by the runtime's statistic
    (``cuts``, frame 0 excluded)."""
    frames = [tf.constant(clip[:, t]) for t in range(clip.shape[1])]
    times, shares = {name: [] for name in (*runtimes, "dense")}, {name: [] for name in runtimes}
    for _ in range(repeats):
        for name, runtime in runtimes.items():
            runtime.reset()
            first = per_frame_seconds(runtime.step, frames[:1], pause)  # dense as a whole: not in the split
            before = runtime.kernel_seconds
            following = per_frame_seconds(runtime.step, frames[1:], pause)
            after = runtime.kernel_seconds
            times[name].append(np.concatenate([first, following]))
            shares[name].append({part: (after[part] - before[part]) / following.sum() for part in after})
        times["dense"].append(per_frame_seconds(lambda f: dense(f[:, None]), frames, pause))
    shares = {name: {part: float(np.median([split[part] for split in splits])) for part in splits[0]}
              for name, splits in shares.items()}
    counter.run(clip)
    # The frames the runtime takes for scene cuts (run densely as a whole, as the dense model runs them).
    cuts = np.asarray([False] + [bool(relative_change(frames[t], frames[t - 1]) > counter.cut_above)
                                 for t in range(1, len(frames))])
    later = lambda counts: sum(sum(frame_counts[1:]) for frame_counts in counts.values())
    runtime = next(iter(runtimes.values()))
    dense_macs = sum(runtime.dense_macs.values()) * (clip.shape[1] - 1)
    return {**{name: np.median(t, axis=0) for name, t in times.items()}, "shares": shares, "cuts": cuts,
            "reduction": dense_macs / later(counter.macs) if later(counter.macs) else np.inf,
            "executed": dense_macs / later(runtime.executed_macs) if later(runtime.executed_macs) else np.inf}


def hed_layers(size: int, step: float, clip: np.ndarray, names: list[str]):
    """For each of HED's layers ``names`` (``["all"]``: every 3x3 convolution): its name, the layer, its input on the
    clip's frames ``(T, 1, H, W, C)``, its sparse kernel (never dense) and its dense convolution, compiled."""
    from delta_keras.runtime.kernels import SparseConv  # noqa: PLC0415
    from delta_keras.frames import geometry  # noqa: PLC0415

    model = sparsify(hed_edge_detector(size, size), frames=None, step_init=step, granularity="layer")
    if names == ["all"]:
        names = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (3, 3)]
    for name in names:
        layer = model.get_layer(name)
        inputs = np.asarray(keras.Model(model.inputs[0], layer.input)(clip))
        frames = inputs.reshape(clip.shape[1], 1, *inputs.shape[-3:])
        fan_out = geometry.stages(layer, frames.shape[2:])[0].fan_out(False)
        yield (name, layer, frames, SparseConv(layer, frames.shape[2:], 1, fan_out, dense_above=1.0),
               tf.function(lambda x, layer=layer: layer.convolution_op(x, layer.kernel)))


def seconds_per_call(function, repeats: int) -> float:
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def layer_shares(size: int, step: float, clip: np.ndarray, names: list[str], repeats: int = 20) -> None:
    print(f"HED {size}x{size}, step {step:g}: the change between frames 0 and 1, one layer at a time; 'per MAC': the "
          f"sparse kernel's time per MAC it executes over the dense convolution's")
    print(f"{'layer':<13} {'input':>14} | {'elements':>8} {'pixels':>6} {'tiles':>6} | "
          f"{'dense':>8} {'sparse':>8} {'x':>6} {'per MAC':>8}")
    totals = {"dense": 0.0, "sparse": 0.0}
    for name, layer, frames, kernel, dense in hed_layers(size, step, clip[:, :2], names):
        shape = frames.shape[2:]
        changed = frames[1, 0] != frames[0, 0]
        pixels = changed.any(axis=-1)
        reach = np.pad(pixels, 1)
        reach = np.max([reach[dy:dy + shape[0], dx:dx + shape[1]] for dy in range(3) for dx in range(3)], axis=0)
        grid = (-(-shape[0] // 8), -(-shape[1] // 8))
        tiles = np.pad(reach, [(0, grid[0] * 8 - shape[0]), (0, grid[1] * 8 - shape[1])])
        tiles = tiles.reshape(grid[0], 8, grid[1], 8).any(axis=(1, 3))
        macs = int(np.sum(kernel.fan_out * changed))
        dense_macs = int(np.prod(layer.compute_output_shape((1, *shape))[1:3])) * int(np.prod(layer.kernel.shape))
        value = tf.constant(frames[1])

        def sparse():
            kernel.previous = frames[0]
            kernel._sparse(frames[1])

        times = {"dense": seconds_per_call(lambda: np.asarray(dense(value)), repeats),
                 "sparse": seconds_per_call(sparse, repeats)}
        totals = {label: totals[label] + times[label] for label in totals}
        per_mac = (times["sparse"] / max(macs, 1)) / (times["dense"] / dense_macs)
        print(f"{name:<13} {'x'.join(map(str, shape)):>14} | {changed.mean():>8.2%} {pixels.mean():>6.1%} "
              f"{tiles.mean():>6.1%} | {times['dense'] * 1e3:>6.2f}ms {times['sparse'] * 1e3:>6.2f}ms "
              f"{times['dense'] / times['sparse']:>5.2f}x {per_mac:>7.1f}x")
    print(f"{'all':<13} {'':>14} | {'':>8} {'':>6} {'':>6} | {totals['dense'] * 1e3:>6.2f}ms "
          f"{totals['sparse'] * 1e3:>6.2f}ms {totals['dense'] / totals['sparse']:>5.2f}x")


BREAK_EVEN_SHARES = (0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)


def break_evens(size: int, step: float, clip: np.ndarray, names: list[str], repeats: int = 10) -> None:
    """Per layer, the sparse kernel's time over the dense convolution's when a share of the input changed (random
    elements of the clip's first frame, each by one step), the share where they cross, and `break_even`'s."""
    from delta_keras.runtime.kernels import break_even  # noqa: PLC0415

    rng = np.random.default_rng(0)
    print(f"HED {size}x{size}, step {step:g}: the sparse kernel's time over the dense convolution's when this share "
          f"of the input's elements changed; the share where they cross (measured; the runtime's cost model)")
    print(f"{'layer':<13} {'input':>14} | " + " ".join(f"{share:>5.0%}" for share in BREAK_EVEN_SHARES)
          + f" | {'measured':>8} {'model':>6}")
    for name, layer, frames, kernel, dense in hed_layers(size, step, clip[:, :1], names):
        before = frames[0]
        value = tf.constant(before)
        dense_seconds = seconds_per_call(lambda: np.asarray(dense(value)), repeats)
        ratios = []
        for share in BREAK_EVEN_SHARES:
            after = before.copy().reshape(-1)
            after[rng.choice(after.size, int(share * after.size), replace=False)] += np.float32(step)
            after = after.reshape(before.shape)

            def sparse():
                kernel.previous = before
                kernel._sparse(after)

            ratios.append(seconds_per_call(sparse, repeats) / dense_seconds)
        # The first share where the sparse kernel is slower, interpolated from the one before it.
        crossing = next((i for i, ratio in enumerate(ratios) if ratio >= 1.0), None)
        measured = ("none" if crossing is None else f"<{BREAK_EVEN_SHARES[0]:.0%}" if crossing == 0 else
                    f"{np.interp(1.0, ratios[crossing - 1:crossing + 1], BREAK_EVEN_SHARES[crossing - 1:crossing + 1]):.0%}")
        print(f"{name:<13} {'x'.join(map(str, before.shape[1:])):>14} | " + " ".join(f"{r:>5.2f}" for r in ratios)
              + f" | {measured:>8} {break_even(layer, before.shape[1:]):>6.0%}", flush=True)


def cut_statistics(size: int, frames: int) -> None:
    names = sorted(name for name in os.listdir(CLIPS) if name.endswith((".avi", ".mp4")))
    clips = {name: read_clip(os.path.join(CLIPS, name), frames, (size, size)) for name in names}
    print(f"relative change of consecutive frames ({frames} frames, {size}x{size}): min / median / max")
    for name, clip in clips.items():
        changes = [float(relative_change(clip[t], clip[t - 1])) for t in range(1, frames)]
        print(f"  {name:<32} {min(changes):.3f} / {np.median(changes):.3f} / {max(changes):.3f}")
    cuts = [float(relative_change(clips[a][0], clips[b][0])) for a in names for b in names if a != b]
    print(f"cuts between the first frames of two clips: min {min(cuts):.3f}, median {np.median(cuts):.3f}")


HEADER = (f"{'size':>4} {'step':>5} {'clip':<28} {'dense':>7} {'fused':>7} {'speedup':>7} {'unfused':>7} "
          f"{'speedup':>7} {'cuts':>4} {'w/o cuts':>8} {'MACs /':>7} {'executed /':>10} | fused: {'changes':>7} "
          f"{'multiply':>8} {'epilogue':>8} {'rest':>5} | unfused: {'changes':>7} {'multiply':>8} {'dense':>5} "
          f"{'rest':>5}")


def times_fewer(ratio: float) -> str:
    """A MAC reduction as printed: ``19.1x``, or ``all`` where no MAC was left."""
    return "all" if np.isinf(ratio) else f"{ratio:.1f}x"


def calibrated(model, args, calibration: np.ndarray, label: str) -> DeltaRuntime:
    """The unfused runtime with the break-evens `DeltaRuntime.calibrate` measures on ``calibration`` (``label`` names
    its frames); prints them next to the cost model's."""
    runtime = DeltaRuntime(model, dense_above=args.dense_above, count_macs=False)
    runtime.run(calibration[:, :3])  # compiled before timing
    started = time.perf_counter()
    measured = runtime.calibrate(calibration, strides=CALIBRATION_STRIDES)
    print(f"  calibrated on {label} (strides {','.join(map(str, CALIBRATION_STRIDES))}; "
          f"{time.perf_counter() - started:.0f} s), the shares it moved (model's, time saved there): "
          + (", ".join(f"{name} {m.share:.2f} ({m.modelled:.2f}, {m.saved:.0%})" for name, m in measured.items()
                       if m.share != m.modelled) or "none"))
    return runtime


def compare(model, size, step: str, clips: dict, args, calibration: dict | None = None) -> dict[str, list[float]]:
    """Checks the runtime on the first clip, then prints one row per clip, one for the first clip's frame 0
    repeated (no change after frame 0: the runtime's floor) and one for a cut on every frame: the
    dense forward pass, the runtime with fused sparse layers and without (``fuse=False``: every convolution
    compares its input with the previous frame's, and the other layers run in TensorFlow), side by side; with
    ``calibration`` (``{clip name: (label, frames to calibrate on)}``), also the unfused runtime calibrated on each
    clip's (`calibrated`; the static and cut rows: the first clip's).
    Returns ``{"unfused": [...], "fused": [...], ...}``: each runtime's speedup on each clip (the static and cut rows
    excluded)."""
    names = list(clips)
    dense = tf.function(lambda frames: model(frames, training=False))
    checked = DeltaRuntime(model, dense_above=args.dense_above)
    print(f"  check (size {size}, step {step}): {check(model, checked, clips[names[0]])}")
    runtimes = {"fused": DeltaRuntime(model, dense_above=args.dense_above, count_macs=False, fuse=True),
                "unfused": DeltaRuntime(model, dense_above=args.dense_above, count_macs=False)}
    # Per row clip, the calibrated runtime it is timed with (one per calibration clip).
    by_label = {}
    for label, frames in (calibration or {}).values():
        if label not in by_label:
            by_label[label] = calibrated(model, args, frames, label)
    calibrated_for = {name: by_label[calibration[name][0]] for name in calibration or {}}
    if calibrated_for:
        runtimes["calibrated"] = calibrated_for[names[0]]
    # Traced and compiled (numba compiles a kernel where it first runs) untimed; the calibrated ones are (`calibrated`).
    for runtime in runtimes.values():
        runtime.run(clips[names[0]][:, :3])
    # The timed runtimes do not count, and compute some layers otherwise (side convolutions in the output pass; fused,
    # a convolution sums its changes in the order of its producer's list): their own float32 ties.
    timed = {name: np.abs(runtime.run(clips[names[0]]) - np.asarray(model(clips[names[0]])))
             for name, runtime in runtimes.items()}
    print("  timed runtimes against the forward pass: " + ", ".join(
        f"{name} max {error.max():.1e}, off by > 1e-3 {np.mean(error > 1e-3):.2%}" for name, error in timed.items()))
    rows = [*clips.items()]
    # The runtime's floor: nothing changes after frame 0 (the first clip's first frame again and again).
    rows.append(("static: frame 0 repeated", np.repeat(clips[names[0]][:, :1], args.frames, axis=1)))
    if args.cut:
        rows.append(("cut: every frame (alternating 2 clips)",
                     np.stack([clips[names[t % 2]][0, t] for t in range(args.frames)])[None]))
    speedups = {name: [] for name in runtimes}
    for name, clip in rows:
        if calibrated_for:  # the static and cut rows: the first clip's
            runtimes["calibrated"] = calibrated_for.get(name, calibrated_for[names[0]])
        result = measure(runtimes, checked, dense, clip, args.repeats, args.pause / 1000)
        ms = {key: result[key][1:].mean() * 1e3 for key in ("dense", *runtimes)}
        kept = ~result["cuts"][1:]  # the frames that are not scene cuts
        without_cuts = (f"{result['dense'][1:][kept].sum() / result['unfused'][1:][kept].sum():>7.2f}x" if kept.any()
                        else f"{'-':>8}")
        fused, unfused = result["shares"]["fused"], result["shares"]["unfused"]
        if not name.startswith(("cut", "static")):
            for runtime in speedups:
                speedups[runtime].append(ms["dense"] / ms[runtime])
        print(f"{size:>4} {step:>5} {name[:28]:<28} {ms['dense']:>7.1f} {ms['fused']:>7.1f} "
              f"{ms['dense'] / ms['fused']:>6.2f}x {ms['unfused']:>7.1f} {ms['dense'] / ms['unfused']:>6.2f}x "
              f"{np.sum(~kept):>4} {without_cuts} {times_fewer(result['reduction']):>7} "
              f"{times_fewer(result['executed']):>10} | fused: {fused['changes']:>7.0%} {fused['multiply']:>8.0%} "
              f"{fused['epilogue']:>8.0%} {1 - sum(fused.values()):>5.0%} | unfused: "
              f"{unfused['changes']:>7.0%} {unfused['multiply']:>8.0%} {unfused['dense']:>5.0%} "
              f"{1 - sum(unfused.values()):>5.0%}"
              + (f" | calibrated: {ms['calibrated']:>7.1f} {ms['dense'] / ms['calibrated']:>6.2f}x"
                 if "calibrated" in ms else ""))
    return speedups


def trained_or_study_models(args) -> tuple[str, dict]:
    """What ``--model`` (and ``--classifier``) benchmark: a title and the models by step label. A trained model with
    sparsity layers as trained (``-``); a dense one (a run folder's checkpoint) with the study's post-hoc quantisers
    of each ``--steps`` (`delta_keras.study.methods.posthoc_delta_model`); without ``--model``, the study's
    classifier at the weights its training starts from, with a quantiser of each ``--steps``."""
    steps = [float(step) for step in args.steps.split(",")]
    if not args.model:
        return ("the study's classifier (hed_vgg16 blocks 1-4 with BSDS500 weights, temporal head, untrained)",
                {f"{step:g}": video_classifier("hed_vgg16", 21, None, 112, sparsity="delta", weights="bsds500", blocks=4,
                                               head="temporal", step_init=step, granularity="layer") for step in steps})
    path, trained = load_model_from(args.model)
    config_file = path.parent.parent / "config.json"
    config = TrainConfig.from_dict(json.loads(config_file.read_text())["config"]) if config_file.is_file() else None
    if trained.inputs[0].shape[1] is not None:
        # A checkpoint of a fixed clip length (older releases): the same network for clips of any length, so that
        # the dense baseline can run one frame per call, from its run folder's config.
        if config is None:
            raise SystemExit(f"{path}: a checkpoint of a fixed clip length is rebuilt for clips of any length from "
                             f"its run folder's config, and {config_file} does not exist")
        flexible = build_model(config)
        flexible.set_weights(trained.get_weights())
        trained = flexible
    if delta_layers(trained):
        return f"{path} ({trained.name}, as trained)", {"-": trained}
    if config is None:
        raise SystemExit(f"{path}: a dense model's post-hoc quantisers are built from its run folder's config, and "
                         f"{config_file} does not exist")
    return (f"{path} ({trained.name}, dense; the study's post-hoc quantisers)",
            {f"{step:g}": posthoc_delta_model(trained, config, step) for step in steps})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="96,192", help="HED frame sizes (square), comma-separated")
    parser.add_argument("--steps", default="8,32", help="post-hoc quantisation steps, comma-separated")
    parser.add_argument("--clips", default=DEFAULT_CLIPS, help=f"real clips in {CLIPS}")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dense-above", type=float,
                        help="every layer's share of changed inputs above which it runs densely (default: each "
                             "layer's break-even, `delta_keras.runtime.kernels.break_even`)")
    parser.add_argument("--memory", action="store_true",
                        help="deltas with memory: a threshold of half the step after every ReLU (instead of quantisers)")
    parser.add_argument("--footage", action="store_true",
                        help=f"every clip of {FOOTAGE} instead of --clips, and the mean speedup over them")
    parser.add_argument("--no-cut", dest="cut", action="store_false", help="skip the scene-cut-every-frame row")
    parser.add_argument("--layers", nargs="?", const="block1_conv2,block2_conv1,block3_conv2,block4_conv2",
                        help="measure these HED layers alone (at the last size and step, on the first clip; 'all': "
                             "every 3x3 convolution)")
    parser.add_argument("--break-even", nargs="?", const="all",
                        help="per HED layer (default: every 3x3 convolution) at each --sizes and the last step, the "
                             "share of changed inputs where the sparse kernel and the dense convolution take as long, "
                             "measured and by the runtime's cost model")
    parser.add_argument("--cuts", action="store_true", help="print the scene-cut statistic of every real clip")
    parser.add_argument("--model", help="benchmark this trained clip model instead of HED (a .keras file or a run "
                                        "folder; deployed with strip_sparsity, clips at its input size; a dense run "
                                        "with the study's post-hoc quantisers of each --steps)")
    parser.add_argument("--classifier", action="store_true",
                        help="JHMDB clips (" + ", ".join(CLASSIFIER_CLASSES) + ") and, without --model, the action-"
                             "recognition study's classifier: VGG16 blocks 1-4 with HED's BSDS500 weights and the "
                             "temporal head (untrained), 112x112, a quantiser of each --steps after every activation")
    parser.add_argument("--calibrate", nargs="?", const=CALIBRATION_CLIP,
                        help=f"also the unfused runtime calibrated (`DeltaRuntime.calibrate`) on --frames frames of "
                             f"this clip of {FOOTAGE} (default {CALIBRATION_CLIP}), or with '{OWN_FRAMES}' on each "
                             f"clip's own next --frames frames (after those timed), timed side by side")
    parser.add_argument("--pause", type=float, default=0.0, metavar="MS",
                        help="sleep this many milliseconds before every frame, the runtime's and the dense model's "
                             "alike (a camera's frames come at its frame rate; default 0: frame after frame)")
    parser.add_argument("--default-threads", action="store_true",
                        help="TensorFlow's and OpenMP's default threads instead of `streaming_threads()` (one "
                             "inter-op thread, a short OpenMP spin), for the dense model and the runtime alike")
    args = parser.parse_args()
    if args.pause < 0:
        parser.error(f"--pause must be >= 0 milliseconds, got {args.pause:g}")
    if not args.default_threads:
        streaming_threads()
    threads = ("TensorFlow's and OpenMP's default threads" if args.default_threads else
               f"streaming_threads(): 1 inter-op thread, GOMP_SPINCOUNT={os.environ['GOMP_SPINCOUNT']}")
    if args.pause:
        threads += f"; every frame after {args.pause:g} ms asleep"
    names = args.clips.split(",")
    if args.cuts:
        cut_statistics(int(args.sizes.split(",")[0]), args.frames)
        os._exit(0)
    if args.break_even:
        step = float(args.steps.split(",")[-1])
        for size in map(int, args.sizes.split(",")):
            clip = read_clip(os.path.join(CLIPS, names[0]), 1, (size, size))[None]
            break_evens(size, step, clip, args.break_even.split(","))
        os._exit(0)
    if args.layers:
        size, step = int(args.sizes.split(",")[-1]), float(args.steps.split(",")[-1])
        clip = read_clip(os.path.join(CLIPS, names[0]), 2, (size, size))[None]
        layer_shares(size, step, clip, args.layers.split(","))
        os._exit(0)
    if args.model or args.classifier:
        title, models = trained_or_study_models(args)
        size = tuple(next(iter(models.values())).inputs[0].shape[2:4])
        if args.classifier:
            paths = [os.path.join(JHMDB, name, sorted(os.listdir(os.path.join(JHMDB, name)))[0])
                     for name in CLASSIFIER_CLASSES]
            clips = {f"JHMDB {name}": read_clip(path, args.frames, size)[None]
                     for name, path in zip(CLASSIFIER_CLASSES, paths)}
        else:
            clips = {name: read_clip(os.path.join(CLIPS, name), args.frames, size)[None] for name in names}
        print(f"{title}, {size[0]}x{size[1]} per frame at batch 1, {args.frames}-frame clips of "
              f"{', '.join(map(os.path.basename, paths if args.classifier else names))}; {machine_summary()}; "
              f"{threads}")
        print(HEADER)
        for step, model in models.items():
            speedups = compare(strip_sparsity(model), size[0], step, clips, args)
            print(f"  mean speedup over the {len(clips)} clips, step {step}: "
                  + ", ".join(f"{runtime} {np.mean(s):.2f}x" for runtime, s in speedups.items()))
        os._exit(0)
    paths = ([os.path.join(FOOTAGE, n) for n in sorted(os.listdir(FOOTAGE)) if n.endswith((".mp4", ".avi", ".mkv"))]
             if args.footage else [os.path.join(CLIPS, n) for n in names])
    mode = "memory thresholds (half the step)" if args.memory else "quantisers"
    print(f"HED per frame at batch 1, {args.frames}-frame clips ({', '.join(map(os.path.basename, paths))}); {mode}; "
          f"milliseconds per frame over frames 1..{args.frames - 1}, median of {args.repeats} runs; "
          f"{machine_summary()}; {threads}")
    print(HEADER)
    for size in map(int, args.sizes.split(",")):
        image_model = hed_edge_detector(size, size)
        # With --calibrate own, each clip's frames after the timed ones to calibrate on.
        frames = 2 * args.frames if args.calibrate == OWN_FRAMES else args.frames
        read = {os.path.basename(path): read_clip(path, frames, (size, size))[None] for path in paths}
        clips = {name: clip[:, :args.frames] for name, clip in read.items()}
        if args.calibrate == OWN_FRAMES:
            calibration = {name: (f"{name} frames {args.frames}..{frames - 1}", clip[:, args.frames:])
                           for name, clip in read.items()}
        elif args.calibrate:
            footage = read_clip(os.path.join(FOOTAGE, args.calibrate), args.frames, (size, size))[None]
            calibration = dict.fromkeys(clips, (f"{args.calibrate} frames 0..{args.frames - 1}", footage))
        else:
            calibration = None
        for step in map(float, args.steps.split(",")):
            # Deployed as a user would: the sparsity layers' training parts stripped (quantisers only).
            model = strip_sparsity(sparsify(image_model, frames=None, step_init=step / 2 if args.memory else step,
                                            granularity="layer", memory=args.memory))
            speedups = compare(model, size, f"{step:g}", clips, args, calibration)
            means = ", ".join(f"{runtime} {np.mean(s):.2f}x (geometric {np.exp(np.mean(np.log(s))):.2f}x, "
                              f"{min(s):.2f}-{max(s):.2f}x)" for runtime, s in speedups.items())
            print(f"  mean speedup over the {len(speedups['unfused'])} clips at {size}, step {step:g}: {means}")
    os._exit(0)  # numba's and TensorFlow's thread pools can hold up the interpreter's shutdown


if __name__ == "__main__":
    main()
