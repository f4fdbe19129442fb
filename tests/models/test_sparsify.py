import keras
import numpy as np
import pytest

import delta_keras
from delta_keras import ActivitySparsity, DeltaActivation, sparsify, strip_sparsity
from delta_keras.layers import FoldTime, Quantize, UnfoldTime

L = keras.layers
TINY_STEP = dict(step_init=1e-6, min_step=1e-6)  # quantisation below float32 noise at these scales


def sparsity_layers(model):
    return [layer for layer in model.layers if isinstance(layer, delta_keras.SparsityLayer)]


def inbound_layer(model, layer_name, hops=1):
    """The layer ``hops`` steps upstream of ``layer_name`` (first input each time)."""
    layer = model.get_layer(layer_name)
    for _ in range(hops):
        layer = layer._inbound_nodes[0].input_tensors[0]._keras_history.operation
    return layer


@pytest.mark.parametrize(
    "build, activation_type, count",
    [
        # 27 ReLU6: after the stem and after each depthwise and pointwise conv of the 13 blocks.
        (lambda: keras.applications.MobileNet(weights=None), L.ReLU, 27),
        # Stem, block 0's depthwise, expand + depthwise of blocks 1-16, the last 1x1 conv: 35 ReLU6.
        (lambda: keras.applications.MobileNetV2(weights=None), L.ReLU, 35),
        # Stem + 3 per bottleneck block x 16 blocks; the softmax classifier gets none.
        (lambda: keras.applications.ResNet50(weights=None), L.Activation, 49),
    ],
    ids=["mobilenet", "mobilenet_v2", "resnet50"],
)
def test_one_layer_after_each_activation_of_keras_applications(build, activation_type, count):
    image_model = build()
    clip_model = sparsify(image_model, frames=2)
    inserted = sparsity_layers(clip_model)
    activations = [l for l in image_model.layers if isinstance(l, activation_type) and l.name != "predictions"]
    assert len(inserted) == len(activations) == count
    for activation in activations:
        # activation -> unfold -> delta -> fold: the sparsity layer sees the activation on clips.
        assert inbound_layer(clip_model, f"{activation.name}_delta", 2).name == activation.name
        assert isinstance(inbound_layer(clip_model, f"{activation.name}_delta"), UnfoldTime)
    # Every MAC layer is still there, with the original name and weights, on time-folded tensors.
    for layer in image_model.layers:
        if isinstance(layer, (L.Conv2D, L.DepthwiseConv2D, L.Dense)):
            copy = clip_model.get_layer(layer.name)
            assert type(copy) is type(layer) and copy is not layer
            assert copy.input.shape[0] is None and copy.input.shape[1:] == layer.input.shape[1:]
            np.testing.assert_array_equal(copy.get_weights()[0], layer.get_weights()[0])


def test_per_frame_outputs_equal_the_image_model_with_a_tiny_step(branchy, random_clips):
    clip_model = sparsify(branchy, frames=3, sparsity_weight=1e-3, **TINY_STEP)
    clips = random_clips((2, 3, 16, 16, 3), high=4.0)
    expected = branchy.predict(clips.reshape(6, 16, 16, 3), verbose=0).reshape(2, 3, 3)
    np.testing.assert_allclose(clip_model.predict(clips, verbose=0), expected, atol=1e-5)
    assert len(clip_model.losses) == 4  # c1 (split), dw_relu, add_relu, d1 (split); not the softmax
    # Fused activations are split: the conv stays linear, the sparsity layer sees relu(conv).
    assert clip_model.get_layer("c1").activation is keras.activations.linear
    assert clip_model.get_layer("c1_activation").activation is keras.activations.relu
    assert branchy.get_layer("c1").activation is keras.activations.relu  # the original is untouched


def test_any_number_of_frames_and_include_input(branchy, random_clips):
    clip_model = sparsify(branchy, method="l1", include_input=True, sparsity_weight=1e-3)
    assert clip_model.input.shape == (None, None, 16, 16, 3)
    assert clip_model.get_layer("image_l1").fan_out == 18.0
    assert len(sparsity_layers(clip_model)) == 5
    for frames in (1, 4):
        clips = random_clips((2, frames, 16, 16, 3))
        expected = branchy.predict(clips.reshape(-1, 16, 16, 3), verbose=0)
        np.testing.assert_allclose(clip_model.predict(clips, verbose=0).reshape(-1, 3), expected, atol=1e-5)


def test_include_input_with_arguments_of_its_own(branchy):
    clip_model = sparsify(branchy, include_input={"step_init": 16.0}, step_init=0.5)
    steps = {layer.name: float(np.max(layer.step)) for layer in sparsity_layers(clip_model)}
    assert steps.pop("image_delta") == 16.0
    assert set(steps.values()) == {0.5}


