"""The one definition of what a sparsity figure counts.

Every figure the package reports (layer statistics, TensorBoard curves, the simulator's report) is
computed from `nonzero_counts`, so they can never disagree. A tensor has time on axis 1.

- activation density: nonzero activations / activations, over every frame;
- delta density: nonzero temporal deltas ``x[t] - x[t-1]`` / elements, over frames t >= 1
  (the first frame has no delta and is not counted);
- delta density, first frame charged: as above, but frame 0 is charged for its nonzero activations
  (what a delta-inference engine really computes on a clip that starts from nothing), over all frames.
"""

from __future__ import annotations

from keras import ops


def temporal_deltas(x):
    """Returns ``x[:, t] - x[:, t - 1]`` for t >= 1 (shape ``(B, T - 1, ...)``)."""
    # Split rather than slice: the gradient of a split is a concatenation, while TensorFlow's
    # strided-slice gradient is about 20x slower on CPU.
    frames = x.shape[1]
    if frames is None:  # `ops.split` needs a static length: clips of any length (T=None) take slices
        return x[:, 1:] - x[:, :-1]
    later = ops.split(x, [1], axis=1)[1]
    earlier = ops.split(x, [frames - 1], axis=1)[0]
    return later - earlier


def _count(x):
    # int32, not count_nonzero's int64: half the bytes written by the cast, exact up to 2**31 elements a call.
    return ops.cast(ops.sum(ops.cast(ops.not_equal(x, 0), "int32")), "float32")


def _count_non_finite(x, size):
    # One summing pass finds whether anything is non-finite; the exact count runs only then (rare).
    return ops.cond(
        ops.isfinite(ops.sum(x)),
        lambda: ops.cast(0.0, "float32"),
        lambda: size - ops.cast(ops.sum(ops.cast(ops.isfinite(x), "int32")), "float32"),
    )


def nonzero_counts(x, deltas=None) -> dict:
    """Counts the nonzero activations and temporal deltas of ``x`` (time on axis 1).

    Args:
        x: tensor with time on axis 1.
        deltas: ``temporal_deltas(x)``, or any tensor with the same zeros, when the caller has it already.

    Returns:
        A dict of float32 scalars: ``nonzero_activations``, ``activations`` (elements over all frames),
        ``nonzero_deltas`` and ``deltas`` (frames t >= 1), ``nonzero_first_frame`` and ``first_frame``
        (the elements of frame 0), and ``non_finite`` (NaN or infinite elements of ``x``, which count as
        nonzero: a broken value is never reported as a skipped one). Densities are ratios of these sums,
        so they add up correctly over batches.
    """
    size = ops.cast(ops.size(x), "float32")
    frames = ops.cast(ops.shape(x)[1], "float32")
    first_frame = size / frames
    return {
        "nonzero_activations": _count(x),
        "activations": size,
        "nonzero_deltas": _count(temporal_deltas(x) if deltas is None else deltas),
        "deltas": size - first_frame,
        "nonzero_first_frame": _count(x[:, :1]),
        "first_frame": first_frame,
        "non_finite": _count_non_finite(x, size),
    }


def densities(counts: dict) -> dict:
    """Turns summed `nonzero_counts` into the three densities (Python floats; 0 when nothing was counted)."""

    def ratio(a, b):
        a, b = float(counts[a]), float(counts[b])
        return a / b if b else 0.0

    charged = float(counts["nonzero_first_frame"]) + float(counts["nonzero_deltas"])
    total = float(counts["first_frame"]) + float(counts["deltas"])
    return {
        "delta_density": ratio("nonzero_deltas", "deltas"),
        "delta_density_first_charged": charged / total if total else 0.0,
        "activation_density": ratio("nonzero_activations", "activations"),
    }
