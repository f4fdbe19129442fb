"""Models: `sparsify` an image model into a clip model, `strip_sparsity`, `video_classifier`, fan-out."""

from delta_keras.models.distiller import Distiller
from delta_keras.models.fan_out import dense_macs, graph_fan_outs, layer_fan_out
from delta_keras.models.sparsify import apply_per_frame, sparsify, strip_sparsity
from delta_keras.models.video_classifier import BACKBONES, HEAD_LAYERS, frame_classifier, video_classifier

__all__ = [
    "BACKBONES",
    "HEAD_LAYERS",
    "Distiller",
    "apply_per_frame",
    "dense_macs",
    "frame_classifier",
    "graph_fan_outs",
    "layer_fan_out",
    "sparsify",
    "strip_sparsity",
    "video_classifier",
]
