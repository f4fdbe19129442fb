"""Test-wide settings: quiet TensorFlow, fixed seeds, paths to shared test data."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The tests never touch the user's home folders: caches (the package's video index, Matplotlib's), settings
# and Keras' folder go to a temporary folder of this test session, inherited by the scripts tests run.
USER_HOME = Path.home()
# (Once per process: this module is imported again as tests.conftest by the tests that read its paths.)
if "DELTA_KERAS_TEST_HOME" not in os.environ:
    os.environ["DELTA_KERAS_TEST_HOME"] = tempfile.mkdtemp(prefix="delta_keras-tests-home-")
    atexit.register(shutil.rmtree, os.environ["DELTA_KERAS_TEST_HOME"], True)
TEST_HOME = Path(os.environ["DELTA_KERAS_TEST_HOME"])
for variable, folder in (("XDG_CACHE_HOME", "cache"), ("XDG_CONFIG_HOME", "config"), ("KERAS_HOME", "keras"),
                         ("MPLCONFIGDIR", "matplotlib")):
    os.environ[variable] = str(TEST_HOME / folder)
# FFmpeg's errors on, once for the whole session: the commands quieten the decoder where nothing set its level
# (delta_keras.quiet.quiet_video_decoder), and OpenCV reads the level once a process, so a test calling a command
# in-process would otherwise silence the decoder errors that tests of decode_check read later in that process.
os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "16"

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
