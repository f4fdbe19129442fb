"""Sparsity layers: `DeltaActivation`, `ActivitySparsity` and what they share."""

from delta_keras.layers.activity_sparsity import ActivitySparsity
from delta_keras.layers.base import SparsityLayer
from delta_keras.layers.delta_activation import DeltaActivation

__all__ = ["ActivitySparsity", "DeltaActivation", "SparsityLayer"]
