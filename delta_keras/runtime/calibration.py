"""Break-evens measured on the machine that streams: each convolution of a run timed at several shares, inside the run.

`delta_keras.runtime.kernels.break_even` models a layer's break-even from a fit of the sparse kernel and a dense
convolution timed alone. Inside a run (`delta_keras.runtime.runs`) both sides cost otherwise: a sparse frame
finishes only the pixels its changes reach, a dense frame pays an eager convolution and an output pass over every
pixel, and the host's cores, caches and load differ from the fit's. A layer's choice also moves time to its
neighbours and to the next frame: the convolution before it lists its changes only while it reads lists, so a
dense frame after a sparse one wastes that listing and a sparse frame after a dense one compares its whole input
itself. Timing each choice alone misses that: on HED it put ``block1_conv2``'s break-even at 0.06-0.15 against the
model's 0.19, and at 0.07 two real clips ran 4-7 % slower at 96x96, step 8, its dense frames alternating with sparse
ones.

So `measure_break_evens` times the rule itself. It streams real frames through the runtime with a convolution's
``dense_above`` at each of a few shares (`CANDIDATES`, and the one in use) and times the convolution with its
neighbours in the run by their kernels' clocks, frame by frame; convolutions three apart are timed together, so that
each one's neighbours choose as they will when it streams. A frame's time depends on the convolution's choice on it
and on the frame before, so two shares differ only on the frames where those differ: per repeat, the saving of a
share over the one in use is the sum of their time differences there, and the frames both shares chose alike add
none of the host's noise. Shares that chose alike on every frame are one setting. A setting replaces the one in use
only where its saving passes a one-sided paired t-test at 95 % over the repeats: on a busy host a saving of a few
percent is often noise (HED at 96x96, step 8: ``block1_conv2`` timed 0.4-1.0 % faster at 0.1 than at its 0.19 on the
calibration clip, and at 0.07 made a real clip 4-7 % slower). Of the shares of the setting that saved most, the one
nearest the share in use is kept: the frames cannot tell those apart, and the model can.

A calibration takes a minute or two on a 2-core CPU at 192x192; `save_break_evens` writes the shares it found (a
runtime's ``dense_above``) with the machine they were measured on, and `load_break_evens` reads them back for
``DeltaRuntime(model, dense_above=...)`` on later streams of the same model, frame size and machine.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import numbers
import os
from pathlib import Path

import numpy as np

from delta_keras.files import write_json

# The shares of changed input elements each convolution is timed at (besides the one in use).
CANDIDATES = (0.0, 0.1, 0.2, 0.3, 0.45, 0.7, 1.0)
# One-sided 95 % quantiles of Student's t for 1..10 degrees of freedom (the last for more).
T95 = (6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812)


@dataclasses.dataclass(frozen=True)
class MeasuredBreakEven:
    """One convolution's break-even as measured (`measure_break_evens`).

    Attributes:
        layer: the convolution's name.
        share: the share chosen: ``modelled``, or where a setting saved significantly on it, the share nearest to it
            of the setting that saved most.
        modelled: the share the runtime used before (the cost model's, `delta_keras.runtime.kernels.break_even`,
            unless set).
        milliseconds: ``{share: ms}``, the convolution's and its neighbours' time over the calibration frames with
            ``dense_above`` at that share (mean over repeats).
        saved: the share of that time with ``modelled`` that ``share`` saved (the paired saving, mean over repeats).
        shares: the least and the largest share of changed input elements the convolution saw on a frame (run
            never dense): a break-even outside them is where the frames put no limit.
        frames: the frames timed per share.
    """

    layer: str
    share: float
    modelled: float
    milliseconds: dict[float, float]
    saved: float
    shares: tuple[float, float]
    frames: int


def measure_break_evens(runtime, clips: np.ndarray, strides=(1, 2, 4), repeats: int = 3,
                        candidates=CANDIDATES) -> dict[str, MeasuredBreakEven]:
    """Times every convolution of ``runtime``'s runs (`DeltaRuntime.run_kernels`) with ``dense_above`` at each of
    ``candidates`` and its own, on ``clips`` ``(batch, frames, ...)``, each clip streamed from a reset state at every
    ``strides``-th frame (larger strides: more change a frame), ``repeats`` times; returns the break-evens by layer
    name. The kernels' ``dense_above`` are as before, and the runtime reset, when it returns."""
    kernels = runtime.run_kernels
    if not kernels:
        raise ValueError(f"{runtime.model.name}: no convolution of this runtime chooses dense or sparse in a run to "
                         f"time (those need count_macs=False and fuse=False, and numba)")
    sequences = [clips[:, ::stride] for stride in strides if clips[:, ::stride].shape[1] >= 2]
    if not sequences:
        raise ValueError(f"clips: need at least 2 frames to time a change, got shape {tuple(clips.shape)}")
    before = {kernel: kernel.dense_above for kernel in kernels}
    # A convolution with its neighbours in its run (the kernels its choice moves time to; another run's are not).
    runs = [run.kernels for _, run in runtime.runs.values()]
    window = {kernel: run[max(i - 1, 0):i + 2] for run in runs for i, kernel in enumerate(run)}
    clock = lambda kernels: sum(sum(kernel.seconds.values()) for kernel in kernels)  # noqa: E731
    # Per kernel and share: the frames it ran densely, and per repeat the window's seconds on each frame.
    choices = {kernel: {} for kernel in kernels}
    seconds = {kernel: {} for kernel in kernels}
    seen = {kernel: [] for kernel in kernels}  # shares of changed inputs, on the frames run never dense
    try:
        for repeat, k in itertools.product(range(repeats), range(3)):
            group = kernels[k::3]
            # Every other repeat in the other order: a drift of the host's load over a repeat favours no share.
            for candidate in (None, *candidates)[::1 if repeat % 2 == 0 else -1]:
                shares = {kernel: before[kernel] if candidate is None else candidate for kernel in group}
                for kernel in group:
                    kernel.use_dense_above(shares[kernel])
                dense = {kernel: set() for kernel in group}
                timed = {kernel: seconds[kernel].setdefault(shares[kernel], {}).setdefault(repeat, {})
                         for kernel in group}
                for sequence, clip in enumerate(sequences):
                    runtime.reset()
                    for t in range(clip.shape[1]):
                        started = {kernel: clock(window[kernel]) for kernel in group}
                        for kernel in group:
                            kernel.last_update = None
                        runtime.step(clip[:, t])
                        if not t:  # frame 0 runs densely as a whole, without the kernels
                            continue
                        for kernel in group:
                            timed[kernel][(sequence, t)] = clock(window[kernel]) - started[kernel]
                            update = kernel.last_update
                            if update is not None and update[0]:
                                dense[kernel].add((sequence, t))
                            elif update is not None and shares[kernel] == 1.0:
                                seen[kernel].append(update[1])
                for kernel in group:
                    choices[kernel][shares[kernel]] = frozenset(dense[kernel])
                    kernel.use_dense_above(before[kernel])
    finally:
        for kernel, share in before.items():
            kernel.use_dense_above(share)
        runtime.reset()
    return {kernel.layer.name: chosen(kernel.layer.name, before[kernel], choices[kernel], seconds[kernel],
                                      seen[kernel]) for kernel in kernels}


