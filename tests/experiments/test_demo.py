"""experiments/demo.py never clears a folder it did not make."""

import pytest
import demo


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
    monkeypatch.setattr("delta_keras.train.summary_table", lambda results: "")
    demo.main(["--logdir", str(tmp_path / "demo")])
    (tmp_path / "demo" / "dense").mkdir()
    (tmp_path / "demo" / "dense" / "old.txt").write_text("previous run")
    (tmp_path / "demo" / "notes.txt").write_text("the user's")
    demo.main(["--logdir", str(tmp_path / "demo")])
    assert not (tmp_path / "demo" / "dense" / "old.txt").exists()
    assert (tmp_path / "demo" / "notes.txt").read_text() == "the user's"
    assert trained == [str(tmp_path / "demo" / name) for name in ("dense", "delta")] * 2
