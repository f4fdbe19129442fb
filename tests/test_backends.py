"""The backend-neutral core (layers, regularizers, sparsify, SparsityMetrics) trains and round-trips under JAX and
PyTorch.

Each backend runs in a fresh process (Keras fixes its backend at import). JAX is in the [dev] extra;
PyTorch is tested where it is installed (its CPU wheel is large, so it is not a dependency).
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow  # many seconds each: `make quick` leaves them out

SCRIPT = textwrap.dedent(
    """
    import os, sys, tempfile
    import numpy as np
    import delta_keras
    from delta_keras import DeltaActivation, sparsify
    import keras
    assert keras.backend.backend() == sys.argv[1]
    assert "tensorflow" not in sys.modules, "the core imported TensorFlow"
    assert "tensorflow_datasets" not in sys.modules  # (Keras itself imports cv2 when it is installed)
    assert "delta_keras.train" not in sys.modules and "delta_keras.data" not in sys.modules
    from delta_keras.callbacks import SparsityMetrics
    assert "tensorflow" not in sys.modules, "the callbacks module imported TensorFlow"

    # The quantiser's exact LSQ gradient, hand-checked (as tests/layers do under TensorFlow).
    from delta_keras.layers.quantize_ops import quantize
    x = np.array([0.2, 0.7, 1.6], "float32")
    if sys.argv[1] == "jax":
        import jax
        grads = jax.grad(lambda x, q: quantize(x, q)[1].sum(), argnums=(0, 1))(x, np.float32(0.5))
    else:
        import torch
        xt, qt = torch.tensor(x, requires_grad=True), torch.tensor(0.5, requires_grad=True)
        quantize(xt, qt)[1].sum().backward()
        grads = (xt.grad.numpy(), qt.grad.numpy())
    levels = np.round(x / 0.5)
    np.testing.assert_allclose(np.asarray(grads[0]), 1.0)
    np.testing.assert_allclose(float(grads[1]), (levels - x / 0.5).sum() / np.sqrt(3), rtol=1e-5)

    data = np.random.default_rng(0).uniform(0, 1, (16, 4, 8, 8, 3)).astype("float32")
    for memory in (False, True):
        clips = keras.Input((4, 8, 8, 3))
        x = keras.layers.TimeDistributed(keras.layers.Conv2D(4, 3, activation="relu"))(clips)
        layer = DeltaActivation(step_init=0.25, sparsity_weight=1e-3, memory=memory)
        x = keras.layers.GlobalAveragePooling3D()(layer(x))
        model = keras.Model(clips, keras.layers.Dense(3)(x))
        # The step-rate twin of Adam (its steps at 10x the rate) trains and round-trips too.
        model.compile(delta_keras.with_step_rate(keras.optimizers.Adam(), 10.0),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        before = keras.ops.convert_to_numpy(layer.step_variable).copy()
        # Validation clips are still in time: their deltas are all zero, the training clips' are not.
        still = np.repeat(data[:8, :1], 4, axis=1)
        history = model.fit(data, np.arange(16) % 3, epochs=2, batch_size=8, verbose=0,
                            validation_data=(still, np.zeros(8, "int32")), callbacks=[SparsityMetrics()])
        assert np.isfinite(history.history["loss"]).all()
        assert all(0 < value < 1 for value in history.history["delta_density"]), history.history
        assert history.history["val_delta_density"] == [0.0, 0.0], history.history
        metrics = SparsityMetrics(per_layer=True)
        model.evaluate(data, np.arange(16) % 3, verbose=0, callbacks=[metrics])
        assert 0 < metrics.evaluation["delta_density"] < 1, metrics.evaluation
        assert metrics.evaluation[f"{layer.name}/delta_density"] == metrics.evaluation["delta_density"]
        assert not np.array_equal(before, keras.ops.convert_to_numpy(layer.step_variable)), "the step did not learn"
        assert int(keras.ops.convert_to_numpy(layer.training_step)) == 4
        path = os.path.join(tempfile.mkdtemp(), "m.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
        assert type(loaded.optimizer).__name__ == "StepRateAdam" and loaded.optimizer.step_rate == 10.0
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(data)), keras.ops.convert_to_numpy(model(data)))
        assert 0 < layer.statistics()["delta_density"] < 1

    # The paper's step gradient and delta outputs train, and count and output exact zeros on still clips.
    for kwargs in (dict(step_gradient="paper"), dict(output="delta")):
        layer = DeltaActivation(step_init=0.3, sparsity_weight=1e-3, **kwargs)
        clips = keras.Input((4, 8, 8, 3))
        model = keras.Model(clips, keras.layers.GlobalAveragePooling3D()(layer(clips)))
        model.compile("adam", "mse")
        model.fit(data, np.zeros((16, 3), "float32"), epochs=1, batch_size=8, verbose=0)
        layer.reset_statistics()
        sub = keras.Model(clips, layer.output)
        out = keras.ops.convert_to_numpy(sub.predict(still * 3.7, verbose=0))
        assert layer.counts()["nonzero_deltas"] == 0, kwargs
        assert np.count_nonzero(out[:, 1:] if "output" in kwargs else np.diff(out, axis=1)) == 0, kwargs

    image = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="c")])
    for memory in (False, True):
        clip_model = sparsify(image, frames=4, step_init=0.5, sparsity_weight=1e-3, memory=memory)
        out = keras.ops.convert_to_numpy(clip_model(data))
        assert out.shape == (16, 4, 6, 6, 4) and np.isfinite(out).all()
    print("OK")
    """
)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_core_trains_and_round_trips_on_backend(backend, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (pip install {backend}; see README, Backends)")
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", SCRIPT, backend], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0 and "OK" in done.stdout, done.stderr[-3000:]


DOCTESTS = textwrap.dedent(
    """
    import doctest, importlib, sys
    failed = 0
    for name in sys.argv[1:]:
        importlib.import_module(name)
        failed += doctest.testmod(sys.modules[name], optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE).failed
    print("FAILED" if failed else "OK")
    """
)
CORE_MODULES = ["delta_keras.layers.delta_activation", "delta_keras.layers.activity_sparsity",
                "delta_keras.layers.quantize", "delta_keras.layers.preprocessing", "delta_keras.layers.time_folding",
                "delta_keras.regularizers", "delta_keras.optimizers", "delta_keras.registry",
                "delta_keras.models.fan_out", "delta_keras.models.sparsify", "delta_keras.models.video_classifier"]


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_core_docstring_examples_print_the_same_on_backend(backend, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", DOCTESTS, *CORE_MODULES], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("OK"), (done.stdout + done.stderr)[-3000:]

