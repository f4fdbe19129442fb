"""notebooks/quickstart.ipynb runs from top to bottom with the interpreter running the tests."""

import pytest
import json
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # many seconds each: `make quick` leaves them out

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    # A kernelspec for this very interpreter (the venv's), found first through JUPYTER_PATH, so the
    # notebook never runs on whatever "python3" kernel the machine happens to have.
    spec = tmp_path / "jupyter" / "kernels" / "delta-keras-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "delta_keras tests",
        "language": "python",
        "env": {"TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"},
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, kernel_name="delta-keras-test", timeout=300,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    assert "fewer MACs than dense" in outputs
    assert "temporal" in outputs and (tmp_path / "runs" / "quickstart" / "validation").is_dir()
