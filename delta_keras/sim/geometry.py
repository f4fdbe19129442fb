"""The old path of `delta_keras.frames.geometry` (each MAC layer's linear stages and fan-out maps)."""

from delta_keras.frames.geometry import (STAGE_BUILDERS, Granularity, Stage, UncountableLayer,  # noqa: F401
                                         block_any, gradient_of_sum, is_mac_layer, stages)
from delta_keras.registry import unwrap  # noqa: F401
