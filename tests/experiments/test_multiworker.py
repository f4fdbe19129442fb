"""--strategy multiworker: two worker processes on localhost train in lockstep."""

import pytest
import json
import socket
import subprocess
import sys

import keras
import numpy as np
from conftest import REPO, TINY_FLAGS

import delta_keras  # noqa: F401 (registers the custom layers the checkpoints hold)

pytestmark = pytest.mark.slow  # many seconds each: `make quick` leaves them out


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_finish_with_the_same_weights(tmp_path, script_env):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    command = [sys.executable, str(REPO / "experiments" / "ucf101_train.py"), *TINY_FLAGS, "--epochs", "1",
               "--sparsity", "delta", "--strategy", "multiworker", "--logdir", str(tmp_path)]
    workers = []
    try:
        for index in range(2):
            env = {**script_env, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
            workers.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        outputs = [worker.communicate(timeout=240)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait(timeout=30)
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]

    chief = keras.models.load_model(tmp_path / "checkpoints" / "epoch-0001.keras")
    other = keras.models.load_model(tmp_path / "workers" / "1" / "checkpoints" / "epoch-0001.keras")
    assert int(chief.optimizer.iterations.numpy()) == 2 == int(other.optimizer.iterations.numpy())
    for mine, theirs in zip(chief.trainable_weights, other.trainable_weights):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7, err_msg=mine.path)
    assert (tmp_path / "results.json").is_file() and not (tmp_path / "workers" / "1" / "results.json").exists()
