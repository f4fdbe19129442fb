"""experiments/demo.py: never clears a folder it did not make; its figures in README and docs are today's."""

import subprocess
import sys

import demo
import pytest
from conftest import REPO


def test_demo_refuses_a_folder_it_did_not_make(tmp_path, capsys):
    (tmp_path / "paper.tex").write_text("the user's")
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--logdir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "not empty and not made by this tool" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["paper.tex"]


def test_demo_reruns_replace_only_its_own_runs(tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr("delta_keras.train.train", lambda config, **kwargs: trained.append(config.logdir) or {})
    monkeypatch.setattr(demo, "comparison", lambda results: "")
    monkeypatch.setattr(demo, "markdown", lambda results: "")
    monkeypatch.setattr("delta_keras.train.summary_table", lambda results: "")
    demo.main(["--logdir", str(tmp_path / "demo")])
    (tmp_path / "demo" / "dense").mkdir()
    (tmp_path / "demo" / "dense" / "old.txt").write_text("previous run")
    (tmp_path / "demo" / "notes.txt").write_text("the user's")
    demo.main(["--logdir", str(tmp_path / "demo")])
    assert not (tmp_path / "demo" / "dense" / "old.txt").exists()
    assert (tmp_path / "demo" / "notes.txt").read_text() == "the user's"
    assert trained == [str(tmp_path / "demo" / name) for name in ("dense", "delta")] * 2


@pytest.mark.slow
def test_the_demo_figures_in_readme_and_docs_are_what_the_demo_prints_today(tmp_path, script_env):
    """README and docs/training.md quote `make demo`'s figures: a fresh run must give the same ones (to
    update them, run `make demo` and copy runs/demo/comparison.md into docs/training.md)."""
    done = subprocess.run([sys.executable, str(REPO / "experiments" / "demo.py"), "--logdir", str(tmp_path / "demo")],
                          env=script_env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "demo" / "comparison.md").read_text()
    assert table in (REPO / "docs" / "training.md").read_text(), f"docs/training.md should hold:\n{table}"
    rows = {line.split(" | ")[0].strip("| "): line.strip(" |").split(" | ")[1:] for line in table.splitlines()[2:]}
    (dense_accuracy, delta_accuracy), (dense_macs, delta_macs) = rows["video accuracy"], rows["MACs, dense / zero_delta"]
    readme = " ".join((REPO / "README.md").read_text().split())
    assert (f"video accuracy {delta_accuracy} against the dense model's {dense_accuracy}" in readme
            and f"with {delta_macs} fewer MACs under delta inference, against {dense_macs} for the dense model" in readme)
