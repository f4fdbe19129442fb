"""train/run_folder.py: run folders, checkpoints kept, a corrupt checkpoint skipped and named."""

import keras
import pytest

from delta_keras.train import RunFolder
from delta_keras.train.run_folder import CorruptCheckpointError
from tests.train.helpers import tiny_model


def test_run_folder_keeps_the_newest_complete_checkpoints(tmp_path):
    run = RunFolder(tmp_path)
    model = tiny_model()
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
    model = tiny_model()
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


def test_checkpoints_are_bounded_by_time_as_well_as_by_epochs(tmp_path, monkeypatch):
    from delta_keras.train import run_folder as run_module
    from delta_keras.train.run_folder import EpochCheckpoint

    clock = [0.0]
    monkeypatch.setattr(run_module.time, "monotonic", lambda: clock[0])
    model = tiny_model()
    model.compile("sgd", "mse")
    callback = EpochCheckpoint(tmp_path, keep=10, steps_per_epoch=10, every_minutes=5)
    callback.set_model(model)
    callback.on_train_begin()
    for step, minutes in ((1, 1.0), (2, 4.9), (3, 5.0), (4, 6.0), (5, 10.1)):
        clock[0] = minutes * 60
        model.optimizer.iterations.assign(step)
        callback.on_train_batch_end(step - 1)
    # Saved at the first step 5 minutes after the start (step 3) and 5 minutes after that save (step 5).
    assert [(c.epoch, c.step) for c in RunFolder(tmp_path).checkpoints()] == [(0, 3), (0, 5)]


def test_the_default_checkpoint_interval_is_a_few_minutes():
    from delta_keras.train import TrainConfig

    assert 0 < TrainConfig().checkpoint_every_minutes <= 10
