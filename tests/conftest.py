"""Test-wide settings: quiet TensorFlow, fixed seeds, paths to shared test data."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REAL_CLIPS = REPO.parent / "shared" / "data" / "real_clips"


@pytest.fixture(autouse=True)
def _reset_keras_state():
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session()


@pytest.fixture
def real_clip() -> str:
    """The real UCF101 clip of ../shared/data/real_clips; the test is skipped where the clips are absent."""
    path = REAL_CLIPS / "v_ApplyEyeMakeup_g01_c01.avi"
    if not path.is_file():
        pytest.skip(f"real test clips not found in {REAL_CLIPS} (see shared/data/real_clips/README.md)")
    return str(path)
