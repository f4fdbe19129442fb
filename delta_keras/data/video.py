"""Video decoding with OpenCV: probing, seeking and reading frames as RGB."""

from __future__ import annotations

import os
import re

import cv2
import numpy as np

# A header may announce a frame or two more than the stream holds (a common
# container quirk); only a larger shortfall marks a file as truncated.
FRAME_COUNT_TOLERANCE = 2


# What FFmpeg (inside OpenCV) prints when a stream is damaged: "[mpeg4 @ 0x55d0...] ac-tex damaged at 3 3", or,
# where OPENCV_FFMPEG_LOGLEVEL is set, through OpenCV's own callback: "[OPENCV:FFMPEG:16] ac-tex damaged at 3 3".
_DECODER_ERROR = re.compile(rb"^\[(?:\w+ @ 0x[0-9a-f]+|OPENCV:FFMPEG:\d+)\] (.+)$", re.MULTILINE)


def report_decoder_errors() -> None:
    """Makes FFmpeg print its errors in this process (a `decode_check` worker's initializer, before it opens a
    video): a command may have quietened the decoder (`delta_keras.quiet.quiet_video_decoder`) in the process
    that started it."""
    from delta_keras.quiet import FFMPEG_ERRORS, FFMPEG_LOG_LEVEL  # noqa: PLC0415

    os.environ[FFMPEG_LOG_LEVEL] = FFMPEG_ERRORS


