"""What a video model does to its clips before the image layers: pixel scaling and frame differences.

Data sources yield raw pixels in [0, 255] (docs/CONTRACTS.md); models own their preprocessing.
"""

from __future__ import annotations

import keras
from keras import ops

# keras.applications' caffe preprocessing: ImageNet mean of the B, G, R channels.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
PREPROCESSING_MODES = ("unit", "tf", "caffe")


@keras.saving.register_keras_serializable(package="delta_keras")
class ImagePreprocessing(keras.layers.Layer):
    """Maps raw RGB pixels in [0, 255] to a backbone's input range, as `keras.applications` does.

    Args:
        mode: ``"unit"``: ``x / 255`` (any number of channels); ``"tf"``: ``x / 127.5 - 1`` (MobileNet,
            MobileNetV2); ``"caffe"``: RGB -> BGR, then the ImageNet channel mean subtracted (ResNet50;
            3 channels).
        mean: with ``"caffe"``, another B, G, R mean to subtract (e.g. the one a network was trained with).

    Example:

    >>> import numpy as np
    >>> from delta_keras.layers import ImagePreprocessing
    >>> keras.ops.convert_to_numpy(ImagePreprocessing("tf")(np.full((1, 2, 2, 3), 255.0, "float32")))[0, 0, 0]
    array([1., 1., 1.], dtype=float32)
    """

    def __init__(self, mode: str = "unit", mean: tuple[float, float, float] | None = None, **kwargs):
        super().__init__(**kwargs)
        if mode not in PREPROCESSING_MODES:
            raise ValueError(f"{self.name}: mode must be one of {PREPROCESSING_MODES}, got {mode!r}")
        if mean is not None and (mode != "caffe" or len(mean) != 3):
            raise ValueError(f"{self.name}: mean takes 3 values (B, G, R) and only with mode 'caffe', got {mean!r}")
        self.mode = mode
        self.mean = None if mean is None else tuple(float(v) for v in mean)

    def build(self, input_shape):
        if self.mode == "caffe" and input_shape[-1] != 3:
            raise ValueError(f"{self.name}: mode 'caffe' needs 3 (RGB) channels, got input shape {tuple(input_shape)}")

    def call(self, inputs):
        if self.mode == "unit":
            return inputs / 255.0
        if self.mode == "tf":
            return inputs / 127.5 - 1.0
        return ops.flip(inputs, axis=-1) - ops.convert_to_tensor(self.mean or _CAFFE_MEAN_BGR, self.compute_dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode, "mean": self.mean}


@keras.saving.register_keras_serializable(package="delta_keras")
class FrameDifference(keras.layers.Layer):
    """Appends to every frame its change since the previous frame: ``(B, T, ..., C)`` -> ``(B, T, ..., 2C)``.

    Gives a per-frame image model the motion it cannot see in a single frame (a moving object leaves a
    signed pair of edges whose order tells the direction). Frame 0 gets a zero difference, so a
    streaming engine needs only the previous frame.

    Example:

    >>> import numpy as np
    >>> from delta_keras.layers import FrameDifference
    >>> tuple(FrameDifference()(np.zeros((2, 4, 8, 8, 3), "float32")).shape)
    (2, 4, 8, 8, 6)
    """

    def call(self, inputs):
        previous = ops.concatenate([inputs[:, :1], inputs[:, :-1]], axis=1)
        return ops.concatenate([inputs, inputs - previous], axis=-1)
