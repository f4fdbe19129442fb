"""What the runtime's kernels share: numba compilation (optional) and convolution geometry."""

from __future__ import annotations

try:
    import numba
except ImportError:  # optional: pip install 'delta_keras[runtime]'
    numba = None


def njit(function=None, parallel: bool = True, fastmath: bool = True):
    """numba's compiler (cached; multi-threaded loops with ``parallel``), or the plain function without numba.
    ``fastmath=False`` where a kernel must reproduce float32 arithmetic exactly (no reassociation, no reciprocals).
    Division follows NumPy (a zero divisor gives inf or nan, as in TensorFlow) rather than raising as in Python:
    the check for a zero divisor keeps a loop that divides from being vectorised."""
    if function is None:
        return lambda f: njit(f, parallel, fastmath)
    if numba is None:
        return function
    return numba.njit(parallel=parallel, fastmath=fastmath, error_model="numpy", cache=True)(function)


@njit(parallel=False)
def channel_shift(channels: int) -> int:  # pragma: no cover (compiled)
    """log2(channels) where ``channels`` is a power of two (as in most networks), else -1: see `split_index`."""
    shift = 0
    while (1 << shift) < channels:
        shift += 1
    return shift if (1 << shift) == channels else -1


@njit(parallel=False)
def split_index(flat: int, channels: int, shift: int) -> tuple:  # pragma: no cover (compiled)
    """``(x, c)`` of a listed change's flat index ``x * channels + c``. With a power-of-two channel count
    (``shift`` from `channel_shift`) a shift and a mask: an integer division costs more than the 8-lane multiply
    it feeds, and the multiply kernels split an index for every change."""
    if shift >= 0:
        return flat >> shift, flat & (channels - 1)
    x = flat // channels
    return x, flat - x * channels


def leading_padding(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Padding before the first input row of a convolution axis (TensorFlow's "same": the extra row goes last)."""
    if padding == "valid":
        return 0
    out = -(-size // stride)
    return max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0) // 2
