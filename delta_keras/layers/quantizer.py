"""The quantiser of `DeltaActivation` and its step-size gradients (backend-neutral, `keras.ops` only)."""

from __future__ import annotations

from keras import ops

STEP_GRADIENTS = ("lsq", "paper")


def round_ste(v):
    """Rounds to the nearest integer (half to even) with a straight-through gradient of 1."""
    return v + ops.stop_gradient(ops.round(v) - v)


def scale_gradient(v, scale):
    """Returns ``v`` unchanged, with its gradient multiplied by ``scale``."""
    return v * scale + ops.stop_gradient(v - v * scale)


def negate_gradient(v):
    """Returns ``v`` unchanged, with its gradient negated."""
    return 2.0 * ops.stop_gradient(v) - v


def quantize(x, step, step_gradient: str = "lsq"):
    """Quantises ``x`` to multiples of ``step``: ``x_q = step * round(x / step)``.

    Args:
        x: float32 tensor.
        step: positive float32 tensor that broadcasts against ``x``.
        step_gradient: how the step learns.
            ``"lsq"``: the exact gradient of ``step * round_ste(x / step)`` (LSQ, Esser et al. 2019):
            ``d x_q / d step = round(x/step) - x/step``, scaled by ``1 / sqrt(elements per step)`` so
            that the step learns at the pace of the activations it quantises.
            ``"paper"``: the heuristic of Yousefzadeh & Sifalakis (2021): no gradient through the
            division, and the gradient through the multiplication negated (``d x_q / d step =
            -round(x/step)``), so that an L1 penalty on ``x_q`` pushes the step up.
        In both modes ``d x_q / d x = 1`` (straight-through).

    Returns:
        ``(levels, x_q)``: the integer levels ``round(x / step)`` (float32, differentiable as above)
        and the quantised values.
    """
    if step_gradient == "lsq":
        per_step = ops.cast(ops.size(x), "float32") / ops.cast(ops.size(step), "float32")
        step = scale_gradient(step, ops.rsqrt(per_step))
        levels = round_ste(x / step)
        return levels, levels * step
    if step_gradient == "paper":
        levels = round_ste(x / ops.stop_gradient(step))
        return levels, levels * negate_gradient(step)
    raise ValueError(f"step_gradient must be one of {STEP_GRADIENTS}, got {step_gradient!r}")
