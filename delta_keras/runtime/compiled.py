"""What the runtime's kernels share: numba compilation (optional), convolution geometry and arrays TensorFlow
takes over without a copy."""

from __future__ import annotations

import numpy as np

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


# TensorFlow takes over an array a `tf.numpy_function` returns without copying it only where the array is aligned
# to 64 bytes (its CPU allocator's alignment); NumPy aligns to 16, so a plain array is copied on every hand-over.
TENSOR_ALIGNMENT = 64


def tensor_array(shape: tuple, dtype=np.float32) -> np.ndarray:
    """An uninitialised array, aligned so that TensorFlow takes it over without a copy when a `tf.numpy_function`
    returns it. Nothing may write to it after it was returned: the tensor shares its memory."""
    size, item = int(np.prod(shape)), np.dtype(dtype).itemsize
    buffer = np.empty(size + TENSOR_ALIGNMENT // item, dtype)
    start = (-buffer.ctypes.data % TENSOR_ALIGNMENT) // item
    return buffer[start:start + size].reshape(shape)


def tensor_copy(array: np.ndarray) -> np.ndarray:
    """A copy of ``array`` in a `tensor_array`."""
    copy = tensor_array(array.shape, array.dtype)
    copy[...] = array
    return copy
