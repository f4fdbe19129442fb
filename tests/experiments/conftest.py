"""Shared settings of the script tests: tiny runs of the training script, importable in-process."""

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "experiments"))

# A few steps on 4-frame 16x16 synthetic clips: seconds per run on one core.
TINY_FLAGS = [
    "--frames", "4", "--image-size", "16", "--synthetic-videos", "8", "--synthetic-test-videos", "4",
    "--batch-size", "4", "--steps-per-epoch", "2", "--eval-clips", "2",
]


@pytest.fixture
def script_env():
    """Environment of a script subprocess: quiet TensorFlow, the repository importable."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
