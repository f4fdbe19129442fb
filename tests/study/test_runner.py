"""study/runner.py: a completed run is reused, a changed one is not."""

import dataclasses
import json

from delta_keras.train import TrainConfig


def test_a_completed_run_written_before_newer_settings_existed_is_reused(tmp_path):
    from delta_keras.study.runner import _cached

    config = TrainConfig(logdir=str(tmp_path), sparsity="delta", init_from="runs/dense")
    saved = config.to_dict()
    del saved["memory"], saved["input_memory"]  # a results.json from an older release
    (tmp_path / "results.json").write_text(json.dumps({"config": saved, "evaluation": {}}))
    assert _cached(config) is not None
    assert _cached(dataclasses.replace(config, sparsity_weight=0.5)) is None