def test_trains_with_dynamic_frames(branchy, random_clips):
    clip_model = sparsify(branchy, step_init=0.1, sparsity_weight=1e-2)
    outputs = keras.layers.GlobalAveragePooling1D()(clip_model.output)
    model = keras.Model(clip_model.input, outputs)
    model.compile("sgd", "sparse_categorical_crossentropy")
    for frames in (2, 3):
        loss = model.train_on_batch(random_clips((2, frames, 16, 16, 3)), np.array([0, 2]))
        assert np.isfinite(loss)


def test_where_selects_blocks_and_layer_kwargs_reach_every_layer(branchy):
    clip_model = sparsify(
        branchy, where=lambda layer: "relu" in layer.name, step_init=0.3, granularity="layer", sparsity_weight=0.01
    )
    inserted = sparsity_layers(clip_model)
    assert sorted(layer.name for layer in inserted) == ["add_relu_delta", "dw_relu_delta"]
    assert all(l.step_init == 0.3 and l.granularity == "layer" for l in inserted)
    assert [l.sparsity_weight for l in inserted] == pytest.approx([0.01, 0.01])
    assert clip_model.get_layer("c1").activation is keras.activations.relu  # not split when not selected


def test_nested_and_sequential_models_are_inlined():
    base = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(4, 3, name="conv"), L.ReLU(name="relu")], name="base")
    images = keras.Input((8, 8, 1))
    model = keras.Model(images, L.Dense(2, name="head")(L.GlobalAveragePooling2D()(base(images))))
    clip_model = sparsify(model, frames=2)
    assert not any(isinstance(layer, keras.Model) for layer in clip_model.layers)
    assert clip_model.get_layer("relu_delta").fan_out == 2.0
    assert not sparsity_layers(sparsify(base))  # its ReLU is the output: it feeds no MAC
    assert len(sparsity_layers(sparsify(base, where=lambda layer: True))) == 1


def test_strip_sparsity_keeps_outputs_and_removes_losses(branchy, random_clips):
    clip_model = sparsify(branchy, frames=3, step_init=0.5, sparsity_weight=1e-2)
    clips = random_clips((2, 3, 16, 16, 3), high=4.0)
    clip_model(clips)  # a batch of statistics that must not travel
    stripped = strip_sparsity(clip_model)
    assert not sparsity_layers(stripped) and not stripped.losses
    quantizers = [layer for layer in stripped.layers if isinstance(layer, Quantize)]
    assert [q.name for q in quantizers] == [l.name for l in sparsity_layers(clip_model)]
    np.testing.assert_array_equal(stripped.predict(clips, verbose=0), clip_model.predict(clips, verbose=0))
    l1_model = sparsify(branchy, method="l1", sparsity_weight=1e-2)
    stripped = strip_sparsity(l1_model)
    assert not [l for l in stripped.layers if isinstance(l, (ActivitySparsity, Quantize))]
    np.testing.assert_allclose(stripped.predict(clips, verbose=0), l1_model.predict(clips, verbose=0), atol=1e-6)


def test_strip_sparsity_clones_sequential_and_nested_models_with_copied_weights(random_clips):
    # Through keras.models.clone_model: a Sequential clip model with a nested image model stays that shape,
    # and the deployed copy owns its weights (training the original later does not change it).
    image = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(2, 3, name="conv")], name="image")
    model = keras.Sequential([keras.Input((3, 8, 8, 1)), L.TimeDistributed(image, name="frames"),
                              DeltaActivation(step_init=0.25, name="delta"), ActivitySparsity(name="l1")])
    clips = random_clips((1, 3, 8, 8, 1))
    stripped = strip_sparsity(model)
    assert isinstance(stripped, keras.Sequential)
    assert [type(layer).__name__ for layer in stripped.layers] == ["TimeDistributed", "Quantize", "Identity"]
    np.testing.assert_array_equal(stripped.predict(clips, verbose=0), model.predict(clips, verbose=0))
    conv = image.get_layer("conv")
    conv.kernel.assign(conv.kernel + 1.0)
    assert not np.array_equal(stripped.predict(clips, verbose=0), model.predict(clips, verbose=0))


def test_strip_sparsity_refuses_delta_outputs():
    inputs = keras.Input((3, 4))
    model = keras.Model(inputs, DeltaActivation(output="delta")(inputs))
    with pytest.raises(ValueError, match="output='quantized'"):
        strip_sparsity(model)


def test_mixed_precision(branchy, random_clips):
    keras.config.set_dtype_policy("mixed_float16")
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, L.Dense(2)(L.GlobalAveragePooling2D()(L.Conv2D(4, 3, activation="relu")(inputs))))
    clip_model = sparsify(model, frames=2, step_init=0.1)
    assert clip_model.get_layer(model.layers[1].name).compute_dtype == "float16"
    outputs = clip_model(random_clips((1, 2, 16, 16, 3)))
    assert outputs.dtype == "float16" and np.isfinite(keras.ops.convert_to_numpy(outputs)).all()


