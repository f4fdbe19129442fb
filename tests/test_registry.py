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


@keras.saving.register_keras_serializable(package="tests")
class ClipMean(keras.layers.Layer):
    """A custom layer averaging a clip over time."""

    def call(self, x):
        return ops.mean(x, axis=1)


def _register():
    from delta_keras.frames import geometry

    registry.register_layer(Swish, "nonlinear", activation=True)
    registry.register_layer(ClipMean, "affine", time_mean=True)
    registry.register_layer(PixelMix, "mac", fan_out=lambda layer: float(layer.units), last_axis=True,
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
    assert registry.counts_as_activation(clip_model.get_layer("swish"))

    # A custom time mean: the engine and the runtime keep a running mean; the runtime runs the custom MAC
    # layer densely (it has no runtime kernel) and the convolutions with its sparse kernel.
    from delta_keras.runtime import DeltaRuntime

    averaged = keras.Model(clip_model.input, ClipMean(name="clip_mean")(clip_model.output))
    expected = ops.convert_to_numpy(averaged(clips))
    for streaming in (sim.DeltaInference(averaged), DeltaRuntime(averaged, batch_size=2, min_fan_out=0)):
        outputs = [np.asarray(streaming.step(clips[:, t])) for t in range(clips.shape[1])]
        # A running mean: after the last frame, the clip's mean (after the first, the first frame's output).
        np.testing.assert_allclose(outputs[-1], expected, atol=1e-3)
        assert not np.allclose(outputs[0], expected, atol=1e-3)


def test_a_custom_last_axis_layer_on_a_clip_is_counted_frame_by_frame():
    from delta_keras import sim

    _register()
    clips = keras.Input((None, 5))  # (samples, frames, features): the layer maps the features of each frame
    model = keras.Model(clips, PixelMix(3, name="mix")(clips))
    still = np.repeat(np.random.default_rng(0).normal(size=(2, 1, 5)).astype("float32"), 4, axis=1)
    mix = sim.count_macs(model, still).layers[0]
    # Frame by frame: every frame costs 5 x 3 dense MACs, and after frame 0 nothing changes.
    assert mix.macs("dense").tolist() == [15 * 2] * 4
    assert mix.macs("zero_delta").tolist() == [15 * 2, 0, 0, 0]


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
    with pytest.raises(ValueError, match="Einsum is not registered yet"):
        registry.register_operation("Einsum", time_mean=True)


def test_keras_operations_are_known_by_name_and_layers_by_class():
    from delta_keras.models import graph

    clips = keras.Input((3, 4, 5))
    for axis, over_time in ((1, True), (2, False)):
        model = keras.Model(clips, ops.mean(clips, axis=axis))
        means = [node.operation for node in graph.layer_calls(model) if type(node.operation).__name__ == "Mean"]
        assert len(means) == 1 and registry.layer_kind(means[0]).role == "affine"
        assert registry.is_operation(means[0]) and not registry.is_operation(keras.layers.ReLU())
        assert registry.averages_over_time(means[0]) == over_time
    assert registry.layer_kind(keras.layers.Dense).runtime_kernel == "gathered_dense"
    assert registry.layer_kind(keras.layers.LSTM(2)).recurrent
    assert registry.averages_over_time(keras.layers.GlobalAveragePooling1D())
    assert not registry.averages_over_time(keras.layers.GlobalAveragePooling2D())
    assert registry.counts_as_activation(keras.layers.Softmax()) and not registry.is_activation(keras.layers.Softmax())
