"""The methods a sparsity study compares, and post-hoc delta inference (no training for sparsity).

Every trained method is one `delta_keras.train.train` run of a `TrainConfig`; post-hoc delta inference
is the trained dense baseline with a fixed-step quantiser after each of its activations, the way
DeltaCNN-style inference engines convert a dense model without retraining it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras
import numpy as np

from delta_keras.layers import DeltaActivation
from delta_keras.train import TrainConfig, build_model, transfer_weights

# method id -> what it is, in words (used by the report)
METHODS = {
    "dense": "dense baseline (no sparsity layer)",
    "posthoc": "post-hoc delta inference: the trained baseline, activations quantised with one fixed step, "
               "no training",
    "posthoc_memory": "post-hoc deltas with memory (Event Neural Networks' rule, no training): the trained "
                      "baseline, each activation sent only when it moved more than its layer's threshold from "
                      "what it last sent; one threshold per layer, calibrated greedily on held-out videos (never "
                      "the test set) to keep a target agreement with the baseline's predictions",
    "dense_refine": "the dense baseline trained as long again as the refinements, without sparsity: what "
                    "the refinements' extra epochs alone give",
    "l1": "spatial L1 activity penalty (ActivitySparsity), refinement of the baseline",
    "delta_refine": "DeltaActivation, refinement of the baseline",
    "delta_scratch": "DeltaActivation, trained from scratch",
    "delta_memory_refine": "DeltaActivation with memory (learned thresholds), refinement of the baseline",
}


def delta_layers(model: keras.Model) -> list[DeltaActivation]:
    """The `DeltaActivation` layers of a (flat) clip model, in graph order."""
    return [layer for layer in model.layers if isinstance(layer, DeltaActivation)]


# A rounding quantiser of step q is off by at most q / 2; deltas with memory and threshold t by at most t.
# Memory runs therefore start from t = q / 2 (the same worst-case error as the step they are compared with).
MEMORY_THRESHOLD_PER_STEP = 0.5


def input_quantiser(input_step: float | None, memory: bool = False) -> dict:
    """The `TrainConfig` fields that put a DeltaActivation of initial step ``input_step`` on the input frames
    (none when ``input_step`` is None); with ``memory``, a threshold of the same worst-case error."""
    if input_step is not None and memory:
        input_step = input_step * MEMORY_THRESHOLD_PER_STEP
    return {"include_input": input_step is not None, "input_step_init": input_step}


def posthoc_delta_model(dense_model: keras.Model, config: TrainConfig, step: float,
                        input_step: float | None = None, memory: bool = False) -> keras.Model:
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
        memory: deltas with memory instead (``step`` is then every layer's threshold).

    Returns:
        A new, uncompiled model; ``dense_model`` is untouched.
    """
    delta_config = dataclasses.replace(config, sparsity="delta", sparsity_weight=0.0, step_init=float(step),
                                       granularity="layer", step_gradient="lsq", **input_quantiser(input_step),
                                       init_from=None, sparsity_schedule="constant", sparsity_start_step=0,
                                       sparsity_warmup_steps=0, memory=memory)
    model = build_model(delta_config)
    transfer_weights(dense_model, model)
    for layer in delta_layers(model):
        layer.trainable = False
    return model


def calibrate_thresholds(model: keras.Model, acceptable: Callable[[], bool], grid: tuple,
                         grids: dict[str, tuple] | None = None, uniform_first: bool = False) -> dict[str, float]:
    """Per-layer thresholds of a post-hoc memory model, calibrated greedily on held-out data.

    Layers are visited by the dense MACs their outputs trigger (``fan_out`` x neurons per frame), largest
    first. Each layer's threshold is raised through its grid for as long as ``acceptable()`` (the model,
    as set now, still meets the fidelity target on held-out clips, never the test set). Every layer
    starts at the smallest value of its grid; with ``uniform_first``, the layers on ``grid`` start at the
    largest value of it that is acceptable for all of them at once (so the result is at least as sparse as the
    best uniform setting: greedily from the smallest values, the first layers visited can spend the whole
    fidelity budget, leaving the others at their smallest values).

    Args:
        model: a memory-mode model (e.g. `posthoc_delta_model(..., memory=True)`); set in place.
        acceptable: the fidelity test, e.g. `agreement_test`.
        grid: candidate thresholds, in the activations' units.
        grids: other grids for named layers (the input's, in pixel units).
        uniform_first: start from the best uniform value of ``grid`` (see above).

    Returns:
        ``{layer name: threshold}`` as set.
    """
    layers = delta_layers(model)
    candidates = {layer.name: sorted((grids or {}).get(layer.name, grid)) for layer in layers}
    for layer in layers:
        layer.step_variable.assign(candidates[layer.name][0])
    if uniform_first:
        shared = [layer for layer in layers if layer.name not in (grids or {})]
        start = 0
        for index, value in enumerate(sorted(grid)[1:], 1):
            for layer in shared:
                layer.step_variable.assign(value)
            if not acceptable():
                break
            start = index
        for layer in shared:
            layer.step_variable.assign(sorted(grid)[start])
            candidates[layer.name] = candidates[layer.name][start:]
    cost = {layer.name: layer.fan_out * float(np.prod(layer.output.shape[2:])) for layer in layers}
    thresholds = {layer.name: candidates[layer.name][0] for layer in layers}
    for layer in sorted(layers, key=lambda l: -cost[l.name]):
        chosen = candidates[layer.name][0]
        for value in candidates[layer.name][1:]:
            layer.step_variable.assign(value)
            if not acceptable():
                break
            chosen = value
        layer.step_variable.assign(chosen)
        thresholds[layer.name] = float(chosen)
    return thresholds


def agreement_test(model: keras.Model, clips: np.ndarray, reference: np.ndarray, agreement: float,
                   batch_size: int = 32) -> Callable[[], bool]:
    """For `calibrate_thresholds` on a classifier: the predicted classes agree with ``reference`` (the dense
    model's) on at least a fraction ``agreement`` of ``clips``."""
    return lambda: float(np.mean(model.predict(clips, batch_size=batch_size, verbose=0).argmax(-1) == reference)) >= agreement
