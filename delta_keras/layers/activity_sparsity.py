"""`ActivitySparsity`: the spatial L1 baseline, a pass-through layer that penalises activations."""

from __future__ import annotations

import keras

from delta_keras.layers.base import SparsityLayer


@keras.saving.register_keras_serializable(package="delta_keras")
class ActivitySparsity(SparsityLayer):
    """Penalises activations (not their changes) and passes them through unchanged.

    The spatial-sparsity baseline of Yousefzadeh & Sifalakis (2021): loss
    ``sparsity_weight * fan_out * normalization * penalty(x)`` over every frame. It keeps the same
    statistics as `DeltaActivation` (on the unquantised input), so the two are interchangeable in a model.

    Args:
        **kwargs: `SparsityLayer` arguments (``sparsity_weight``, ``fan_out``, ``penalty``,
            ``normalization``) and base layer arguments.

    Input shape:
        Tensor of rank >= 3 with time on axis 1.

    Output shape:
        Same as the input.

    Example:

    >>> import numpy as np, keras
    >>> from delta_keras import ActivitySparsity
    >>> layer = ActivitySparsity(sparsity_weight=1e-4)
    >>> tuple(layer(np.ones((2, 4, 10), "float32")).shape)
    (2, 4, 10)
    """

    penalises_deltas = False

    def _transform(self, x):
        return x, x
