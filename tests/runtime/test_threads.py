"""streaming_threads: the process's thread settings for the runtime, set once, before TensorFlow runs an op."""

import os
import subprocess
import sys

import pytest

SCRIPT = """
import os, sys
import tensorflow as tf
from delta_keras import streaming_threads
if sys.argv[1] == "late":
    tf.constant(1.0) + 1  # TensorFlow has run an op: its thread counts are fixed
try:
    streaming_threads()
except RuntimeError as error:
    print("error:", error)
print("inter-op", tf.config.threading.get_inter_op_parallelism_threads(), "spin", os.environ.get("GOMP_SPINCOUNT"))
"""


def _run(when: str, **env) -> str:
    environment = {key: value for key, value in os.environ.items() if key != "GOMP_SPINCOUNT"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, when], env={**environment, **env}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("env, spin", [({}, "30000"), ({"GOMP_SPINCOUNT": "5"}, "5")])
def test_streaming_threads_sets_one_inter_op_thread_and_keeps_a_users_spin_count(env, spin):
    assert _run("first", **env).strip().splitlines()[-1] == f"inter-op 1 spin {spin}"


def test_streaming_threads_after_tensorflow_ran_an_op_is_a_clear_error():
    out = _run("late")
    assert "error: streaming_threads() must be called before TensorFlow runs its first op" in out
    assert "inter-op 0" in out  # TensorFlow's default stays


def test_machine_summary_names_the_cpus_and_the_kernels_vector_width():
    pytest.importorskip("llvmlite")
    import llvmlite.binding as llvm

    from delta_keras import machine_summary

    summary = machine_summary()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert f", {cpus} CPUs, " in summary
    assert summary.endswith(f"({llvm.get_host_cpu_name()})")
    assert any(f" {width} (" in summary for width in ("AVX-512", "AVX2", "SSE4.2", "NEON", "SVE", "no vectors"))
