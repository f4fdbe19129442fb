"""Small image models shared by the model tests."""

import keras
import numpy as np
import pytest


def branchy_model() -> keras.Model:
    """A 16x16 image model with a fused activation, BN, a depthwise conv, Add, both poolings, Concatenate,
    Flatten, Dropout and a softmax classifier. Hand-computed fan-outs are in test_fan_out.py."""
    L = keras.layers
    inputs = keras.Input((16, 16, 3), name="image")
    c1 = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c1")(inputs)
    b = L.BatchNormalization(name="bn")(c1)
    dw = L.ReLU(6.0, name="dw_relu")(L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(b))
    add = L.Add(name="add")([L.Conv2D(16, 1, name="pw")(dw), L.Conv2D(16, 1, name="short")(b)])
    add = L.ReLU(name="add_relu")(add)
    pooled = L.Concatenate(name="cat")(
        [L.AveragePooling2D(2, name="avgpool")(add), L.MaxPooling2D(3, strides=2, padding="same", name="maxpool")(add)]
    )
    x = L.Dense(10, activation="relu", name="d1")(L.Flatten(name="flatten")(pooled))
    outputs = L.Dense(3, activation="softmax", name="out")(L.Dropout(0.5, name="drop")(x))
    model = keras.Model(inputs, outputs, name="branchy")
    # Non-trivial BN statistics, so that a BN lost or misplaced in a rebuild changes the outputs.
    bn = model.get_layer("bn")
    bn.moving_mean.assign(np.linspace(-0.5, 0.5, 8).astype("float32"))
    bn.moving_variance.assign(np.linspace(0.5, 2.0, 8).astype("float32"))
    return model


@pytest.fixture
def branchy():
    return branchy_model()


@pytest.fixture
def random_clips():
    """``random_clips(shape, high=1.0)``: uniform float32 values in [0, high)."""
    rng = np.random.default_rng(0)
    return lambda shape, high=1.0: rng.uniform(0.0, high, size=shape).astype("float32")