class VideoDecodeError(RuntimeError):
    """A video cannot be opened or decoded.

    Args:
        path: the video file.
        reason: what went wrong, without the file name.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason


def resize_short_side(frame: np.ndarray, short_side: int) -> np.ndarray:
    """Resizes an `(H, W, C)` uint8 frame so that its shorter side is `short_side`.

    The aspect ratio is kept; the longer side is rounded to the nearest pixel.

    Args:
        frame: uint8 array `(H, W, C)`.
        short_side: target length of the shorter side, in pixels.

    Returns:
        The resized uint8 array (the input itself when it already fits).
    """
    height, width = frame.shape[:2]
    scale = short_side / min(height, width)
    size = (max(short_side, round(width * scale)), max(short_side, round(height * scale)))
    if size == (width, height):
        return frame
    # INTER_AREA averages when shrinking (no aliasing), INTER_LINEAR when enlarging.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(frame, size, interpolation=interpolation)


def _open(path: str | os.PathLike, threads: int = 0) -> cv2.VideoCapture:
    """Opens a video; ``threads`` > 0 sets the decoder's threads (0: the backend's choice)."""
    params = [cv2.CAP_PROP_N_THREADS, threads] if threads else []
    capture = cv2.VideoCapture(os.fspath(path), cv2.CAP_ANY, params)
    if not capture.isOpened():
        raise VideoDecodeError(path, "cannot be opened as a video")
    return capture


def _read_at(capture: cv2.VideoCapture, index: int) -> np.ndarray | None:
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = capture.read()
    return frame if ok else None


def probe_video(path: str | os.PathLike, verify: bool = True) -> int:
    """Returns the number of decodable frames of a video.

    The count comes from the container header (`CAP_PROP_FRAME_COUNT`), so the
    probe is cheap. With `verify=True` it also seeks to the last announced frame
    and reads it: a truncated file keeps its original header, and this is the
    only cheap way to notice it before training.

    Args:
        path: video file.
        verify: read the first and the last announced frame.

    Returns:
        The number of frames, >= 1.

    Raises:
        VideoDecodeError: the file cannot be opened, announces no frames, or
            (with `verify`) its first or last frames cannot be decoded.
    """
    capture = _open(path)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:
            raise VideoDecodeError(path, f"the container announces {count} frames")
        if not verify:
            return count
        if _read_at(capture, 0) is None:
            raise VideoDecodeError(path, "the first frame cannot be decoded")
        for last in range(count - 1, max(count - 1 - FRAME_COUNT_TOLERANCE, 0) - 1, -1):
            if _read_at(capture, last) is not None:
                return last + 1
        raise VideoDecodeError(
            path,
            f"truncated, the header announces {count} frames but the last "
            "ones cannot be decoded"
        )
    finally:
        capture.release()


def count_frames(path: str | os.PathLike) -> int:
    """Decodes a video from its start and returns how many frames decode: the frame count of a container whose
    header cannot be trusted (JHMDB's announce about 1.2 times the frames they hold, and seeking in them lands
    on other frames than decoding to the same index).

    Raises:
        VideoDecodeError: the file cannot be opened or no frame decodes.
    """
    decoded = _decode_all(path)[1]
    if not decoded:
        raise VideoDecodeError(path, "no frame decodes")
    return decoded


def _decode_all(path: str | os.PathLike) -> tuple[int, int]:
    """Decodes a video from its start: ``(frames the header announces, frames that decode)``. One decoding thread:
    with several, what FFmpeg reports about a damaged stream varies from run to run (and sometimes is nothing)."""
    capture = _open(path, threads=1)
    try:
        announced, decoded = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0
        while capture.grab():
            decoded += 1
    finally:
        capture.release()
    return announced, decoded


def decode_check(path: str | os.PathLike) -> int:
    """Decodes every frame of a video and returns how many there are, raising where it is damaged.

    Damage inside a file (bytes overwritten mid-stream) often decodes into garbage without an error that
    OpenCV passes on; FFmpeg, which decodes inside OpenCV, prints it on the process's standard error
    ("[mpeg4 @ 0x...] ac-tex damaged at 3 3", "[mjpeg @ 0x...] huffman table decode error"). This check
    reads that output, so it must run where nothing else writes to standard error at the same time: a
    process of its own (`VideoFolder` runs it in a process pool for ``verify="decode"``).

    Raises:
        VideoDecodeError: the file cannot be opened, the decoder reports an error, or it yields fewer
            frames than the header announces (beyond `FRAME_COUNT_TOLERANCE`).
    """
    from delta_keras.quiet import captured_output  # noqa: PLC0415 (keeps this module loadable on its own)

    # FFmpeg writes to stderr; through OpenCV's callback (OPENCV_FFMPEG_LOGLEVEL set) to stdout.
    with captured_output(descriptors=(1, 2)) as messages:
        announced, decoded = _decode_all(path)
    errors = _DECODER_ERROR.findall(b"".join(messages))
    if errors:
        raise VideoDecodeError(path, f"damaged: the decoder reports {errors[0].decode(errors='replace').strip()!r}"
                                     f"{f' and {len(errors) - 1} more error(s)' if len(errors) > 1 else ''}")
    if decoded == 0 or decoded < announced - FRAME_COUNT_TOLERANCE:
        raise VideoDecodeError(path, f"damaged: {decoded} of the {announced} frames the header announces decode")
    return decoded


def read_frames(
    path: str | os.PathLike, indices: np.ndarray, short_side: int | None = None, seek: bool = True
) -> np.ndarray:
    """Decodes the frames at `indices` of a video, as RGB.

    The reader seeks to the first wanted frame and then decodes forward,
    grabbing without converting the frames in between, so a 16-frame clip of a
    long video costs little more than 16 frames. A seek that does not land where
    asked (some containers only seek to key frames) falls back to decoding
    from the start.

    Args:
        path: video file.
        indices: frame numbers, int, any order, repeats allowed.
        short_side: resize each frame so that its shorter side has this length;
            `None` keeps the decoded size.
        seek: seek to the first wanted frame; False decodes from the start (for containers whose index
            cannot be trusted, see `count_frames`).

    Returns:
        uint8 array `(len(indices), H, W, 3)`, RGB.

    Raises:
        VideoDecodeError: the file cannot be opened or a wanted frame cannot be
            decoded (for example a truncated file).
    """
    indices = np.asarray(indices, dtype=np.int64)
    wanted = np.unique(indices)
    capture = _open(path)
    try:
        position = int(wanted[0]) if seek else 0
        if position > 0:
            capture.set(cv2.CAP_PROP_POS_FRAMES, position)
            if int(capture.get(cv2.CAP_PROP_POS_FRAMES)) != position:
                capture.release()
                capture = _open(path)
                position = 0
        decoded = {}
        for index in wanted:
            while position < index:
                if not capture.grab():
                    break
                position += 1
            ok, frame = capture.read()
            if not ok:
                raise VideoDecodeError(path, f"frame {index} cannot be decoded")
            position += 1
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            decoded[int(index)] = frame if short_side is None else resize_short_side(frame, short_side)
    finally:
        capture.release()
    return np.stack([decoded[int(i)] for i in indices])


def read_clip(path: str | os.PathLike, frames: int, size: int | tuple[int, int], start: int = 0,
              stride: int = 1, seek: bool = True) -> np.ndarray:
    """``frames`` frames of a video from ``start`` (every ``stride``-th), resized so that they cover ``size`` and
    centre-cropped to it: the clip format of the data sources, for one real video (the simulator's command
    line, the study's real clip, the runtime's benchmark).

    Args:
        path: video file.
        frames: clip length.
        size: ``(height, width)``, or one int for square frames.
        start, stride: the first frame and the step between frames.
        seek: as `read_frames` (False: decode from the start, for containers whose seeking misses frames).

    Returns:
        float32 ``(frames, height, width, 3)``, RGB in [0, 255].

    Raises:
        VideoDecodeError: as `read_frames`.
    """
    height, width = (size, size) if isinstance(size, int) else size
    video = read_frames(path, start + stride * np.arange(frames), short_side=max(height, width), seek=seek)
    top, left = (video.shape[1] - height) // 2, (video.shape[2] - width) // 2
    return video[:, top:top + height, left:left + width].astype("float32")


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 25.0) -> None:
    """Writes RGB frames ``(T, H, W, 3)`` (uint8, or floats in [0, 255]; one channel is shown grey) as a
    Motion-JPEG ``.avi``, which every OpenCV build writes and reads.

    Raises:
        RuntimeError: OpenCV cannot write there.
    """
    frames = np.clip(np.asarray(frames), 0, 255).astype(np.uint8)
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(os.fspath(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write Motion-JPEG video to {path}")
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
