"""Memory traffic and energy of a counted layer: a simple, documented per-operation model.

The model (per linear stage of a layer, summed over frames and samples):

- arithmetic: every effective MAC is one multiply and one add; a layer whose inputs are all in
  {-1, 0, 1} (NeuroBench's accumulate case) pays the add only;
- weight reads: one weight per MAC (no reuse across MACs: an upper bound for a sparse engine, which
  gathers the weights of each nonzero input);
- activation reads: the input entries the policy fetches: all of them (``dense``, ``zero_weight``),
  the nonzero ones (``zero_activation``, ``both``) or the nonzero changes (``zero_delta``);
- activation writes: every output entry, every frame;
- delta state (``zero_delta`` only): the previous activation of every input entry (read to form the
  change, written with the new value) and the accumulator of every output entry (read, updated,
  written back), once per frame; ``state_bytes`` is the memory held per stream.

Energy = arithmetic + (bits moved) × SRAM energy per bit. Defaults from Horowitz (ISSCC 2014, 45 nm):
8-bit multiply 0.2 pJ, 32-bit add 0.1 pJ (int8 weights and activations, int32 accumulators), 32 KB
SRAM read 20 pJ per 64 bits. `EnergyModel.fp32()` gives the 32-bit float table.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class EnergyModel:
    """Per-operation energies (pJ) and word sizes (bits).

    Args:
        mult_pj: one multiply.
        add_pj: one accumulate.
        sram_pj_per_bit: on-chip memory access, per bit (read or write).
        activation_bits, weight_bits, accumulator_bits: word sizes.
    """

    mult_pj: float = 0.2
    add_pj: float = 0.1
    sram_pj_per_bit: float = 20.0 / 64
    activation_bits: int = 8
    weight_bits: int = 8
    accumulator_bits: int = 32

    @classmethod
    def fp32(cls) -> EnergyModel:
        """32-bit float arithmetic and words (Horowitz: mult 3.7 pJ, add 0.9 pJ)."""
        return cls(mult_pj=3.7, add_pj=0.9, activation_bits=32, weight_bits=32, accumulator_bits=32)

    def energy_pj(self, traffic: dict) -> float:
        """Energy (pJ) of a `traffic` dict."""
        arithmetic = traffic["macs"] * (self.mult_pj + self.add_pj) + traffic["acs"] * self.add_pj
        bits = (
            traffic["weight_reads"] * self.weight_bits
            + (traffic["activation_reads"] + traffic["activation_writes"]) * self.activation_bits
            + (traffic["state_reads"] + traffic["state_writes"]) * self.activation_bits
            + (traffic["accumulator_reads"] + traffic["accumulator_writes"]) * self.accumulator_bits
        )
        return float(arithmetic + bits * self.sram_pj_per_bit)

    def state_bytes(self, stage) -> float:
        """Bytes a delta engine holds per stream for one stage: previous inputs and accumulated outputs."""
        return (stage.input_size * self.activation_bits + stage.output_size * self.accumulator_bits) / 8


def traffic(stage, policy: str) -> dict:
    """Operation and memory-access counts (totals over frames and samples) of one `StageCount` under ``policy``."""
    macs = float(np.sum(stage.macs[policy]))
    frames = len(stage.macs[policy]) * stage.samples
    fetched = {
        "zero_activation": stage.input_nonzero.sum(),
        "both": stage.input_nonzero.sum(),
        "zero_delta": stage.input_changed.sum(),
    }.get(policy, stage.input_size * frames)
    delta = policy == "zero_delta"
    return {
        "macs": 0.0 if stage.ternary else macs,
        "acs": macs if stage.ternary else 0.0,
        "weight_reads": macs,
        "activation_reads": float(fetched),
        "activation_writes": float(stage.output_size * frames),
        "state_reads": float(stage.input_size * frames) if delta else 0.0,
        "state_writes": float(stage.input_size * frames) if delta else 0.0,
        "accumulator_reads": float(stage.output_size * frames) if delta else 0.0,
        "accumulator_writes": float(stage.output_size * frames) if delta else 0.0,
    }
