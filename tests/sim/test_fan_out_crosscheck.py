"""The graph fan-outs that weigh the sparsity loss agree with the simulator's exact dense counts."""

import keras
import numpy as np

from delta_keras import SparsityLayer, sparsify
from delta_keras.sim import count_macs


def test_fan_out_times_neurons_equals_the_dense_macs_each_sparsity_layer_feeds():
    # "same" padding and sizes divisible by the strides: every output element feeds exactly fan_out MACs.
    image = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(image)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="dw_relu")(x)
    x = keras.layers.Conv2D(6, 1, activation="relu", name="pw")(x)
    x = keras.layers.Conv2D(5, 3, strides=2, padding="same", name="c3")(x)
    logits = keras.layers.Dense(4, name="head")(keras.layers.Flatten()(x))
    clip_model = sparsify(keras.Model(image, logits), frames=2, step_init=1e-3)

    clips = np.random.default_rng(0).uniform(0, 1, (1, 2, 8, 8, 3)).astype("float32")
    report = count_macs(clip_model, clips, policies=("dense",))
    dense_per_frame = {layer.name: int(layer.macs("dense")[0]) for layer in report.layers}
    predicted = sorted(
        layer.fan_out * layer.statistics()["neurons_per_frame"]
        for layer in clip_model.layers
        if isinstance(layer, SparsityLayer)
    )
    # c1 reads the input and head reads c3 (no activation): the three MAC layers fed by sparsity layers.
    assert predicted == sorted(dense_per_frame[name] for name in ("dw", "pw", "c3"))
    assert predicted == [768, 1080, 1152]  # hand-checked: 16*6*8, 4*5*9*6, 16*8*9
