"""The process's thread settings for streaming with `DeltaRuntime` on a CPU (`streaming_threads`)."""

from __future__ import annotations

import os

import tensorflow as tf

# Spins of an OpenMP thread waiting for the next pass before it sleeps (GNU OpenMP's default: 300,000).
SPIN_COUNT = 30_000


def streaming_threads(spin_count: int = SPIN_COUNT) -> None:
    """Sets this process's threads for streaming with `DeltaRuntime`: TensorFlow runs a graph's ops one at a time
    (one inter-op thread; each op still uses every core) and the kernels' OpenMP threads spin ``spin_count`` times
    before they sleep.

    The runtime calls its compiled kernels from inside TensorFlow's graph, on whichever inter-op thread runs the
    call, and numba's OpenMP layer keeps one team of threads per calling thread: with TensorFlow's default (an
    inter-op thread per core) two teams share the cores and slow each other's passes (HED at 96x96 on 2 cores:
    listing a static frame's changes 1.2-1.8 ms a frame, 0.35-0.4 ms from one thread). After a pass OpenMP's threads
    spin (300,000 times by default), which takes a core from the TensorFlow op that follows, the dense fallbacks
    of a moving camera: 30,000 spins keep the next pass's start quick and give the core back sooner
    (`benchmarks/streaming_speed.py` runs with these settings; docs/runtime.md, "Threads").

    Call it first, before TensorFlow runs its first op and before the runtime's first frame: both settings are
    read once a process. A ``GOMP_SPINCOUNT`` already in the environment is kept.

    Args:
        spin_count: OpenMP's ``GOMP_SPINCOUNT``, where the environment has none.

    Raises:
        RuntimeError: TensorFlow has run an op already, with more than one inter-op thread.
    """
    os.environ.setdefault("GOMP_SPINCOUNT", str(int(spin_count)))
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError as error:
        raise RuntimeError("streaming_threads() must be called before TensorFlow runs its first op (TensorFlow "
                           f"reads its inter-op thread count once a process): {error}") from None
