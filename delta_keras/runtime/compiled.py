"""What the runtime's kernels share: numba compilation (optional) and convolution geometry."""

from __future__ import annotations

try:
    import numba
except ImportError:  # optional: pip install 'delta_keras[runtime]'
    numba = None


def njit(function=None, parallel: bool = True, fastmath: bool = True):
    """numba's compiler (cached; multi-threaded loops with ``parallel``), or the plain function without numba.
    ``fastmath=False`` where a kernel must reproduce float32 arithmetic exactly (no reassociation, no reciprocals)."""
    if function is None:
        return lambda f: njit(f, parallel, fastmath)
    return numba.njit(parallel=parallel, fastmath=fastmath, cache=True)(function) if numba else function


def leading_padding(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Padding before the first input row of a convolution axis (TensorFlow's "same": the extra row goes last)."""
    if padding == "valid":
        return 0
    out = -(-size // stride)
    return max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0) // 2
