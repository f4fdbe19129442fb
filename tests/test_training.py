"""The training package: config checks, run folders and checkpoints, refinement, evaluation."""

import argparse
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from delta_keras import DeltaActivation
from delta_keras.models import video_classifier
from delta_keras.train import (
    ConfigError,
    RunFolder,
    TrainConfig,
    add_config_arguments,
    build_model,
    check_run,
    config_from_args,
    evaluate_clips,
    init_from_checkpoint,
    start_model,
    transfer_weights,
)
from delta_keras.train.run import CorruptCheckpointError

TINY = TrainConfig(frames=4, image_size=16, synthetic_videos=8, synthetic_test_videos=4, batch_size=4)


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


def _tiny_model():
    clips = keras.Input((4, 3))
    x = keras.layers.Dense(5, activation="relu", name="hidden")(clips)
    return keras.Model(clips, keras.layers.Dense(2, name="out")(x))


def test_run_folder_keeps_the_newest_complete_checkpoints(tmp_path):
    run = RunFolder(tmp_path)
    model = _tiny_model()
    model.compile("adam", "mse")
    for epoch in (1, 2, 3):
        run.save_checkpoint(model, epoch, keep=2)
    (run.checkpoint_dir / ".tmp-123-abcd-epoch-0004.keras").write_bytes(b"killed while writing")
    assert [c.epoch for c in run.checkpoints()] == [2, 3]
    assert run.last_checkpoint().path == run.checkpoint_path(3)
    run.save_checkpoint(model, 3, keep=2, step=5)  # mid-epoch: after 3 epochs and 5 steps
    assert [(c.epoch, c.step) for c in run.checkpoints()] == [(3, 0), (3, 5)]
    assert run.last_checkpoint().path.name == "epoch-0003-step-000005.keras"


def test_load_newest_skips_a_corrupt_checkpoint_and_names_it(tmp_path):
    run = RunFolder(tmp_path)
    model = _tiny_model()
    model.compile("adam", "mse")
    for epoch in (1, 2):
        run.save_checkpoint(model, epoch)
    run.checkpoint_path(2).write_bytes(run.checkpoint_path(2).read_bytes()[:100])  # truncated
    with pytest.warns(UserWarning, match="epoch-0002.keras: corrupt checkpoint"):
        checkpoint, loaded = run.load_newest(lambda p: keras.models.load_model(p))
    assert checkpoint.epoch == 1 and isinstance(loaded, keras.Model)
    run.checkpoint_path(1).write_bytes(b"")
    with pytest.warns(UserWarning), pytest.raises(CorruptCheckpointError, match="no checkpoint loads"):
        run.load_newest(lambda p: keras.models.load_model(p))


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


def test_check_run_refuses_to_overwrite_or_to_resume_nothing(tmp_path):
    with pytest.raises(ConfigError, match="no checkpoint to resume"):
        check_run(dataclasses.replace(TINY, logdir=str(tmp_path), resume=True))
    model = _tiny_model()
    model.compile("adam", "mse")
    RunFolder(tmp_path).save_checkpoint(model, 1)
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        check_run(dataclasses.replace(TINY, logdir=str(tmp_path)))


def test_refinement_loads_the_dense_weights_by_layer_name(tmp_path):
    dense = build_model(TINY)
    dense.compile("adam", "mse")
    RunFolder(tmp_path).save_checkpoint(dense, 1)
    delta = build_model(dataclasses.replace(TINY, sparsity="delta"))
    copied = init_from_checkpoint(delta, tmp_path)
    assert "conv0" in copied and "logits" in copied
    for name in copied:
        for mine, theirs in zip(delta.get_layer(name).get_weights(), dense.get_layer(name).get_weights()):
            np.testing.assert_array_equal(mine, theirs)
    assert any(isinstance(layer, DeltaActivation) for layer in delta.layers)


def test_models_take_clips_of_any_length_and_the_study_needs_no_rebuild():
    from delta_keras.study import real_clip_density

    model = build_model(dataclasses.replace(TINY, sparsity="delta"))
    assert model.inputs[0].shape[1] is None
    clip = np.random.default_rng(0).uniform(0, 255, (1, 7, 16, 16, 3)).astype("float32")
    assert len(real_clip_density(model, clip)["mac_weighted"]) == 7  # a clip longer than --frames, as built
    fixed = video_classifier("tiny", 5, frames=4, image_size=16, sparsity="delta")  # as checkpoints used to be
    with pytest.raises(ValueError, match="takes clips of 4 frames only, not the real clip's 7"):
        real_clip_density(fixed, clip)


