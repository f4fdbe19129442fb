"""The process's thread settings for streaming with `DeltaRuntime` on a CPU (`streaming_threads`), and the machine
its figures come from (`machine_summary`)."""

from __future__ import annotations

import os
import platform

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


def machine_summary() -> str:
    """The machine a timing comes from, as one line: the CPU's model name, the CPUs this process may run on and the
    widest vectors the runtime's kernels are compiled for (numba's target CPU), e.g. ``AMD EPYC, 2 CPUs, AVX-512
    (znver5)``.

    A speedup over the dense forward pass depends on the CPU: the dense convolution's speed grows with the width of
    its vectors, the sparse kernels' (bound by memory and by the changes' bookkeeping) much less (docs/runtime.md,
    "Which CPU"). Every figure should name its machine.
    """
    from delta_keras.data import usable_cores  # noqa: PLC0415 (the data package, with tfds: only when asked)

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), model)
    except OSError:  # not Linux
        pass
    cpus = usable_cores()
    try:
        import llvmlite.binding as llvm  # noqa: PLC0415 (numba's compiler: optional, the runtime's extra)
    except ImportError:
        return f"{model}, {cpus} CPUs, kernels without numba"
    features = llvm.get_host_cpu_features()
    widest = next((name for feature, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("sse4.2", "SSE4.2"),
                                             ("neon", "NEON"), ("sve", "SVE")) if features.get(feature)), "no vectors")
    return f"{model}, {cpus} CPUs, {widest} ({llvm.get_host_cpu_name()})"
