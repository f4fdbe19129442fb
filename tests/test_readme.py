"""Every Python example of README.md runs as written; the console commands are installed."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_readme_has_examples():
    assert EXAMPLES


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example_runs_as_written(index, tmp_path):
    done = subprocess.run([sys.executable, "-c", EXAMPLES[index]], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Warning" not in done.stderr, done.stderr[-3000:]  # no Keras or AutoGraph warnings from our own example


def test_readme_says_where_the_commands_are():
    text = " ".join((REPO / "README.md").read_text().split())
    assert "source .venv/bin/activate" in text and ".venv/bin/tensorboard --logdir runs/demo" in text


@pytest.mark.parametrize("command", ["delta-keras-train", "delta-keras-eval", "delta-keras-sim", "delta-keras-stream"])
def test_console_commands_are_installed(command):
    path = shutil.which(command, path=str(Path(sys.executable).parent))
    assert path, f"{command} is not installed next to {sys.executable} (pip install -e . installs it)"
    done = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "usage:" in done.stdout
    assert "cuInit" not in done.stderr and "I0000" not in done.stderr
