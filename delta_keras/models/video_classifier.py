"""`video_classifier`: per-frame CNN backbones with optional sparsity layers and a time-averaged head."""

from __future__ import annotations

import os

import keras

from delta_keras.layers import FrameDifference, ImagePreprocessing
from delta_keras.models.sparsify import apply_per_frame

# name -> (keras.applications builder, preprocessing mode, takes alpha)
_APPLICATIONS = {
    "mobilenet": (keras.applications.MobileNet, "tf", True),
    "mobilenet_v2": (keras.applications.MobileNetV2, "tf", True),
    "resnet50": (keras.applications.ResNet50, "caffe", False),
}
BACKBONES = (*_APPLICATIONS, "tiny")
# (filters at alpha 1, stride) of the tiny backbone's conv -> BN -> ReLU blocks.
_TINY_BLOCKS = ((16, 2), (32, 2), (64, 2), (64, 1))


def _tiny_backbone(input_shape: tuple, alpha: float) -> keras.Model:
    inputs = keras.Input(input_shape)
    x = inputs
    for i, (filters, stride) in enumerate(_TINY_BLOCKS):
        x = keras.layers.Conv2D(
            max(1, round(filters * alpha)), 3, strides=stride, padding="same", use_bias=False, name=f"conv{i}"
        )(x)
        # A short memory of batch statistics: the model trains in few steps, and stale moving
        # statistics would make its evaluation lag behind training.
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"conv{i}_bn")(x)
        x = keras.layers.ReLU(name=f"conv{i}_relu")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="avg_pool")(x), name="tiny")


def _backbone(name: str, input_shape: tuple, weights: str | None, alpha: float) -> keras.Model:
    """The feature extractor (pooled features per image), with ``weights`` loaded."""
    if weights not in (None, "imagenet") and not os.path.exists(weights):
        raise FileNotFoundError(f"weights file {weights!r} not found (a .keras or .weights.h5 file of the {name} backbone)")
    if name == "tiny":
        if weights == "imagenet":
            raise ValueError("the 'tiny' backbone has no ImageNet weights: use weights=None or a local file")
        model = _tiny_backbone(input_shape, alpha)
        if weights is not None:
            model.load_weights(weights)
        return model
    builder, _, takes_alpha = _APPLICATIONS[name]
    if not takes_alpha and alpha != 1.0:
        raise ValueError(f"backbone {name!r} has no width multiplier: alpha must be 1.0, got {alpha}")
    kwargs = {"alpha": alpha} if takes_alpha else {}
    try:
        return builder(include_top=False, weights=weights, input_shape=input_shape, pooling="avg", **kwargs)
    except Exception as error:
        if weights != "imagenet":
            raise
        raise RuntimeError(
            f"Could not get the ImageNet weights of {name!r} ({type(error).__name__}: {error}). Keras downloads "
            "them into ~/.keras/models/ on first use: run the same call once on a machine with network access and "
            "copy that folder here, or pass weights=<path> to a local .h5 / .weights.h5 / .keras file of the "
            "backbone without its top (include_top=False)."
        ) from error