def test_start_model_is_new_initialised_or_resumed(tmp_path):
    dense_config = dataclasses.replace(TINY, logdir=str(tmp_path / "dense"))
    last, dense = start_model(dense_config)
    assert last is None and dense.optimizer is not None
    RunFolder(dense_config.logdir).save_checkpoint(dense, 2)
    _, refined = start_model(dataclasses.replace(TINY, sparsity="delta", init_from=dense_config.logdir))
    np.testing.assert_array_equal(refined.get_layer("conv0").get_weights()[0], dense.get_layer("conv0").get_weights()[0])
    last, resumed = start_model(dataclasses.replace(dense_config, resume=True))
    assert last.epoch == 2
    for mine, theirs in zip(resumed.get_weights(), dense.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_transfer_weights_names_the_layers_it_cannot_match():
    source = _tiny_model()
    clips = keras.Input((4, 3))
    target = keras.Model(clips, keras.layers.Dense(2, name="other")(clips))
    with pytest.raises(ValueError, match="other"):
        transfer_weights(source, target)


def test_evaluate_clips_averages_softmax_over_the_clips_of_a_video():
    # The model's logits are the clip's mean pixel per class channel: scores are set by the data.
    clips = keras.Input((2, 1, 1, 2))
    model = keras.Model(clips, keras.layers.GlobalAveragePooling3D()(clips))
    logits = np.array([[4.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 3.0]], "float32")
    data = tf.data.Dataset.from_tensor_slices((
        np.broadcast_to(logits[:, None, None, None, :], (4, 2, 1, 1, 2)).copy(),
        np.array([0, 0, 1, 1], "int32"),  # video 0 (class 0): one clip right, one wrong, right on average
        np.array([0, 0, 1, 1], "int32"),
    )).batch(3)
    result = evaluate_clips(model, data)
    assert result["clip_accuracy"] == 0.75
    assert result["video_accuracy"] == 1.0
    assert (result["clips"], result["videos"], result["layers"], result["density"]) == (4, 2, {}, {})


def test_validation_is_decoded_each_epoch_from_a_stratified_sample(tmp_path, monkeypatch):
    import importlib

    from delta_keras.data import write_ucf101_folder
    from delta_keras.train import builders

    root = write_ucf101_folder(tmp_path / "ucf", num_videos_per_class=3, frames=8, image_size=16)
    module = importlib.import_module("delta_keras.data.ucf101")
    reads = []
    real_read = module.read_frames
    monkeypatch.setattr(module, "read_frames", lambda path, *a, **k: reads.append(path) or real_read(path, *a, **k))
    config = dataclasses.replace(TINY, dataset="ucf101", data_dir=str(root), batch_size=2, validation_steps=3)
    classes = len(builders.video_folder(config, "test").classes)
    dataset = builders.validation_dataset(config)
    epochs = []
    for _ in range(2):
        epochs.append([label for _, batch in dataset for label in batch.numpy().tolist()])
        epochs[-1].append(len(reads))
    # 3 batches of 2, the first video of as many classes, the same each epoch, decoded again each epoch (no RAM cache).
    assert epochs[0][:-1] == epochs[1][:-1] and len(set(epochs[0][:-1])) == 6 == len(epochs[0][:-1])
    assert 0 < epochs[0][-1] < epochs[1][-1]
    # With the disk cache, each video is decoded once over both epochs.
    reads.clear()
    cached = dataclasses.replace(config, cache_dir=str(tmp_path / "cache"))
    for _ in range(2):
        list(builders.validation_dataset(cached))
    assert reads and len(reads) == len(set(reads))
    # A final evaluation can be bounded the same way.
    quick = dataclasses.replace(config, eval_videos_per_class=1, eval_clips=2)
    ids = [i for _, _, batch in builders.evaluation_dataset(quick) for i in batch.numpy().tolist()]
    assert len(ids) == 2 * classes and len(set(ids)) == classes
