"""How to store decoded frames: bytes per video against what happens to the temporal deltas, side by side.

Decodes the real UCF101 clip at short side 112 (as training does) and stores its frames as raw uint8, with
the frame cache's lossless format (`delta_keras.data.cache.encode_frames`), as PNG and as JPEG at two
qualities. For each it prints the bytes of the whole video and the share of pixel values that do not change
from one frame to the next after reading them back: the exact zeros that delta inference skips. A lossy
format that changes that share would falsify every sparsity figure measured on cached frames.

    python benchmarks/cache_formats.py [--video PATH]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from delta_keras.data.cache import encode_frames
from delta_keras.data.video import probe_video, read_frames

REAL_AVI = Path(__file__).resolve().parents[1].parent / "shared/data/real_clips/v_ApplyEyeMakeup_g01_c01.avi"


def image_codec(extension: str, params: list[int]):
    def encode(frames: np.ndarray) -> tuple[int, np.ndarray]:
        blobs = [cv2.imencode(extension, frame, params)[1] for frame in frames]
        return sum(map(len, blobs)), np.stack([cv2.imdecode(blob, cv2.IMREAD_UNCHANGED) for blob in blobs])

    return encode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", default=str(REAL_AVI))
    args = parser.parse_args()
    frames = read_frames(args.video, np.arange(probe_video(args.video)), 112)
    formats = {
        "raw uint8": lambda f: (f.nbytes, f),
        "frame cache (lossless)": lambda f: (len(encode_frames(f)), f),  # lossless: tests/data/test_cache.py
        "PNG (lossless)": image_codec(".png", []),
        "JPEG quality 95": image_codec(".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95]),
        "JPEG quality 90": image_codec(".jpg", [cv2.IMWRITE_JPEG_QUALITY, 90]),
    }
    print(f"{Path(args.video).name}: {frames.shape[0]} frames of {frames.shape[1]}x{frames.shape[2]} (short side 112)")
    print(f"{'format':<24} {'MB/video':>9} {'x smaller':>9} {'unchanged px values':>20} {'encode s':>9}")
    for name, encode in formats.items():
        started = time.perf_counter()
        size, decoded = encode(frames)
        seconds = time.perf_counter() - started
        unchanged = float((np.diff(decoded.astype(np.int16), axis=0) == 0).mean())
        print(f"{name:<24} {size / 1e6:>9.2f} {frames.nbytes / size:>9.1f} {100 * unchanged:>19.1f}% {seconds:>9.2f}")


if __name__ == "__main__":
    main()
