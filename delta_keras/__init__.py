"""delta_keras: train Keras 3 video models to be sparse in time, and count the MACs it saves.

``import delta_keras`` loads the backend-neutral core (layers, regularizers: Keras only, which registers
them for `keras.models.load_model`); every other public name loads on first use (module ``__getattr__``),
so TensorFlow-only parts (data, simulator, training, TensorBoard) are imported only when used.
"""

from __future__ import annotations

import importlib
import sys

from delta_keras.quiet import filtered_stderr

if "keras" not in sys.modules:
    with filtered_stderr():  # Keras' first import may start TensorFlow, which prints start-up noise
        import keras  # noqa: F401
from delta_keras import layers, optimizers, regularizers  # noqa: E402 (registers the serialisable classes)

__version__ = "0.1.0"

# Public name -> the module that defines it (a module itself where the name is a subpackage).
_EXPORTS = {
    "ActivitySparsity": "delta_keras.layers",
    "DeltaActivation": "delta_keras.layers",
    "SparsityLayer": "delta_keras.layers",
    "sparsify": "delta_keras.models",
    "Distiller": "delta_keras.models",
    "strip_sparsity": "delta_keras.models",
    "video_classifier": "delta_keras.models",
    "SparsityMetrics": "delta_keras.callbacks",
    "SparsityTensorBoard": "delta_keras.callbacks",
    "TrainConfig": "delta_keras.train",
    "with_step_rate": "delta_keras.optimizers",
    "register_layer": "delta_keras.registry",
    "DeltaRuntime": "delta_keras.runtime",
    "streaming_threads": "delta_keras.runtime",
    "machine_summary": "delta_keras.runtime",
    "save_break_evens": "delta_keras.runtime",
    "load_break_evens": "delta_keras.runtime",
    "callbacks": None,
    "data": None,
    "files": None,
    "layers": None,
    "models": None,
    "optimizers": None,
    "registry": None,
    "regularizers": None,
    "runtime": None,
    "sim": None,
    "study": None,
    "train": None,
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'delta_keras' has no attribute {name!r}")
    module = _EXPORTS[name]
    value = importlib.import_module(f"delta_keras.{name}") if module is None else getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
