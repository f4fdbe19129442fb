"""study/runner.py: a completed run is reused, a changed one is not."""

import dataclasses
import json

from delta_keras.train import SparsityConfig, TrainConfig


def test_a_completed_run_written_before_newer_settings_existed_is_reused(tmp_path):
    from delta_keras.study.runner import _cached

    config = TrainConfig(logdir=str(tmp_path), sparsity="delta", init_from="runs/dense")
    saved = config.to_dict()
    del saved["memory"], saved["input_memory"]  # a results.json from an older release
    (tmp_path / "results.json").write_text(json.dumps({"config": saved, "evaluation": {}}))
    assert _cached(config) is not None
    assert _cached(dataclasses.replace(config, sparsity_weight=0.5)) is None


def test_the_dense_runs_take_no_sparsity_setting_of_the_study(tmp_path):
    from delta_keras.study.runner import StudyConfig

    base = TrainConfig(sparsity_normalization="dense_macs", step_rate=2000.0, step_gradient="lsq", memory=True,
                       learning_rate=1e-3)
    study = StudyConfig(base, out=str(tmp_path), methods=("dense", "delta_refine", "dense_refine"))
    configs = {name: config for name, _, _, config in study.runs()}
    for dense in ("dense", "dense-refine"):
        # A study's step rate or loss normalisation must not make its dense baseline another run.
        assert configs[dense].sparsity == "none" and configs[dense].step_rate == 1.0
        assert configs[dense].part(SparsityConfig) == SparsityConfig()
    assert configs["dense"].learning_rate == 1e-3
    refined = [config for name, config in configs.items() if name.startswith("delta-refine")]
    assert refined and all(c.step_rate == 2000.0 and c.sparsity_normalization == "dense_macs" for c in refined)
