"""The methods a sparsity study compares, and post-hoc delta inference (no training for sparsity).

Every trained method is one `delta_keras.train.train` run of a `TrainConfig`; post-hoc delta inference
is the trained dense baseline with a fixed-step quantiser after each of its activations, the way
DeltaCNN-style inference engines convert a dense model without retraining it.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from delta_keras.layers import DeltaActivation
from delta_keras.train import TrainConfig, build_model, transfer_weights

# method id -> what it is, in words (used by the report)
METHODS = {
    "dense": "dense baseline (no sparsity layer)",
    "posthoc": "post-hoc delta inference: the trained baseline, activations quantised with one fixed step, "
               "no training",
    "dense_refine": "the dense baseline trained as long again as the refinements, without sparsity: what "
                    "the refinements' extra epochs alone give",
    "l1": "spatial L1 activity penalty (ActivitySparsity), refinement of the baseline",
    "delta_refine": "DeltaActivation, refinement of the baseline",
    "delta_scratch": "DeltaActivation, trained from scratch",
}


def delta_layers(model: keras.Model) -> list[DeltaActivation]:
    """The `DeltaActivation` layers of a (flat) clip model, in graph order."""
    return [layer for layer in model.layers if isinstance(layer, DeltaActivation)]


def input_quantiser(input_step: float | None) -> dict:
    """The `TrainConfig` fields that put a DeltaActivation of initial step ``input_step`` on the input frames
    (none when ``input_step`` is None)."""
    return {"include_input": input_step is not None, "input_step_init": input_step}


def posthoc_delta_model(dense_model: keras.Model, config: TrainConfig, step: float,
                        input_step: float | None = None) -> keras.Model:
    """The trained dense model with a fixed-step quantiser after each activation (post-hoc delta inference).

    Builds the config's architecture with a `DeltaActivation` after every activation (one step per layer,
    ``step`` everywhere, sparsity weight 0), copies the dense model's weights into it by layer name
    (`delta_keras.train.transfer_weights`) and freezes the steps. Its output is what a delta-inference
    engine computes when it skips every change smaller than one quantisation level, as DeltaCNN does
    with a global truncation threshold; `delta_keras.sim.count_macs` then counts its MACs as for any model.

    Args:
        dense_model: the trained baseline, built from ``config`` with ``sparsity="none"``.
        config: the baseline's config (data, backbone, sizes).
        step: the quantisation step, in the activations' units (after BN + ReLU: about unit scale).
        input_step: also quantise the frames entering the backbone, with this step (in pixel units).

    Returns:
        A new, uncompiled model; ``dense_model`` is untouched.
    """
    delta_config = dataclasses.replace(config, sparsity="delta", sparsity_weight=0.0, step_init=float(step),
                                       granularity="layer", step_gradient="lsq", **input_quantiser(input_step),
                                       init_from=None, sparsity_schedule="constant", sparsity_start_step=0,
                                       sparsity_warmup_steps=0)
    model = build_model(delta_config)
    transfer_weights(dense_model, model)
    for layer in delta_layers(model):
        layer.trainable = False
    return model


def model_with_frames(model: keras.Model, config: TrainConfig, frames: int, **changes) -> keras.Model:
    """The same network built for clips of ``frames`` frames, with ``model``'s weights (e.g. to run a
    longer real clip through a model trained on short clips). ``changes`` are further config fields
    that describe ``model`` (e.g. those `posthoc_delta_model` sets)."""
    copy = build_model(dataclasses.replace(config, frames=frames, init_from=None, **changes))
    copy.set_weights(model.get_weights())
    return copy


def load_real_clip(path: str, frames: int, image_size: int, start: int = 0, stride: int = 1) -> np.ndarray:
    """``frames`` consecutive frames of a video file, short side resized to ``image_size`` and centre-cropped,
    float32 raw pixels ``(1, frames, image_size, image_size, 3)``."""
    from delta_keras.data import read_frames  # noqa: PLC0415

    clip = read_frames(path, start + stride * np.arange(frames), short_side=image_size)
    height, width = clip.shape[1:3]
    top, left = (height - image_size) // 2, (width - image_size) // 2
    return clip[None, :, top:top + image_size, left:left + image_size].astype("float32")
