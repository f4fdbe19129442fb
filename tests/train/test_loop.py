"""train/loop.py: the run checks and the model a run starts from (new, refined or resumed)."""

import dataclasses

import numpy as np
import pytest

from delta_keras.train import ConfigError, RunFolder, check_run, start_model
from tests.train.helpers import TINY, tiny_model


def test_check_run_refuses_to_overwrite_or_to_resume_nothing(tmp_path):
    with pytest.raises(ConfigError, match="no checkpoint to resume"):
        check_run(dataclasses.replace(TINY, logdir=str(tmp_path), resume=True))
    model = tiny_model()
    model.compile("adam", "mse")
    RunFolder(tmp_path).save_checkpoint(model, 1)
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        check_run(dataclasses.replace(TINY, logdir=str(tmp_path)))


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
