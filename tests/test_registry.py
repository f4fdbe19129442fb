"""One registry of layer kinds: a custom layer registered once is handled by sparsify, the fan-out walk,
count_macs and the delta-inference engine."""

import keras
import numpy as np
import pytest
from keras import ops

from delta_keras import DeltaActivation, registry, sparsify
from delta_keras.models import graph_fan_outs, layer_fan_out


@keras.saving.register_keras_serializable(package="tests")
class Swish(keras.layers.Layer):
    """A custom activation layer."""

    def call(self, x):
        return x * ops.sigmoid(x)


@keras.saving.register_keras_serializable(package="tests")
class PixelMix(keras.layers.Layer):
    """A custom MAC layer: a per-pixel channel mix (a 1x1 convolution written by hand)."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")

    def call(self, x):
        return ops.matmul(x, self.kernel)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _register():
    from delta_keras.sim import geometry

    registry.register_layer(Swish, "nonlinear", activation=True)
    registry.register_layer(PixelMix, "mac", fan_out=lambda layer: float(layer.units),
                            stages=lambda layer, frame_shape: [geometry.Stage(
                                "", np.asarray(ops.convert_to_numpy(layer.kernel)), ops.matmul, frame_shape)])


def _image_model():
    images = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(images)
    x = Swish(name="swish")(x)
    x = PixelMix(6, name="mix")(x)
    x = keras.layers.ReLU(name="relu")(x)
    return keras.Model(images, keras.layers.Conv2D(2, 1, name="head")(x))


def test_a_custom_layer_registered_once_is_handled_everywhere():
    from delta_keras import sim

    _register()
    image_model = _image_model()
    assert layer_fan_out(image_model.get_layer("mix")) == 6.0
    assert graph_fan_outs(image_model)["swish"] == 6.0  # the walk reaches the custom MAC layer
    clip_model = sparsify(image_model, frames=4, step_init=0.05)
    deltas = {layer.name for layer in clip_model.layers if isinstance(layer, DeltaActivation)}
    assert deltas == {"swish_delta", "relu_delta"}  # a sparsity layer after the custom activation
    assert clip_model.get_layer("swish_delta").fan_out == 6.0

    clips = np.random.default_rng(0).uniform(-1, 1, (2, 4, 8, 8, 3)).astype("float32")
    clips[:, 2:] = clips[:, 1:2]  # still frames: deltas vanish
    report = sim.count_macs(clip_model, clips)
    assert "mix" in [layer.name for layer in report.layers] and not report.uncounted
    engine = sim.DeltaInference(clip_model)
    outputs = engine.run(clips)
    np.testing.assert_allclose(outputs, ops.convert_to_numpy(clip_model(clips)), atol=1e-4)
    assert engine.macs == {layer.name: layer.macs("zero_delta").tolist() for layer in report.layers}


def test_unknown_and_bad_registrations_say_what_to_do():
    class Unknown(keras.layers.Layer):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="give its role"):
        registry.register_layer(Unknown, activation=True)
    with pytest.raises(ValueError, match="role must be one of"):
        registry.register_layer(Unknown, "magic")
    with pytest.raises(ValueError, match="needs fan_out"):
        registry.register_layer(Unknown, "mac")
    assert registry.layer_kind(Unknown()) is None
    images = keras.Input((4, 4, 1))
    model = keras.Model(images, keras.layers.Conv2D(1, 1)(Unknown()(keras.layers.ReLU()(images))))
    with pytest.warns(UserWarning, match="register_layer"):
        graph_fan_outs(model)
