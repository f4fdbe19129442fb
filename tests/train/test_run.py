"""train/run.py: run folders, checkpoints kept, a corrupt checkpoint skipped and named."""

import keras
import pytest

from delta_keras.train import RunFolder
from delta_keras.train.run import CorruptCheckpointError
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