def chosen(layer: str, modelled: float, choices: dict, seconds: dict, seen: list) -> MeasuredBreakEven:
    """``modelled``, or the share of the setting (shares that chose alike, ``{share: frames run densely}``) that saved
    most on it, significantly (`measure_break_evens`), from ``seconds`` ``{share: {repeat: {frame: seconds}}}``."""
    frames = sorted(next(iter(next(iter(seconds.values())).values())))
    state = lambda frame, dense: ((frame[0], frame[1] - 1) in dense, frame in dense)  # noqa: E731
    settings = {}
    for share, dense in choices.items():
        settings.setdefault(dense, []).append(share)

    def savings(dense) -> np.ndarray:
        """Per repeat, the seconds the setting saved on ``modelled``'s over the frames where their states differ."""
        differ = [frame for frame in frames if state(frame, dense) != state(frame, choices[modelled])]
        repeats = sorted(seconds[modelled])
        return np.asarray([sum(seconds[modelled][r][frame] - np.mean([seconds[s][r][frame] for s in settings[dense]])
                               for frame in differ) for r in repeats])

    best, most = choices[modelled], 0.0
    for dense in settings:
        saved = savings(dense)
        if len(saved) > 1 and saved.mean() > most and saved.mean() > T95[min(len(saved) - 2, len(T95) - 1)] * (
                saved.std(ddof=1) / np.sqrt(len(saved))):
            best, most = dense, saved.mean()
    share = min(settings[best], key=lambda share: abs(share - modelled))
    milliseconds = {s: float(np.mean([sum(times.values()) for times in seconds[s].values()])) * 1e3
                    for s in sorted(seconds)}
    # (Nothing timed where every frame was a scene cut, run densely as a whole without the kernels.)
    saved = most * 1e3 / milliseconds[modelled] if milliseconds[modelled] else 0.0
    return MeasuredBreakEven(layer, share, modelled, milliseconds, saved,
                             (min(seen), max(seen)) if seen else (np.nan, np.nan), len(frames))


def save_break_evens(path: str | os.PathLike, dense_above: dict[str, float], **about) -> Path:
    """Writes ``dense_above`` (``{layer name: share}``, a runtime's `DeltaRuntime.dense_above`) to the JSON file
    ``path`` with the machine it was measured on (`delta_keras.runtime.machine_summary`) and ``about`` (what it was
    measured on: the model, the frame size, the frames), atomically, never over a file the package did not write.

    Example:

    >>> runtime.calibrate(first_frames)                                                 # doctest: +SKIP
    >>> save_break_evens("hed-192.json", runtime.dense_above, frame_size=[192, 192])    # doctest: +SKIP
    >>> later = DeltaRuntime(model, dense_above=load_break_evens("hed-192.json")[0])    # doctest: +SKIP
    """
    from delta_keras.runtime.threads import machine_summary  # noqa: PLC0415 (TensorFlow, as the runtime itself)

    return write_json(path, {"machine": machine_summary(), **about,
                             "dense_above": {name: float(share) for name, share in dense_above.items()}})


def load_break_evens(path: str | os.PathLike) -> tuple[dict[str, float], dict]:
    """The shares `save_break_evens` wrote to ``path`` (``{layer name: share}``, for ``DeltaRuntime``'s
    ``dense_above``) and the rest of the file (``machine``, and what they were measured on).

    Raises:
        ValueError: ``path`` is not such a file (one line, naming it).
    """
    try:
        content = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"{path}: not a JSON file of break-evens ({error})") from None
    shares = content.get("dense_above") if isinstance(content, dict) else None
    if not (isinstance(shares, dict) and shares and all(
            isinstance(share, numbers.Real) and not isinstance(share, bool) and 0.0 <= share <= 1.0
            for share in shares.values())):
        raise ValueError(f"{path}: expected a JSON object whose \"dense_above\" maps layer names to shares in [0, 1], "
                         f"as save_break_evens writes it")
    return {name: float(share) for name, share in shares.items()}, {
        key: value for key, value in content.items() if key not in ("dense_above", "generator")}
