"""train/config.py: the settings' checks, defaults, command line and comparison on resume."""

import argparse
import dataclasses

import pytest

from delta_keras.train import ConfigError, TrainConfig, add_config_arguments, config_from_args
from tests.train.helpers import TINY


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"sparsity_weight": 1e-3}, "only with --sparsity l1 or delta"),
        ({"sparsity": "l1", "step_init": 0.5}, "only apply to --sparsity delta"),
        ({"sparsity": "delta", "sparsity_schedule": "warmup"}, "--sparsity-warmup-steps"),
        ({"frames": 1}, "--frames must be >= 2"),
        ({"dataset": "ucf101"}, "needs --data-dir"),
        ({"dataset": "ucf101", "data_dir": "/nonexistent"}, "missing UCF-101"),
        ({"weights": "imagenet"}, "no pretrained weights"),
        ({"weights": "/nonexistent.weights.h5"}, "no such file"),
        ({"init_from": "/nonexistent"}, "no such checkpoint"),
        ({"strategy": "multiworker"}, "TF_CONFIG"),
        ({"sparsity": "delta", "input_step_init": 16.0}, "needs --sparsity delta and --include-input"),
        ({"sparsity": "delta", "include_input": True, "input_step_init": -1.0}, "--input-step-init must be > 0"),
    ],
)
def test_validate_rejects_bad_settings(changes, message, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(TINY, **changes).validate()


def test_resolved_fills_mode_dependent_defaults():
    delta = dataclasses.replace(TINY, sparsity="delta").resolved()
    assert (delta.sparsity_weight, delta.step_init, delta.granularity, delta.step_gradient) == (1e-4, 1.0, "channel", "lsq")
    assert dataclasses.replace(TINY, sparsity="l1").resolved().step_init is None


def test_command_line_round_trips_the_config():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(["--sparsity", "delta", "--step-init", "0.5", "--frames", "6", "--mixed-precision"])
    config = config_from_args(args)
    assert (config.sparsity, config.step_init, config.frames, config.mixed_precision) == ("delta", 0.5, 6, True)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert dataclasses.replace(config, frames=8).differences(config) == ["--frames: 8 != 6"]


@pytest.mark.parametrize("flag", ["learning_rate", "step_init", "sparsity_weight", "alpha", "input_step_init"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_validate_rejects_non_finite_numbers(flag, value):
    config = dataclasses.replace(TINY, sparsity="delta", include_input=True, **{flag: value})
    with pytest.raises(ConfigError, match=f"--{flag.replace('_', '-')} must be a finite number"):
        config.validate()


def test_differences_compare_resolved_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    saved = dataclasses.replace(TINY, logdir="runs/a", data_dir="data")
    same = dataclasses.replace(TINY, logdir=str(tmp_path / "elsewhere") + "/", data_dir=str(tmp_path / "data") + "/")
    assert same.differences(saved) == []
    assert dataclasses.replace(same, data_dir="other").differences(saved) == [f"--data-dir: 'other' != 'data'"]
    # How data is read and checked may change on resume; what is computed may not.
    reading = dict(cache_dir="other", cache_max_gb=1.0, verify_videos="header", decode_threads=2, opencv_threads=1)
    assert dataclasses.replace(same, **reading).differences(saved) == []
