"""`ConvolutionRun`: sparse convolutions one after another, brought up to date in one call into the kernels.

Each call from the frame's TensorFlow graph into a kernel (a `tf.numpy_function`) costs about 0.1 ms on 2 cores
besides the kernel's work, and the graph's choice between dense and sparse a few small ops more: at 96x96 that
was 0.15-0.25 ms between one convolution's kernel and the next, a third of a still frame. Where a convolution reads
nothing but the previous one's output pass (its ReLU, quantiser and pooling; HED's and VGG16's 3x3 convolutions,
block after block), nothing in TensorFlow needs the output in between: the run hands each output to the next kernel
itself, in one call a frame. A convolution that goes dense in a run (on its samples, or a re-sync) gets its
convolution from TensorFlow as one eager op and the rest of its dense frame (bias, ReLU, quantiser, pooling, side
convolutions) from its output pass (`SparseConv.update_arrays`). A convolution whose output pass holds a memory
threshold is in a run even alone: the threshold's state lives in its kernel, so its dense frames must go through the
pass too.

Inside a run the next convolution's input is not handed on whole and compared again: the output pass compares each
finished row (pooled where it pools) with the next convolution's input as it was, updates it in place and lists the
changes (`delta_keras.runtime.kernels.multiply_pass`), and the next convolution reads the list (its ``source``), as a
fused layer reads its producer's. It then chooses dense or sparse on the list's exact count instead of samples. After
a frame it ran densely for its many changes it compares its input itself for a frame, on samples first: listing
changes a dense frame does not use costs more than the samples (HED at 96x96 and 192x192, step 8, the moving camera:
0.89-0.94x as fast as comparing when lists were written on every frame). After a frame run densely as a whole (in
TensorFlow: frame 0, a scene cut) the kernels take that frame's tensors that nothing else reads, the convolutions'
sums and the next convolutions' inputs, as their accumulators and the lists' values (TensorFlow's buffers, updated in
place from then on), and a copy of the side convolutions' sums: the next pass goes on as after any frame, with no
copy on the dense frame and no pass over every pixel after it (`delta_keras.runtime.kernels.SparseConv._store`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from delta_keras.runtime.fused import ChangeList
from delta_keras.runtime.kernels import SparseConv


class ConvolutionRun:
    """Sparse convolutions (`SparseConv` with an output-pass ``finish``, no fused epilogue), each reading the output
    of the one before it and nobody else reading those (`delta_keras.runtime.fused.convolution_runs`).

    Args:
        kernels: the convolutions' kernels, in order.
    """

    def __init__(self, kernels: list[SparseConv]):
        chooser = next((kernel for kernel in kernels if kernel.chooses_in_graph), None)
        if chooser is not None:  # each chooses dense or sparse in its kernel, from arrays
            raise ValueError(f"{chooser.layer.name}: a convolution of a run chooses dense or sparse in its kernel; "
                             f"build its SparseConv with in_run=True")
        self.kernels = kernels
        # Each convolution's output pass lists the next one's input changes (not a whole new input to compare).
        for producer, consumer in zip(kernels, kernels[1:]):
            producer.next_in_run, consumer.source = consumer, ChangeList(consumer.previous.shape)
            consumer.source_full = producer.lists_full

    def _frame(self, value: np.ndarray) -> list:
        """One frame through every kernel: the last output, each kernel's side sums (those with sides), then
        the MACs of each and the MACs each executed."""
        sides, macs, executed = [], [], []
        for kernel in self.kernels:
            value, side, counted, done = kernel.update_arrays(value)
            if kernel.sides:
                sides.append(side)
            macs.append(counted)
            executed.append(done)
        return [value, *sides, np.asarray(macs + executed, np.int64)]

    def update(self, value) -> list[tuple]:
        """Brings every kernel up to date with the first one's input ``value`` (B, H, W, C).

        Returns:
            Per kernel ``(output, sides, zero_delta MACs, MACs executed)``: ``output`` is the last kernel's (its
            output pass's, pooled where it pools) and None for the others; ``sides`` each side convolution's
            activated output (`SparseConv.side_outputs`).
        """
        with_sides = [kernel for kernel in self.kernels if kernel.sides]
        output, *sides, counts = tf.numpy_function(self._frame, [value],
                                                   [tf.float32] * (1 + len(with_sides)) + [tf.int64])
        n = len(self.kernels)
        counts = tf.unstack(tf.ensure_shape(counts, (2 * n,)))
        activated = {kernel: kernel.side_outputs([None, tf.ensure_shape(side, kernel.side_shape)])[1:]
                     for kernel, side in zip(with_sides, sides)}
        last = self.kernels[-1]
        return [(tf.ensure_shape(output, last.output_shape) if kernel is last else None, activated.get(kernel, []),
                 counts[i], counts[n + i]) for i, kernel in enumerate(self.kernels)]
