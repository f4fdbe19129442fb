"""Small clip models and a brute-force MAC reference shared by the simulator tests."""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np

from delta_keras import DeltaActivation


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> int:
    """Leading padding of "same" (TensorFlow convention: the extra pixel goes at the end)."""
    out = math.ceil(size / stride)
    return max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0) // 2


def block_mask(mask: np.ndarray, channels: int, tile: tuple[int, int]) -> np.ndarray:
    """A (H, W, C) mask with each nonzero spread over its tile x channels block, by explicit loops."""
    out = np.zeros_like(mask)
    h, w, c = mask.shape
    for i, j, k in itertools.product(range(0, h, tile[0]), range(0, w, tile[1]), range(0, c, channels)):
        block = (slice(i, i + tile[0]), slice(j, j + tile[1]), slice(k, k + channels))
        out[block] = mask[block].any()
    return out


def reference_conv_macs(mask, kernel_nz, strides, dilation, padding, count_padding=False) -> int:
    """MACs of a 2D convolution or depthwise convolution on one (H, W, C) frame, looping over outputs and taps.

    A MAC is charged when its input entry (``mask``) and its weight (``kernel_nz``: (kh, kw, C_in, C_out) or
    (kh, kw, C, multiplier)) are both nonzero. Taps in the padding are zeros unless ``count_padding``.
    """
    h, w, _ = mask.shape
    kh, kw = kernel_nz.shape[:2]
    if padding == "same":
        oh, ow = math.ceil(h / strides), math.ceil(w / strides)
        top, left = same_padding(h, kh, strides, dilation), same_padding(w, kw, strides, dilation)
    else:
        oh, ow = (h - (kh - 1) * dilation - 1) // strides + 1, (w - (kw - 1) * dilation - 1) // strides + 1
        top = left = 0
    total = 0
    for y, x, i, j in itertools.product(range(oh), range(ow), range(kh), range(kw)):
        r, c = y * strides - top + i * dilation, x * strides - left + j * dilation
        inside = 0 <= r < h and 0 <= c < w
        if inside or count_padding:
            entries = mask[r, c] if inside else np.ones(mask.shape[-1], bool)
            total += int(entries.astype(int) @ kernel_nz[i, j].astype(int).sum(axis=1))
    return total


def random_sparse(shape, zero_fraction: float, rng) -> np.ndarray:
    values = rng.normal(size=shape).astype("float32")
    return np.where(rng.random(shape) < zero_fraction, 0.0, values).astype("float32")


def mobilenet_like(frames: int, size: int = 16, step: float = 0.05, folded: bool = True) -> keras.Model:
    """A tiny MobileNet-like clip model: conv, depthwise-separable blocks with ReLU6 and DeltaActivation,
    time folded into batch (or TimeDistributed), a per-frame softmax head averaged over time."""
    clips = keras.Input((frames, size, size, 3))
    td = (lambda layer: layer) if folded else keras.layers.TimeDistributed
    x = keras.layers.TimeDistributed(keras.layers.Rescaling(1 / 127.5, -1))(clips)
    if folded:
        x = keras.ops.reshape(x, (-1, size, size, 3))

    def delta(x):
        if folded:
            x = keras.ops.reshape(x, (-1, frames, *x.shape[1:]))
        x = DeltaActivation(step)(x)
        return keras.ops.reshape(x, (-1, *x.shape[2:])) if folded else x

    x = td(keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False))(x)
    x = td(keras.layers.BatchNormalization())(x)
    x = delta(td(keras.layers.ReLU(6.0))(x))
    for filters, stride in ((16, 1), (16, 2)):
        x = td(keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False))(x)
        x = td(keras.layers.BatchNormalization())(x)
        x = delta(td(keras.layers.ReLU(6.0))(x))
        x = td(keras.layers.Conv2D(filters, 1, use_bias=False))(x)
        x = td(keras.layers.BatchNormalization())(x)
        x = delta(td(keras.layers.ReLU(6.0))(x))
    x = td(keras.layers.GlobalAveragePooling2D())(x)
    x = td(keras.layers.Dense(5, activation="softmax"))(x)
    if folded:
        x = keras.ops.reshape(x, (-1, frames, 5))
    return keras.Model(clips, keras.layers.GlobalAveragePooling1D()(x), name="mobilenet_like")