def test_clear_errors(branchy):
    with pytest.raises(ValueError, match=r"one input of shape \(height, width, channels\)"):
        sparsify(keras.Sequential([keras.Input((10,)), L.Dense(2, activation="relu")]))
    with pytest.raises(ValueError, match="build it with an input"):
        sparsify(keras.Sequential([L.Dense(2)]))
    with pytest.raises(ValueError, match="method must be one of"):
        sparsify(branchy, method="l0")
    with pytest.raises(TypeError, match="set from the graph"):
        sparsify(branchy, fan_out=3.0)
    with pytest.raises(TypeError, match="subclassed"):
        sparsify(keras.Model())
    with pytest.raises(ValueError, match="frames"):
        sparsify(branchy, frames=0)


def test_time_folding_is_row_major(random_clips):
    clips = random_clips((2, 3, 4, 4, 1))
    folded = FoldTime()(clips)
    np.testing.assert_array_equal(folded, clips.reshape(6, 4, 4, 1))
    np.testing.assert_array_equal(UnfoldTime()([folded, clips]), clips)


def test_frozen_layers_stay_frozen():
    """Keras 3 freezes a nested model with ``trainable = False`` (an explicit ``training=False`` on its call
    is overridden by the outer training flag, in Keras as here); sparsify keeps the flag on every copy."""
    base = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="c"), keras.layers.BatchNormalization(name="bn"),
         keras.layers.ReLU(name="r")],
        name="base",
    )
    base.trainable = False
    images = keras.Input((8, 8, 3))
    logits = keras.layers.Dense(2, name="d")(keras.layers.Flatten()(base(images)))
    clip_model = sparsify(keras.Model(images, logits), frames=2, step_init=0.1)
    assert not clip_model.get_layer("c").trainable and not clip_model.get_layer("bn").trainable
    frozen = [w.numpy().copy() for w in clip_model.get_layer("bn").weights + clip_model.get_layer("c").weights]
    clip_model.compile("sgd", "mse")
    clips = np.random.default_rng(0).uniform(size=(4, 2, 8, 8, 3)).astype("float32")
    clip_model.fit(clips, np.ones((4, 2, 2), "float32"), epochs=1, verbose=0)
    after = [w.numpy() for w in clip_model.get_layer("bn").weights + clip_model.get_layer("c").weights]
    for before, now in zip(frozen, after):
        np.testing.assert_array_equal(before, now)  # no update, and BN's moving statistics untouched


def _conv_stack(widths, name):
    inputs = keras.Input((12, 12, 3))
    x = inputs
    for index, width in enumerate(widths):
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"{name}{index}")(x)
    return keras.Model(inputs, keras.layers.Conv2D(2, 1, name=f"{name}_out")(x))


def _total_loss(image_model, clips, normalization):
    clip_model = sparsify(image_model, frames=clips.shape[1], step_init=0.1, sparsity_weight=1.0,
                          normalization=normalization)
    clip_model(clips)
    return float(sum(keras.ops.convert_to_numpy(loss) for loss in clip_model.losses)), clip_model


def test_dense_macs_normalization_prices_the_share_of_the_models_macs():
    clips = np.random.default_rng(1).uniform(0, 1, (2, 4, 12, 12, 3)).astype("float32")
    small, large = _conv_stack([4, 4], "s"), _conv_stack([64, 64, 64, 64], "l")
    assert delta_keras.models.dense_macs(small) == 12 * 12 * (3 * 4 * 9 + 4 * 4 * 9 + 4 * 2)
    # "frame": the loss grows with the network (fan-outs of 576 vs 36); "dense_macs": a share of its MACs.
    per_frame = _total_loss(large, clips, "frame")[0] / _total_loss(small, clips, "frame")[0]
    (small_share, small_model), (large_share, _) = (_total_loss(m, clips, "dense_macs") for m in (small, large))
    assert per_frame > 50 and 0.2 < large_share / small_share < 5
    # Exactly: the sum over layers of fan_out * neurons * mean|levels crossed| / the model's dense MACs.
    deltas = [layer for layer in small_model.layers if isinstance(layer, DeltaActivation)]
    assert deltas and all(layer.dense_macs == delta_keras.models.dense_macs(small) for layer in deltas)
    expected = 0.0
    for layer, values in zip(deltas, keras.Model(small_model.input, [layer.input for layer in deltas])(clips)):
        levels = np.round(keras.ops.convert_to_numpy(values) / 0.1)
        expected += layer.fan_out * np.prod(levels.shape[2:]) * np.abs(np.diff(levels, axis=1)).mean() / layer.dense_macs
    np.testing.assert_allclose(small_share, expected, rtol=1e-4)
    assert small_share < 1.5  # a share of the dense MACs (L1 of levels bounds the nonzero share from above)


def test_dense_macs_cannot_be_passed_and_is_required_by_the_layer(branchy):
    with pytest.raises(TypeError, match="dense_macs are set from the graph"):
        sparsify(branchy, dense_macs=10.0)
    with pytest.raises(ValueError, match="needs dense_macs > 0"):
        DeltaActivation(normalization="dense_macs")
