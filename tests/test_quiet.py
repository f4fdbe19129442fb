"""Output capture around C code (delta_keras.quiet)."""

import os
import subprocess
import sys

import pytest

CAPTURE_PRINTF = """
import ctypes, sys
from delta_keras.quiet import captured_output
libc = ctypes.CDLL(None)
libc.printf(b"before\\n")
with captured_output(descriptors=(1,)) as output:
    libc.printf(b"inside\\n")
libc.printf(b"after\\n")
sys.stderr.write(repr(b"".join(output)))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="C's printf through ctypes.CDLL(None)")
def test_what_c_prints_inside_a_capture_is_captured_there():
    # stdout is a pipe, so C buffers it in blocks: what a C library prints inside the capture (OpenCV's FFmpeg log:
    # how decode_check finds damaged videos) must be flushed into it, and what it printed before must not be.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # which would unbuffer C's stdout too
    done = subprocess.run([sys.executable, "-c", CAPTURE_PRINTF], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == repr(b"inside\n") and done.stdout == "before\nafter\n"
