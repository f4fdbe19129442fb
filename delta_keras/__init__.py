"""delta_keras: train Keras 3 video models to be sparse in time, and count the MACs it saves."""

from delta_keras import regularizers
from delta_keras.layers import ActivitySparsity, DeltaActivation, SparsityLayer
from delta_keras.models import sparsify, strip_sparsity, video_classifier
from delta_keras import callbacks, train
from delta_keras.callbacks import SparsityTensorBoard
from delta_keras.train import TrainConfig

__version__ = "0.1.0"

__all__ = [
    "ActivitySparsity",
    "DeltaActivation",
    "SparsityLayer",
    "SparsityTensorBoard",
    "TrainConfig",
    "callbacks",
    "regularizers",
    "sparsify",
    "strip_sparsity",
    "train",
    "video_classifier",
]
