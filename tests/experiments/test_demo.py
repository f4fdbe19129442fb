"""experiments/demo.py: never clears a folder it did not make; its figures in README and docs are today's."""

import re
import subprocess
import sys

import demo
import pytest
from conftest import REPO

from delta_keras import machine_summary


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


def demo_tables(text: str) -> dict[str, str]:
    """The tables docs/training.md records after a line "`make demo` on `CPU`", by CPU (as machine_summary names it)."""
    tables, cpu, lines = {}, None, []
    for line in text.splitlines() + [""]:
        if line.startswith("|") and cpu:
            lines.append(line)
        elif lines:
            tables[cpu], cpu, lines = "\n".join(lines) + "\n", None, []
        found = re.match(r"`make demo` on `([\w-]+)`", line)
        cpu = found.group(1) if found else cpu
    return tables


def figures(table: str) -> dict[str, list[float]]:
    """``{row label: [dense, delta]}`` of a comparison table (the ``x`` of the MAC reductions dropped)."""
    return {line.split(" | ")[0].strip("| "): [float(value.rstrip("x")) for value in line.strip(" |").split(" | ")[1:]]
            for line in table.splitlines()[2:]}


def test_demo_tables_are_read_by_cpu():
    text = "`make demo` on `znver5` (a CPU):\n\n| | a | b |\n|---|---|---|\n| x | 1.0 | 2.5x |\n\nOn `other`:\n| y |\n"
    assert demo_tables(text) == {"znver5": "| | a | b |\n|---|---|---|\n| x | 1.0 | 2.5x |\n"}
    assert figures(demo_tables(text)["znver5"]) == {"x": [1.0, 2.5]}


@pytest.mark.slow
def test_the_demo_figures_in_readme_and_docs_are_what_the_demo_prints_today(tmp_path, script_env):
    """docs/training.md records `make demo`'s table per CPU, README quotes the first: a fresh run must give its CPU's
    table, or on a CPU not recorded figures near the first table's (to update them, run `make demo` and copy
    runs/demo/comparison.md into docs/training.md under its CPU's name)."""
    done = subprocess.run([sys.executable, str(REPO / "experiments" / "demo.py"), "--logdir", str(tmp_path / "demo")],
                          env=script_env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "demo" / "comparison.md").read_text()
    recorded = demo_tables((REPO / "docs" / "training.md").read_text())
    named = re.search(r"\(([\w-]+)\)$", machine_summary())  # numba's name of the CPU
    cpu = named.group(1) if named else None
    first = next(iter(recorded.values()))
    if cpu in recorded:
        assert table == recorded[cpu], f"docs/training.md should hold, for {cpu}:\n{table}"
    else:
        for (label, today), (_, there) in zip(figures(table).items(), figures(first).items()):
            tolerance = [0.02] * 2 if "accuracy" in label else [0.05 * value for value in there]
            assert all(abs(a - b) <= t for a, b, t in zip(today, there, tolerance)), (label, today, there)
    quoted = figures(first)
    dense_accuracy, delta_accuracy = quoted["video accuracy"]
    dense_macs, delta_macs = quoted["MACs, dense / zero_delta"]
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"video accuracy {delta_accuracy:.3f} against the dense model's {dense_accuracy:.3f}" in readme
    assert f"with {delta_macs:.2f}x fewer MACs under delta inference, against {dense_macs:.2f}x for the dense" in readme
