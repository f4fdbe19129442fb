"""The layer under tf.distribute: two logical CPU devices, in a fresh process (devices are set at start-up)."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from delta_keras import DeltaActivation

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        clips = keras.Input((4, 6))
        layer = DeltaActivation(step_init=0.1, sparsity_weight=1e-2)
        model = keras.Model(clips, keras.layers.Dense(2)(layer(clips)))
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(16, 4, 6)).astype("float32")
    y = np.zeros((16, 4), "int32")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    stats = layer.statistics()
    # 2 steps of 8 samples split over 2 replicas: the counts of both replicas are summed.
    assert abs(stats["neurons_per_frame"] - 6) < 1e-6, stats
    assert int(layer.training_step.numpy()) == 2, layer.training_step.numpy()
    assert np.isfinite(model.predict(x, verbose=0)).all()
    print("OK", stats)
    """
)


import pytest


@pytest.mark.parametrize("memory", [False, True])
def test_mirrored_strategy_on_two_cpu_devices(memory):
    script = SCRIPT.replace("DeltaActivation(step_init=0.1,", f"DeltaActivation(step_init=0.1, memory={memory},")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout
