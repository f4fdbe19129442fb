"""The delta-inference simulator: exact MAC counts under skipping policies, and a frame-by-frame engine.

- `count_macs(model, clips, ...)`: per-layer, per-frame MACs under ``dense``, ``zero_activation``,
  ``zero_delta``, ``zero_weight`` and ``both`` policies, at a chosen skipping granularity; returns a
  `MacReport` (table, JSON/CSV, figure, TensorBoard scalars, NeuroBench summary, energy).
- `DeltaInference(model)`: runs a clip model frame by frame as a delta accelerator would, counting the
  MACs it performs.

The simulator runs on the TensorFlow backend.
"""

from delta_keras.sim.count import POLICIES, count_macs
from delta_keras.sim.energy import EnergyModel
from delta_keras.sim.engine import DeltaInference
from delta_keras.frames.geometry import Granularity
from delta_keras.sim.report import LayerCount, MacReport, StageCount

__all__ = ["POLICIES", "DeltaInference", "EnergyModel", "Granularity", "LayerCount", "MacReport", "StageCount", "count_macs"]
