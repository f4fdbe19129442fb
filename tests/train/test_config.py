"""train/config/: the parts of the settings, their checks, defaults, command line, comparison on resume and
the config.json files of earlier releases."""

import argparse
import dataclasses
import json
from pathlib import Path

import pytest

import delta_keras
from delta_keras.layers import DeltaActivation
from delta_keras.models.walk import all_layers
from delta_keras.train import (ConfigError, DataConfig, ModelConfig, OptimizationConfig, SparsityConfig, TrainConfig,
                               add_config_arguments, builders, config_from_args, train)
from delta_keras.train.config import PARTS
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


# A run folder's config.json as release 0.1.0 wrote it (a one-step synthetic run), before the config had parts.
RELEASE_0_1_0 = Path(__file__).parent / "data" / "config-0.1.0.json"


def test_the_parts_hold_every_setting_once():
    names = [field.name for part in PARTS for field in dataclasses.fields(part)]
    assert len(names) == len(set(names)), "a setting in two parts would be silently merged"
    assert names == [field.name for field in dataclasses.fields(TrainConfig)]
    # Each part checks itself alone.
    with pytest.raises(ConfigError, match="--frames must be >= 2"):
        DataConfig(frames=1).validate()
    with pytest.raises(ConfigError, match="only with --backbone hed_vgg16"):
        ModelConfig(blocks=3).validate()
    with pytest.raises(ConfigError, match="--step-rate must be > 0"):
        SparsityConfig(step_rate=0.0).validate()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"distill_from": "."}, "refines a sparse student"),
        ({"sparsity": "delta", "distill_from": ".", "init_from": "."}, "drop --init-from"),
        ({"unlabelled_dir": "."}, "--unlabelled-dir: only with --distill-from"),
        ({"sparsity": "delta", "distill_from": ".", "unlabelled_dir": ".", "label_weight": 0.5}, "needs labels"),
        ({"resume": True, "init_from": "."}, "give only one"),
    ],
)
def test_combinations_across_parts_are_checked(changes, message):
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(TINY, **changes).validate()


def test_each_builder_reads_only_the_part_it_takes():
    data = TINY.part(DataConfig)
    assert builders.num_classes(data) == len(delta_keras.data.SYNTHETIC_CLASSES)
    clips, labels = next(iter(builders.train_dataset(data)))
    assert tuple(clips.shape) == (4, 4, 16, 16, 3) and builders.epoch_steps(data) == 2
    assert builders.validation_steps(data) == 1 and next(iter(builders.validation_dataset(data)))[0].shape[0] == 4
    assert builders.mac_clips(data).shape[1:] == (4, 16, 16, 3)
    sparsity = dataclasses.replace(TINY, sparsity="delta", sparsity_weight=1e-3).part(SparsityConfig)
    assert float(builders.sparsity_schedule(sparsity)(0)) == pytest.approx(1e-3)
    model = builders.build_classifier(TINY.part(ModelConfig), sparsity, 3, 16)
    assert model.output_shape == (None, 3) and any(isinstance(layer, DeltaActivation) for layer in all_layers(model))
    optimizer = builders.build_optimizer(TINY.part(OptimizationConfig), 20, step_rate=10.0)
    assert optimizer.step_rate == 10.0


def test_a_run_that_release_0_1_0_wrote_loads_and_resumes(tmp_path):
    written = json.loads(RELEASE_0_1_0.read_text())
    config = TrainConfig.from_dict(written["config"])
    assert config.to_dict() == written["config"]  # every setting read back, none renamed or lost
    run = tmp_path / "run"
    train(dataclasses.replace(config, logdir=str(run)), verbose=0)
    (run / "config.json").write_text(RELEASE_0_1_0.read_text())  # the run's file, as 0.1.0 wrote it
    resumed = dataclasses.replace(config, logdir=str(run), resume=True, epochs=2)
    results = train(resumed, verbose=0)
    assert (run / "checkpoints" / "epoch-0002.keras").is_file() and results["config"]["epochs"] == 2