def resnet_like(frames: int, size: int = 16, step: float = 0.05) -> keras.Model:
    """A tiny ResNet-like clip model with TimeDistributed layers: bottleneck blocks with residual adds,
    max pooling, DeltaActivation after every activation, per-frame logits."""
    td = keras.layers.TimeDistributed
    clips = keras.Input((frames, size, size, 3))
    x = DeltaActivation(8.0)(clips)
    x = td(keras.layers.Conv2D(8, 3, padding="same"))(x)
    x = td(keras.layers.BatchNormalization())(x)
    x = DeltaActivation(step)(keras.layers.Activation("relu")(x))
    x = td(keras.layers.MaxPooling2D(2))(x)
    for _ in range(2):
        y = td(keras.layers.Conv2D(4, 1, activation="relu"))(x)
        y = DeltaActivation(step)(y)
        y = td(keras.layers.Conv2D(4, 3, padding="same", dilation_rate=2))(y)
        y = DeltaActivation(step)(td(keras.layers.ReLU())(y))
        y = td(keras.layers.Conv2D(8, 1))(y)
        y = td(keras.layers.BatchNormalization())(y)
        x = DeltaActivation(step)(keras.layers.ReLU()(keras.layers.Add()([x, y])))
    x = td(keras.layers.AveragePooling2D(2))(x)
    # A step incommensurate with the pooled levels: averages of quantised values would sit exactly on
    # rounding ties, where float rounding of the accumulated state decides.
    x = DeltaActivation(step * 0.743)(td(keras.layers.Flatten())(x))
    return keras.Model(clips, keras.layers.Dense(6)(x), name="resnet_like")


def resnet_image_model(size: int = 16, classes: int = 5) -> keras.Model:
    """A small ResNet-like image model (H, W, 3) for `sparsify`: a stem with a fused ReLU, max pooling,
    an identity and a strided projection block with residual adds, global pooling and logits."""
    images = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(images)
    x = keras.layers.MaxPooling2D(2)(x)
    for i, (filters, stride) in enumerate(((8, 1), (16, 2))):
        y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"block{i}_conv1")(x)
        y = keras.layers.ReLU()(keras.layers.BatchNormalization()(y))
        y = keras.layers.BatchNormalization()(keras.layers.Conv2D(filters, 3, padding="same", name=f"block{i}_conv2")(y))
        if stride > 1:
            x = keras.layers.Conv2D(filters, 1, strides=stride, name=f"block{i}_shortcut")(x)
        x = keras.layers.ReLU()(keras.layers.Add()([x, y]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(images, keras.layers.Dense(classes, name="logits")(x), name="resnet_image")


def randomize_batch_norm(model: keras.Model, rng) -> None:
    """Gives batch normalisation non-trivial statistics, so it is a real affine map."""
    for weight in model.weights:
        if "moving_variance" in weight.path or "gamma" in weight.path:
            weight.assign(rng.uniform(0.5, 1.5, weight.shape))
        elif "moving_mean" in weight.path or "beta" in weight.path:
            weight.assign(rng.normal(0, 0.2, weight.shape))


def smooth_clips(samples: int, frames: int, size: int, rng) -> np.ndarray:
    """Clips whose frames change a little and partly not at all, like video (pixel values in [0, 255])."""
    first = rng.uniform(0, 255, (samples, 1, size, size, 3))
    steps = rng.normal(0, 20, (samples, frames - 1, size, size, 3)) * (rng.random((samples, frames - 1, size, 1, 1)) < 0.3)
    return np.clip(np.concatenate([first, first + np.cumsum(steps, axis=1)], axis=1), 0, 255).astype("float32")
