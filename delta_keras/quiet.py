"""Filters TensorFlow's start-up noise out of stderr (standard library only).

On a machine without a GPU, TensorFlow's C++ runtime prints informational lines, and a cuInit "error"
that only means "no GPU", before its logging is set up, so no environment variable hides them. This
module captures file descriptor 2 around the code that prints them and replays every other line.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
import tempfile
from typing import Iterator

NOISE = re.compile(
    r"All log messages before absl::InitializeLog|port\.cc:\d+\] oneDNN|cudart_stub\.cc|cpu_feature_guard\.cc|"
    r"^To enable the following instructions|cuda_platform\.cc:\d+\] failed call to cuInit|"
    r"cuda_executor\.cc:\d+\] could not find cuda drivers|Unable to register cu(DNN|FFT|BLAS) factory|"
    r"computation placer already registered|TF-TRT Warning"
)


def _flush_c_streams() -> None:
    """Writes out C's stdio buffers (``printf`` in a C or C++ library: OpenCV's FFmpeg log callback) to the
    descriptors they belong to now. Where stdout is not a terminal C buffers it in blocks, so without this a
    message printed inside a capture comes out after it, in the wrong place."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # no C library to load this way (Windows): nothing to flush
        pass


@contextlib.contextmanager
def captured_output(descriptors: tuple[int, ...] = (2,)) -> Iterator[list[bytes]]:
    """Inside the block, stderr (the file descriptor, so C++ output too; with ``descriptors=(1, 2)`` stdout as
    well) goes to a temporary file; after the block the yielded list holds what was written there (one bytes
    item; empty where there is no such descriptor)."""
    output: list[bytes] = []
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        _flush_c_streams()
        saved = [os.dup(fd) for fd in descriptors]
    except (OSError, ValueError):  # no such file descriptor (an embedded interpreter): nothing to capture
        yield output
        return
    with tempfile.TemporaryFile(mode="w+b") as captured:
        for fd in descriptors:
            os.dup2(captured.fileno(), fd)
        try:
            yield output
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            _flush_c_streams()
            for fd, copy in zip(descriptors, saved):
                os.dup2(copy, fd)
                os.close(copy)
            captured.seek(0)
            output.append(captured.read())


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Inside the block, stderr is captured (`captured_output`); afterwards every line that is not known
    TensorFlow start-up noise is written to stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    output: list[bytes] = []
    try:
        with captured_output() as output:
            yield
    finally:
        for line in b"".join(output).decode(errors="replace").splitlines():
            if line.strip() and not NOISE.search(line):
                print(line, file=sys.stderr)


# FFmpeg's log level inside OpenCV, read when OpenCV first opens a video: -8 prints nothing (AV_LOG_QUIET),
# 16 errors only (AV_LOG_ERROR).
FFMPEG_LOG_LEVEL = "OPENCV_FFMPEG_LOGLEVEL"
FFMPEG_QUIET, FFMPEG_ERRORS = "-8", "16"


def quiet_video_decoder() -> None:
    """Keeps FFmpeg's per-packet messages about damaged files ("[mpeg4 @ 0x...] ac-tex damaged") off stderr:
    the data sources report each unusable file themselves, by name, once. A level the user set is kept.

    For command-line tools, before the first video is opened; `delta_keras.data.video.decode_check`, which
    reads those messages, turns them back on in its own processes."""
    os.environ.setdefault(FFMPEG_LOG_LEVEL, FFMPEG_QUIET)


def start_command() -> None:
    """What every command of the package does first: TensorFlow started quietly and the video decoder quiet."""
    quiet_video_decoder()
    start_tensorflow()


def start_tensorflow() -> None:
    """Imports TensorFlow and starts its devices (where the cuInit line comes from) with the noise filtered.

    For command-line tools, before any work: a library must leave device start-up to its user.
    """
    with filtered_stderr():
        import tensorflow as tf  # noqa: PLC0415

        tf.config.list_physical_devices()
