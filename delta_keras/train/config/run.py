"""`RunConfig`: where a run writes, what it starts from, and how often it saves."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from delta_keras.train.config.setting import ConfigError, check_at_least_one, check_finite, setting


@dataclasses.dataclass
class RunConfig:
    """The run part of a `TrainConfig`: the run folder, the run's start (new, resumed or initialised) and its
    checkpoints."""

    GROUP: ClassVar[str] = "run"

    logdir: str = setting("runs/latest", "Run folder: TensorBoard events, checkpoints, config.json, results.json.")
    resume: bool = setting(False, "Continue the run in --logdir from its newest checkpoint that loads (a finished "
                           "run is left as it is, or extended when --epochs is larger).", action="store_true")
    init_from: str | None = setting(None, "Refinement: start from the weights of this trained checkpoint "
                                    "(a .keras file or a run folder), matched by layer name; DeltaActivation "
                                    "steps too where the checkpoint has them (e.g. a post-hoc calibrated model).",
                                    metavar="CHECKPOINT")
    checkpoint_every_steps: int | None = setting(None, "Also save a checkpoint every N training steps, so a killed "
                                                 "run loses at most N steps.")
    checkpoint_every_minutes: float = setting(5.0, "Also save a checkpoint at the first step after this many "
                                              "minutes of training since the last one, so a killed run loses "
                                              "minutes, not an epoch (0: at epoch ends and --checkpoint-every-steps "
                                              "only).")

    def validate(self) -> None:
        """Checks the run settings and that a checkpoint to start from exists.

        Raises:
            ConfigError: naming the flags involved.
        """
        check_finite(self, RunConfig)
        check_at_least_one(self, ("checkpoint_every_steps",))
        if self.checkpoint_every_minutes < 0:
            raise ConfigError(f"--checkpoint-every-minutes must be >= 0, got {self.checkpoint_every_minutes}")
        if self.resume and self.init_from:
            raise ConfigError("--resume continues a run, --init-from starts a new one: give only one")
        if self.init_from and not Path(self.init_from).exists():
            raise ConfigError(f"--init-from {self.init_from}: no such checkpoint or run folder")