def frame_classifier(
    backbone: str,
    num_classes: int,
    image_size: int | tuple[int, int],
    weights: str | None = None,
    alpha: float = 1.0,
    channels: int = 3,
) -> keras.Model:
    """The per-frame image model of `video_classifier`: raw pixels -> preprocessing -> backbone -> logits.

    Args:
        backbone, num_classes, image_size, weights, alpha: see `video_classifier`.
        channels: input channels (6 for ``"tiny"``, which sees each frame with its frame difference).

    Returns:
        A `keras.Model` from images ``(H, W, channels)`` in [0, 255] to class logits.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}: choose one of {BACKBONES}")
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    mode = "unit" if backbone == "tiny" else _APPLICATIONS[backbone][1]
    images = keras.Input((height, width, channels), name="images")
    features = _backbone(backbone, (height, width, channels), weights, alpha)
    x = features(ImagePreprocessing(mode, name="preprocessing")(images))
    return keras.Model(images, keras.layers.Dense(num_classes, name="logits")(x), name=backbone)


def video_classifier(
    backbone: str,
    num_classes: int,
    frames: int | None,
    image_size: int | tuple[int, int],
    sparsity: str | None = None,
    weights: str | None = None,
    alpha: float = 1.0,
    motion: bool | None = None,
    **sparsity_kwargs,
) -> keras.Model:
    """A video classifier: a CNN on every frame, class logits averaged over time.

    The head follows Yousefzadeh & Sifalakis (2021): per-frame class scores averaged over the clip.
    The model owns its preprocessing (raw pixels [0, 255] in, docs/CONTRACTS.md) and outputs **logits**:
    train with ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``, apply a softmax for
    probabilities. Averaging logits rather than probabilities keeps the loss numerically stable.

    Backbones (``keras.applications`` ones built without their top, pooled by global average):

    - ``"mobilenet"``: MobileNet v1 (``alpha`` = width multiplier), inputs scaled to [-1, 1];
    - ``"mobilenet_v2"``: MobileNetV2 (``alpha``), inputs scaled to [-1, 1];
    - ``"resnet50"``: ResNet50, caffe preprocessing (BGR, ImageNet mean subtracted);
    - ``"tiny"``: four conv-BN-ReLU blocks (16-32-64-64 filters times ``alpha``, three of stride 2),
      inputs scaled to [0, 1], for quick experiments on small synthetic clips (e.g. 16 frames of 64x64).
      A per-frame CNN whose scores are averaged over time cannot tell "moving left" from "moving
      right" (the same frames in reverse order give the same average), so ``"tiny"`` sees every frame
      together with its difference from the previous frame (`FrameDifference`, 6 input channels). This
      keeps all temporal mixing at the input: the CNN stays a per-frame image model with time folded
      into batch, so sparsity layers go after its activations as for any backbone, and a streaming
      engine only keeps the previous frame. Temporal convolutions in the head would instead need the
      time axis in the middle of the network.

    Args:
        backbone: one of ``"mobilenet"``, ``"mobilenet_v2"``, ``"resnet50"``, ``"tiny"``.
        num_classes: number of classes.
        frames: clip length, or None for any length.
        image_size: frame size, ``int`` or ``(height, width)``.
        sparsity: None (dense), ``"delta"`` or ``"l1"``: the `delta_keras.sparsify` method.
        weights: None (random), ``"imagenet"`` (Keras' own loader; needs network access or the file in
            ``~/.keras/models/``) or a path to a ``.keras`` / ``.weights.h5`` / ``.h5`` file of the backbone
            without its top.
        alpha: width multiplier of ``"mobilenet"``, ``"mobilenet_v2"`` and ``"tiny"``.
        motion: feed every frame with its difference from the previous one (`FrameDifference`, 6 input
            channels), so that classes told apart only by motion can be learnt; default: True for
            ``"tiny"``, False for the others. Not with ``weights="imagenet"`` (3-channel first layer).
        **sparsity_kwargs: passed to `delta_keras.sparsify` (``include_input``, ``where``, and the
            sparsity layers' arguments: ``step_init``, ``sparsity_weight``...).

    Returns:
        A `keras.Model` from clips ``(B, frames, H, W, 3)`` of raw pixels to logits ``(B, num_classes)``.

    Raises:
        ValueError: unknown backbone or sparsity method, or ``alpha`` for ResNet50.
        FileNotFoundError: ``weights`` is a path that does not exist.
        RuntimeError: ``weights="imagenet"`` could not be downloaded.

    Example:

    >>> import keras, numpy as np
    >>> from delta_keras.models import video_classifier
    >>> model = video_classifier("tiny", num_classes=4, frames=16, image_size=64, sparsity="delta",
    ...                          step_init=0.1, sparsity_weight=1e-5)
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> tuple(model(np.zeros((2, 16, 64, 64, 3), "float32")).shape)
    (2, 4)
    """
    if sparsity is None and sparsity_kwargs:
        raise TypeError(f"sparsity arguments {sorted(sparsity_kwargs)} given with sparsity=None")
    motion = backbone == "tiny" if motion is None else motion
    if motion and weights == "imagenet":
        raise ValueError("motion=True feeds 6 channels (frame and difference): ImageNet weights expect 3")
    channels = 6 if motion else 3
    image_model = frame_classifier(backbone, num_classes, image_size, weights, alpha, channels)
    clips = keras.Input((frames, *image_model.input.shape[1:3], 3), name="clips")
    x = FrameDifference(name="frame_difference")(clips) if motion else clips
    frame_logits = apply_per_frame(image_model, x, sparsity, **sparsity_kwargs)
    logits = keras.layers.GlobalAveragePooling1D(name="time_average")(frame_logits)
    return keras.Model(clips, logits, name=f"{backbone}_video_classifier")
