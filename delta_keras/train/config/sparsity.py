"""`SparsityConfig`: which sparsity layers a run puts into its model, and how their loss is weighted."""

from __future__ import annotations

import dataclasses
import inspect
from typing import ClassVar

from delta_keras.layers import DeltaActivation
from delta_keras.layers.base import NORMALIZATIONS
from delta_keras.train.config.setting import ConfigError, check_finite, flag, setting

SPARSITY_MODES = ("none", "l1", "delta")
SPARSITY_SCHEDULES = ("constant", "warmup", "step")
# Arguments of DeltaActivation only: giving them with another sparsity mode is a mistake.
DELTA_ONLY = ("step_init", "granularity", "step_gradient")
# ... and their defaults, the layer's own.
DELTA_DEFAULTS = {name: inspect.signature(DeltaActivation).parameters[name].default for name in DELTA_ONLY}
# Default sparsity weight per mode, for the fan-out-weighted per-element penalty of the layers.
DEFAULT_SPARSITY_WEIGHT = {"l1": 1e-4, "delta": 1e-4}


def _boolean(value: str) -> bool:
    return value.lower() in ("1", "true", "yes")


@dataclasses.dataclass
class SparsityConfig:
    """The sparsity part of a `TrainConfig`: the arguments of `delta_keras.sparsify` and of its layers."""

    GROUP: ClassVar[str] = "sparsity"

    sparsity: str = setting("none", "Sparsity layers: none (dense), l1 (ActivitySparsity, spatial baseline) "
                            "or delta (DeltaActivation, temporal).", choices=SPARSITY_MODES)
    sparsity_weight: float | None = setting(None, "Weight of the sparsity loss (default: 1e-4 for l1 and delta).")
    sparsity_schedule: str = setting("constant", "How the sparsity weight evolves with the training step: "
                                     "constant, warmup (0 -> weight linearly over --sparsity-warmup-steps after "
                                     "--sparsity-start-step) or step (0, then weight from --sparsity-start-step).",
                                     choices=SPARSITY_SCHEDULES)
    sparsity_start_step: int = setting(0, "Training step at which the sparsity weight starts to rise.")
    sparsity_warmup_steps: int = setting(0, "Length of the linear warm-up of the sparsity weight.")
    step_init: float | None = setting(None, f"Initial quantisation step of DeltaActivation (default "
                                            f"{DELTA_DEFAULTS['step_init']}).")
    granularity: str | None = setting(None, f"One step per layer, channel or neuron (default "
                                            f"{DELTA_DEFAULTS['granularity']}).",
                                      choices=("layer", "channel", "neuron"))
    step_gradient: str | None = setting(None, f"Step-size gradient: lsq or paper (default "
                                              f"{DELTA_DEFAULTS['step_gradient']}).", choices=("lsq", "paper"))
    memory: bool = setting(False, "DeltaActivation with memory: each neuron sends its new value only when it has "
                           "moved more than a learnable threshold (the step) from what it last sent (no flicker, no "
                           "drift).", action="store_true")
    input_memory: bool | None = setting(None, "With --memory and --include-input: whether the input's layer uses "
                                        "memory too (default) or per-frame quantisation (--input-memory 0).",
                                        type=_boolean, metavar="0|1")
    include_input: bool = setting(False, "Also put a sparsity layer on the frames entering the backbone "
                                  "(the paper does for ResNet50): the first convolution then sees sparse changes "
                                  "too.", action="store_true")
    input_step_init: float | None = setting(None, "Initial step of the input's DeltaActivation, in the units of the "
                                            "input (raw pixels, 0-255); default: --step-init.")
    sparsity_normalization: str = setting("mean", "How each layer's sparsity loss is normalised: mean (per neuron "
                                          "and frame, times the fan-out), frame, sample, or dense_macs (the summed "
                                          "loss is the weight times the share of the model's dense MACs the deltas "
                                          "trigger: a weight means the same on any network; try 0.01-1).",
                                          choices=NORMALIZATIONS)
    step_rate: float = setting(1.0, "The quantisation steps (and memory thresholds) learn at this multiple of the "
                               "learning rate (Adam moves a variable by about the learning rate per update, so a "
                               "fine-tuning rate leaves the steps where they start).")

    def resolved(self):
        """Returns a copy with the ``None`` defaults that depend on the sparsity mode filled in."""
        changes = {}
        if self.sparsity_weight is None and self.sparsity != "none":
            changes["sparsity_weight"] = DEFAULT_SPARSITY_WEIGHT[self.sparsity]
        if self.sparsity == "delta":
            changes.update({k: v for k, v in DELTA_DEFAULTS.items() if getattr(self, k) is None})
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        """Checks the sparsity settings and their combinations.

        Raises:
            ConfigError: naming the flags involved.
        """
        check_finite(self, SparsityConfig)
        if self.sparsity == "none":
            given = [f"--{flag(n)}" for n in ("sparsity_weight", *DELTA_ONLY) if getattr(self, n) is not None]
            given += ["--include-input"] if self.include_input else []
            given += ["--memory"] if self.memory else []
            if given or self.sparsity_schedule != "constant":
                raise ConfigError(f"{' '.join(given) or '--sparsity-schedule'}: only with --sparsity l1 or delta")
        elif self.sparsity == "l1":
            given = [f"--{flag(n)}" for n in DELTA_ONLY if getattr(self, n) is not None]
            given += ["--memory"] if self.memory else []
            if given:
                raise ConfigError(f"{' '.join(given)} only apply to --sparsity delta")
        if self.sparsity_weight is not None and self.sparsity_weight < 0:
            raise ConfigError(f"--sparsity-weight must be >= 0, got {self.sparsity_weight}")
        if self.step_rate <= 0:
            raise ConfigError(f"--step-rate must be > 0, got {self.step_rate}")
        if self.step_init is not None and self.step_init <= 0:
            raise ConfigError(f"--step-init must be > 0, got {self.step_init}")
        if self.input_step_init is not None and (self.sparsity != "delta" or not self.include_input):
            raise ConfigError("--input-step-init needs --sparsity delta and --include-input")
        if self.input_memory is not None and not (self.memory and self.include_input):
            raise ConfigError("--input-memory needs --memory and --include-input")
        if self.input_step_init is not None and self.input_step_init <= 0:
            raise ConfigError(f"--input-step-init must be > 0, got {self.input_step_init}")
        if self.sparsity_schedule == "warmup" and self.sparsity_warmup_steps < 1:
            raise ConfigError("--sparsity-schedule warmup needs --sparsity-warmup-steps >= 1")
        if self.sparsity_schedule == "step" and self.sparsity_start_step < 1:
            raise ConfigError("--sparsity-schedule step needs --sparsity-start-step >= 1")
        if self.sparsity_schedule == "constant" and (self.sparsity_start_step or self.sparsity_warmup_steps):
            raise ConfigError("--sparsity-start-step/--sparsity-warmup-steps need --sparsity-schedule warmup or step")
