"""`OptimizationConfig`: what a run minimises (labels or a teacher's logits) and how (optimiser, rates, devices)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import ClassVar

from delta_keras.train.config.setting import ConfigError, check_at_least_one, check_finite, flag, setting

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("constant", "cosine")
STRATEGIES = ("default", "mirrored", "multiworker")


@dataclasses.dataclass
class OptimizationConfig:
    """The optimisation part of a `TrainConfig`: loss, optimiser, learning rates, precision and devices."""

    GROUP: ClassVar[str] = "optimisation"

    epochs: int = setting(5, "Epochs to train (in total, when resuming).")
    optimizer: str = setting("adam", "sgd (momentum 0.9) or adam.", choices=OPTIMIZERS)
    lr_schedule: str = setting("cosine", "Learning rate over the run: constant or cosine decay to 0.",
                               choices=LR_SCHEDULES)
    learning_rate: float = setting(3e-3, "Initial learning rate.")
    head_rate: float = setting(1.0, "The classification head (its layer norm, temporal convolution and logits) "
                               "learns at this multiple of the learning rate: a pretrained backbone fine-tunes at a "
                               "rate 10-100x below a fresh head's (e.g. --learning-rate 1e-5 --head-rate 30).")
    distill_from: str | None = setting(None, "Refine by distillation: start from this dense checkpoint (a .keras "
                                       "file or a run folder) and learn to reproduce its logits (KL at "
                                       "--temperature) instead of the labels.", metavar="CHECKPOINT")
    label_weight: float = setting(0.0, "With --distill-from: weight of the label loss mixed into the distillation "
                                  "loss (0: labels are not used).")
    temperature: float = setting(1.0, "With --distill-from: softmax temperature of the KL distillation loss.")
    mixed_precision: bool = setting(False, "Compute in float16 (GPU) or bfloat16 (CPU).", action="store_true")
    strategy: str = setting("default", "default (one device), mirrored (every local GPU) or multiworker "
                            "(MultiWorkerMirroredStrategy, cluster from TF_CONFIG).", choices=STRATEGIES)

    def validate(self) -> None:
        """Checks the optimisation settings, that a teacher named exists and that a cluster is described.

        Raises:
            ConfigError: naming the flags involved.
        """
        check_finite(self, OptimizationConfig)
        check_at_least_one(self, ("epochs",))
        for name in ("learning_rate", "head_rate"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{flag(name)} must be > 0, got {getattr(self, name)}")
        if self.strategy == "multiworker" and not os.environ.get("TF_CONFIG"):
            raise ConfigError("--strategy multiworker needs the cluster in the TF_CONFIG environment variable")
        if self.distill_from is None:
            given = [f"--{flag(n)}" for n, default in (("label_weight", 0.0), ("temperature", 1.0))
                     if getattr(self, n) != default]
            if given:
                raise ConfigError(f"{' '.join(given)}: only with --distill-from")
            return
        if not Path(self.distill_from).exists():
            raise ConfigError(f"--distill-from {self.distill_from}: no such checkpoint or run folder")
        if self.label_weight < 0 or self.temperature <= 0:
            raise ConfigError(f"--label-weight must be >= 0 and --temperature > 0, got {self.label_weight}, "
                              f"{self.temperature}")
