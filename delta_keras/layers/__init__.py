"""Sparsity layers (`DeltaActivation`, `ActivitySparsity`) and the layers video models are built from."""

from delta_keras.layers.activity_sparsity import ActivitySparsity
from delta_keras.layers.base import SparsityLayer
from delta_keras.layers.delta_activation import DeltaActivation
from delta_keras.layers.preprocessing import FrameDifference, ImagePreprocessing
from delta_keras.layers.quantize import Quantize
from delta_keras.layers.time_folding import FoldTime, UnfoldTime

__all__ = [
    "ActivitySparsity",
    "DeltaActivation",
    "FoldTime",
    "FrameDifference",
    "ImagePreprocessing",
    "Quantize",
    "SparsityLayer",
    "UnfoldTime",
]
