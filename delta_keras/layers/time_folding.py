"""`FoldTime` and `UnfoldTime`: move time between the batch axis and its own axis.

Image layers run on frames with time folded into batch, row-major (``(B, T, ...)`` ->
``(B*T, ...)``, see docs/CONTRACTS.md); a layer that needs the time axis (a sparsity layer) sits
between an `UnfoldTime` and a `FoldTime`. Both are reshapes, which cost no copy.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="delta_keras")
class FoldTime(keras.layers.Layer):
    """Folds time into batch: ``(B, T, ...)`` -> ``(B*T, ...)``, row-major.

    Example:

    >>> import numpy as np
    >>> from delta_keras.layers import FoldTime
    >>> tuple(FoldTime()(np.zeros((2, 3, 4, 4, 1), "float32")).shape)
    (6, 4, 4, 1)
    """

    def __init__(self, **kwargs):
        # A reshape keeps its dtype: no cast of the input under mixed precision.
        super().__init__(autocast=False, **kwargs)

    def call(self, inputs):
        return ops.reshape(inputs, (-1, *ops.shape(inputs)[2:]))

    def compute_output_shape(self, input_shape):
        # Explicit: backends that infer shapes by running the op on placeholder sizes (PyTorch) get the
        # folded batch wrong when batch and time are both unknown.
        batch, time, *rest = input_shape
        return (None if batch is None or time is None else batch * time, *rest)


@keras.saving.register_keras_serializable(package="delta_keras")
class UnfoldTime(keras.layers.Layer):
    """Restores the time axis of a folded tensor: ``(B*T, ...)`` -> ``(B, T, ...)``.

    Called on ``[folded, reference]``, where ``reference`` is any tensor with the batch and time axes
    to restore (e.g. the clip input). Only its shape is read, so the number of frames may be dynamic.

    Example:

    >>> import numpy as np
    >>> from delta_keras.layers import UnfoldTime
    >>> clips = np.zeros((2, 3, 4, 4, 1), "float32")
    >>> tuple(UnfoldTime()([np.zeros((6, 5), "float32"), clips]).shape)
    (2, 3, 5)
    """

    def __init__(self, **kwargs):
        super().__init__(autocast=False, **kwargs)

    def call(self, inputs):
        folded, reference = inputs
        batch_and_time = ops.shape(reference)[:2]
        return ops.reshape(folded, (*batch_and_time, *ops.shape(folded)[1:]))

    def compute_output_shape(self, input_shape):
        folded, reference = input_shape
        return (*reference[:2], *folded[1:])
