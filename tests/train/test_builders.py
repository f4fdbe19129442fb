"""train/builders.py: models, refinement by layer name, and the datasets a run reads."""

import dataclasses

import keras
import numpy as np
import pytest

from delta_keras import DeltaActivation
from delta_keras.models import video_classifier
from delta_keras.train import RunFolder, build_model, builders, init_from_checkpoint, transfer_weights
from tests.train.helpers import TINY, tiny_model


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


def test_a_refinement_takes_the_steps_of_a_calibrated_checkpoint_of_the_same_mode(tmp_path):
    """A post-hoc model (one step per layer) is a refinement's start: its steps reach every channel; a
    checkpoint of the other mode (memory thresholds) leaves the fresh steps alone."""
    calibrated = build_model(dataclasses.replace(TINY, sparsity="delta", granularity="layer", step_init=0.7))
    deltas = [layer for layer in calibrated.layers if isinstance(layer, DeltaActivation)]
    for value, layer in enumerate(deltas, 1):
        layer.step_variable.assign(0.1 * value)
    calibrated.save(tmp_path / "calibrated.keras")
    refined = build_model(dataclasses.replace(TINY, sparsity="delta", step_init=0.5))
    copied = init_from_checkpoint(refined, tmp_path / "calibrated.keras")
    for value, layer in enumerate(deltas, 1):
        step = keras.ops.convert_to_numpy(refined.get_layer(layer.name).step_variable)
        assert layer.name in copied and step.shape == (refined.get_layer(layer.name).input.shape[-1],)
        np.testing.assert_allclose(step, 0.1 * value, rtol=1e-6)
    memory = build_model(dataclasses.replace(TINY, sparsity="delta", step_init=0.5, memory=True))
    copied = init_from_checkpoint(memory, tmp_path / "calibrated.keras")
    assert not any(layer.name in copied for layer in deltas)
    assert all(np.all(keras.ops.convert_to_numpy(memory.get_layer(l.name).step_variable) == 0.5) for l in deltas)
    finer = build_model(dataclasses.replace(TINY, sparsity="delta", granularity="neuron"))
    refined.save(tmp_path / "per-channel.keras")
    coarse = build_model(dataclasses.replace(TINY, sparsity="delta", granularity="layer"))
    with pytest.raises(ValueError, match="do not broadcast"):
        init_from_checkpoint(coarse, tmp_path / "per-channel.keras")
    assert init_from_checkpoint(finer, tmp_path / "per-channel.keras")  # channel steps reach every neuron


def test_validation_steps_never_ask_for_more_batches_than_there_are(tmp_path):
    from delta_keras.data import write_class_folder

    root = write_class_folder(tmp_path / "clips", num_classes=3, sources_per_class=4, clips_per_source=1, frames=6,
                              image_size=16)
    config = dataclasses.replace(TINY, dataset="folder", data_dir=str(root), batch_size=2, validation_steps=50)
    batches = sum(1 for _ in builders.validation_dataset(config))
    assert builders.validation_steps(config) == batches < 50
    assert builders.validation_steps(dataclasses.replace(config, validation_steps=1)) == 1


def test_models_take_clips_of_any_length_and_the_study_needs_no_rebuild():
    from delta_keras.study import real_clip_density

    model = build_model(dataclasses.replace(TINY, sparsity="delta"))
    assert model.inputs[0].shape[1] is None
    clip = np.random.default_rng(0).uniform(0, 255, (1, 7, 16, 16, 3)).astype("float32")
    assert len(real_clip_density(model, clip)["mac_weighted"]) == 7  # a clip longer than --frames, as built
    fixed = video_classifier("tiny", 5, frames=4, image_size=16, sparsity="delta")  # as checkpoints used to be
    with pytest.raises(ValueError, match="takes clips of 4 frames only, not the real clip's 7"):
        real_clip_density(fixed, clip)


def test_transfer_weights_names_the_layers_it_cannot_match():
    source = tiny_model()
    clips = keras.Input((4, 3))
    target = keras.Model(clips, keras.layers.Dense(2, name="other")(clips))
    with pytest.raises(ValueError, match="other"):
        transfer_weights(source, target)


def test_validation_is_decoded_each_epoch_from_a_stratified_sample(tmp_path, monkeypatch):
    import importlib

    from delta_keras.data import write_ucf101_folder

    root = write_ucf101_folder(tmp_path / "ucf", num_videos_per_class=3, frames=8, image_size=16)
    module = importlib.import_module("delta_keras.data.video_files")
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


def test_clip_sampling_flips_all_but_the_synthetic_actions_labelled_clips():
    synthetic = dataclasses.replace(TINY, dataset="synthetic")
    assert not builders.clip_sampling(synthetic, training=True).flip  # a flip turns move_left into move_right
    assert builders.clip_sampling(synthetic, training=True, labelled=False).flip  # --unlabelled-dir's videos
    assert builders.clip_sampling(dataclasses.replace(TINY, dataset="ucf101"), training=True).flip
    sampling = builders.clip_sampling(synthetic, training=False, clips_per_video=3)
    assert (sampling.frames, sampling.image_size, sampling.clips_per_video, sampling.training) == (4, 16, 3, False)



def test_the_video_index_of_a_test_run_is_not_in_the_users_home():
    from tests.conftest import TEST_HOME, USER_HOME

    index = builders.video_index(dataclasses.replace(TINY, dataset="ucf101", data_dir="/data"))
    assert index.is_relative_to(TEST_HOME) and not index.is_relative_to(USER_HOME / ".cache")
