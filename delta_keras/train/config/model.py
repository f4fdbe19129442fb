"""`ModelConfig`: the clip classifier of a run (backbone, its weights and blocks, head)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from delta_keras.models.video_classifier import BACKBONES, HEADS
from delta_keras.train.config.setting import ConfigError, check_finite, setting


@dataclasses.dataclass
class ModelConfig:
    """The model part of a `TrainConfig`: what `delta_keras.models.video_classifier` builds."""

    GROUP: ClassVar[str] = "model"

    backbone: str = setting("tiny", "Image backbone run on every frame.", choices=BACKBONES)
    alpha: float = setting(1.0, "Width multiplier of the MobileNet backbones.")
    motion: bool = setting(False, "Feed every frame with its difference from the previous one (6 channels) to any "
                           "backbone, so motion-only classes can be learnt (always on for tiny).",
                           action="store_true")
    weights: str = setting("none", "Backbone initialisation: none, imagenet, bsds500 (HED's, for hed_vgg16) or the "
                           "path of a weights file.", metavar="none|imagenet|bsds500|PATH")
    blocks: int = setting(5, "hed_vgg16: VGG16 blocks kept (1-5).")
    frozen_blocks: int = setting(0, "hed_vgg16: the first N blocks are not trained (their sparsity layers are).")
    head: str = setting("average", "Clip head: average (frame logits averaged) or temporal (a ReLU convolution "
                        "over 3 frames' pooled features, then averaged).", choices=HEADS)
    dropout: float = setting(0.5, "Dropout rate of the temporal head.")

    def validate(self) -> None:
        """Checks the model settings and that a weights file named exists.

        Raises:
            ConfigError: naming the flags involved.
        """
        check_finite(self, ModelConfig)
        if self.alpha <= 0:
            raise ConfigError(f"--alpha must be > 0, got {self.alpha}")
        if (self.blocks != 5 or self.frozen_blocks) and self.backbone != "hed_vgg16":
            raise ConfigError("--blocks and --frozen-blocks: only with --backbone hed_vgg16")
        if not 1 <= self.blocks <= 5 or not 0 <= self.frozen_blocks <= self.blocks:
            raise ConfigError(f"need 1 <= --blocks <= 5 and 0 <= --frozen-blocks <= --blocks, got {self.blocks} "
                              f"and {self.frozen_blocks}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.backbone == "hed_vgg16" and self.motion:
            raise ConfigError("--motion feeds 6 channels; the hed_vgg16 backbone takes 3")
        if self.weights == "bsds500":
            if self.backbone != "hed_vgg16":
                raise ConfigError("--weights bsds500 are HED's: only with --backbone hed_vgg16")
        elif self.weights in ("none", "imagenet"):
            if self.weights == "imagenet" and self.backbone == "tiny":
                raise ConfigError("--weights imagenet: the tiny backbone has no pretrained weights")
        elif not Path(self.weights).is_file():
            raise ConfigError(f"--weights {self.weights}: no such file (expected none, imagenet or a weights file)")
