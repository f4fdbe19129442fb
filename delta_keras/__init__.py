"""delta_keras: train Keras 3 video models to be sparse in time, and count the MACs it saves."""

from delta_keras import regularizers
from delta_keras.layers import ActivitySparsity, DeltaActivation, SparsityLayer

__version__ = "0.1.0"

__all__ = ["ActivitySparsity", "DeltaActivation", "SparsityLayer", "regularizers"]
