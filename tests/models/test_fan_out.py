import keras
import pytest

from delta_keras.models import graph_fan_outs, layer_fan_out, sparsify

L = keras.layers


@pytest.mark.parametrize(
    "layer, expected",
    [
        (L.Conv2D(64, 3), 64 * 9),
        (L.Conv2D(64, 3, strides=2), 64 * 9 / 4),
        (L.Conv2D(64, (1, 7), strides=(1, 2)), 64 * 7 / 2),
        (L.Conv2D(64, 3, groups=4), 16 * 9),
        (L.Conv1D(8, 5, strides=5), 8.0),
        (L.DepthwiseConv2D(3), 9),
        (L.DepthwiseConv2D(3, strides=2, depth_multiplier=2), 2 * 9 / 4),
        (L.SeparableConv2D(128, 5, strides=2), 25 / 4),  # the depthwise part
        (L.Conv2DTranspose(4, 3, strides=2), 4 * 9),
        (L.Dense(1000), 1000),
        (L.ReLU(), None),
        (L.AveragePooling2D(2), None),
        (L.TimeDistributed(L.Conv2D(16, 3, strides=2)), 16 * 9 / 4),  # a frame's element: that frame's MACs
        (L.TimeDistributed(L.ReLU()), None),
    ],
)
def test_layer_fan_out_by_hand(layer, expected):
    assert layer_fan_out(layer) == expected


def test_graph_fan_outs_by_hand_through_bn_add_pooling_concatenate_flatten_dropout(branchy):
    stops = {"c1", "dw_relu", "add_relu", "d1"}
    fan_outs = graph_fan_outs(branchy, stop_at=stops)
    assert fan_outs["image"] == 8 * 9 / 4  # strided conv c1
    assert fan_outs["c1"] == 2 * 9 + 16  # through BN into the depthwise conv (x2) and the 1x1 shortcut (16)
    assert fan_outs["dw_relu"] == 16  # 1x1 conv
    # Avg pool 2/2: one pooled output (x1); max pool 3/2: 9/4 outputs; then Concatenate, Flatten, Dense(10).
    assert fan_outs["add_relu"] == 10 * (1 + 9 / 4)
    assert fan_outs["d1"] == 3  # through Dropout into Dense(3)
    assert fan_outs["pw"] == 0  # into Add, then a sparsity boundary: charged there
    assert fan_outs["out"] == 0  # model output
    # Without boundaries, changes flow through activations and Add to the next MAC layers.
    assert graph_fan_outs(branchy)["pw"] == 10 * (1 + 9 / 4)


def test_a_clip_model_of_time_distributed_layers_has_its_image_model_s_fan_outs():
    images, clips = keras.Input((8, 8, 3)), keras.Input((4, 8, 8, 3))
    layers = [L.ReLU(name="relu"), L.AveragePooling2D(2, name="pool"), L.Conv2D(16, 3, name="conv")]
    x, y = images, clips
    for layer in layers:
        x, y = layer(x), L.TimeDistributed(layer, name=layer.name)(y)
    image_model, clip_model = keras.Model(images, x), keras.Model(clips, y)
    on_frames, on_clips = graph_fan_outs(image_model), graph_fan_outs(clip_model)
    assert on_frames["relu"] == 16 * 9  # one pooled output of a 2x2 average, then the 3x3 convolution
    assert {name: on_clips[name] for name in ("relu", "pool", "conv")} == {
        name: on_frames[name] for name in ("relu", "pool", "conv")}
    assert on_clips[clip_model.layers[0].name] == on_frames[image_model.layers[0].name] == 16 * 9


def test_sparsify_sets_fan_out_from_the_graph_and_1_at_the_output(branchy):
    clip_model = sparsify(branchy, where=lambda layer: layer.name != "d1")
    fan_outs = {layer.name: layer.fan_out for layer in clip_model.layers if hasattr(layer, "fan_out")}
    assert fan_outs == {"c1_delta": 34.0, "dw_relu_delta": 16.0, "add_relu_delta": 32.5}
    # The same function on the clip model gives the same values (the simulator's cross-check).
    for name, value in graph_fan_outs(clip_model).items():
        if name in fan_outs:
            assert value == fan_outs[name]
    # An activation at the model's output feeds no MAC: no sparsity layer by default, fan-out 1 if chosen.
    inputs = keras.Input((4, 4, 2))
    image = keras.Model(inputs, L.ReLU(name="r")(L.Conv2D(2, 1)(inputs)))
    assert not [layer for layer in sparsify(image).layers if layer.name == "r_delta"]
    assert sparsify(image, where=lambda layer: True).get_layer("r_delta").fan_out == 1.0


def test_resizing_spreads_each_input_over_its_taps():
    inputs = keras.Input((4, 6, 3))
    x = L.ReLU(name="r")(inputs)
    x = L.Resizing(8, 12, interpolation="bilinear", name="up")(x)
    x = L.Conv2D(5, 1, name="conv")(x)
    # Each input reaches 4 taps x 4 outputs per input, each output feeds 5 MACs.
    assert graph_fan_outs(keras.Model(inputs, x))["r"] == 4 * (8 * 12) / (4 * 6) * 5


def test_mobilenet_fan_outs_at_224():
    clip_model = sparsify(keras.applications.MobileNet(weights=None), frames=2)
    get = lambda name: clip_model.get_layer(f"{name}_delta").fan_out  # noqa: E731
    assert get("conv1_relu") == 9  # into the 3x3 depthwise of block 1
    assert get("conv_dw_1_relu") == 64  # into the 1x1 pointwise conv of 64 filters
    assert get("conv_pw_1_relu") == 9 / 4  # through ZeroPadding into a stride-2 depthwise
    assert get("conv_pw_13_relu") == 1000  # through global pooling, Reshape, Dropout into the 1x1 classifier
