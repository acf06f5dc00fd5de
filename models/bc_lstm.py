"""Block-circulant LSTM (C-LSTM, FPGA 2018; E-RNN, HPCA 2019; Wang et al., TVLSI 2017).

Both weight matrices of all four gates are block-circulant (``models.circulant``): the input
matrix ``(n_in, 4H)`` with ``block_size`` ``k``, the recurrent matrix ``(H, 4H)`` with its own
``recurrent_block_size`` (E-RNN picks the two separately). Each ``k x k`` block is one stored
``k``-vector; sizes that ``k`` does not divide are zero-padded (padded inputs are zero, padded
outputs dropped). Both maps are exact sums of products: the input map is rounded once to the
accumulator type, the recurrent map not at all (as the dense ``h @ U``).

``BlockCirculantLSTM.from_dense`` projects a dense LSTM's matrices onto this structure (the
Euclidean projection: the mean along each block's circulant diagonals); ``models.admm`` trains
towards it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from models.circulant import BCShape, bc_project, check_block_size, output_columns, rotation_index
from models.lstm_cell import LSTMCost, QuantizedLSTMCell, QuantizedRNN, SizedByInput


def bc_lstm_cost(n_in, units, block_size, recurrent_block_size=None) -> LSTMCost:
    """Counts for a block-circulant LSTM (``recurrent_block_size`` defaults to ``block_size``)."""
    recurrent_block_size = block_size if recurrent_block_size is None else recurrent_block_size
    return LSTMCost.of(
        BCShape.create(n_in, units, block_size),
        units,
        recurrent_shape=BCShape.create(units, units, recurrent_block_size, "recurrent_block_size"),
    )


def matvec_by_rotation(x, vectors, shape: BCShape):
    """``x @ W`` by index rotation of the input, never densified: a (batch, p, k, k) tensor.

    x: (batch, n_in); vectors: (4q, p, k). Returns (batch, 4H) in the Keras gate layout.
    """
    k = shape.block_size
    padded = tf.pad(x, [[0, 0], [0, shape.padded_in - shape.n_in]])
    blocks = tf.reshape(padded, (-1, shape.p, k))  # (batch, p, k): input block i, position s
    rotated = tf.gather(blocks, rotation_index(k), axis=2)  # (batch, p, k, k): [b, i, d, r] = x[i, (r - d) mod k]
    out = tf.einsum("bidr,gid->bgr", rotated, vectors)  # (batch, 4q, k): output block g, position r
    return tf.gather(tf.reshape(out, (-1, shape.gates * shape.q * k)), output_columns(shape), axis=1)


def matvec_by_kernel(x, vectors, shape: BCShape):
    """``x @ W`` through the matrix the vectors define, built once per call: (p k, k 4q) values.

    The matrix's columns are built position-major (``r * 4q + g``) so that it is one gather of
    the small vector tensor and a reshape, with no transpose of the large one; the (batch, 4qk)
    product is put back in the Keras gate layout. x: (batch, n_in); vectors: (4q, p, k).
    Returns (batch, 4H).
    """
    k, output_blocks = shape.block_size, shape.gates * shape.q
    by_position = tf.transpose(vectors, (1, 2, 0))  # (p, k, 4q): [i, d, g] = c[g, i, d]
    blocks = tf.gather(by_position, rotation_index(k), axis=1)  # (p, k, k, 4q): [i, s, r, g] = c[g, i, (r - s) mod k]
    kernel = tf.reshape(blocks, (shape.padded_in, k * output_blocks))  # (p k, k 4q): row i k + s, column r 4q + g
    padded = tf.pad(x, [[0, 0], [0, shape.padded_in - shape.n_in]])  # (batch, p k)
    out = tf.matmul(padded, kernel)  # (batch, k 4q)
    block_major = np.arange(k * output_blocks).reshape(k, output_blocks).T.reshape(-1)  # column of (g, r)
    return tf.gather(out, block_major[output_columns(shape)], axis=1)  # (batch, 4H)


def circulant_matvec(x, vectors, shape: BCShape):
    """``x @ W`` in TensorFlow (exact in float64, differentiable), by the map that holds fewer values.

    Rotating a batch of B inputs holds ``B p k^2`` values, the matrix ``4 q p k^2``: rotation while
    ``B <= 4q``, else the matrix (training memory only: hardware and reference never build it).
    At the UCF11 shape (k = 256, q = 1) a batch of 32 would rotate 472 M values per frame (killed
    for memory in training), the matrix is 59 M (about 4x a dense mat-vec's time with its gradient).
    x: (batch, n_in); vectors: (4q, p, k). Returns (batch, 4H).
    """
    output_blocks = shape.gates * shape.q
    batch = x.shape[0]
    if batch is not None:
        by = matvec_by_rotation if batch <= output_blocks else matvec_by_kernel
        return by(x, vectors, shape)
    return tf.cond(
        tf.shape(x)[0] <= output_blocks,
        lambda: matvec_by_rotation(x, vectors, shape),
        lambda: matvec_by_kernel(x, vectors, shape),
    )


class BlockCirculantLSTMCell(SizedByInput, QuantizedLSTMCell):
    """LSTM cell whose input and recurrent matrices are block-circulant.

    Weights: ``circulant_kernel`` (4q, p, k) and ``circulant_recurrent_kernel`` (4q_r, p_r, k_r),
    output block first (``g = gate * q + j``), rounded by ``kernel_quantizer`` and
    ``recurrent_quantizer``. ``input_dim`` is the frame size; None until the layer is built.
    """

    def __init__(self, units, block_size, recurrent_block_size=None, input_dim=None, **kwargs):
        super().__init__(units, **kwargs)
        self.block_size = check_block_size(block_size)
        self.recurrent_block_size = self.block_size if recurrent_block_size is None else recurrent_block_size
        self.recurrent_shape = BCShape.create(self.units, self.units, self.recurrent_block_size, "recurrent_block_size")
        self.set_input_dim(input_dim)

    def input_map_structure(self, input_dim):
        return BCShape.create(input_dim, self.units, self.block_size)

    def input_map_weight_shapes(self):
        return {"circulant_kernel": self.decomposition.vector_shape}

    def input_map(self, x, weights):
        zx = circulant_matvec(x, weights[0], self.decomposition)  # (batch, 4H), exact
        return self.quantize(zx, "accumulator_quantizer")

    def decompose(self, matrix):
        vectors, error = bc_project(matrix, self.decomposition)
        return [vectors], error

    def recurrent_map_weight_shapes(self):
        return {"circulant_recurrent_kernel": self.recurrent_shape.vector_shape}

    def recurrent_map(self, h, weights):
        return circulant_matvec(h, weights[0], self.recurrent_shape)  # (batch, 4H), exact

    def recurrent_map_macs(self):
        return self.recurrent_shape.macs

    def decompose_recurrent(self, matrix):
        vectors, error = bc_project(matrix, self.recurrent_shape)
        return [vectors], error

    def get_config(self):
        config = {
            "block_size": int(self.block_size),
            "recurrent_block_size": int(self.recurrent_block_size),
        }
        return {**super().get_config(), **config}


class BlockCirculantLSTM(QuantizedRNN):
    """Keras RNN layer over ``BlockCirculantLSTMCell``.

    Args:
        units: hidden size H.
        block_size: k of the input matrix's circulant blocks (1: dense; up to max(n_in, H)).
        recurrent_block_size: k of the recurrent matrix's blocks (default: ``block_size``).
        kernel_quantizer, recurrent_quantizer, bias_quantizer, state_quantizer,
        input_quantizer, accumulator_quantizer, activation_quantizer: see ``QuantizedLSTMCell``.
        activation, recurrent_activation, return_sequences, stateful: as in Keras' LSTM.

    ``BlockCirculantLSTM.from_dense(kernel, recurrent_kernel, bias, block_size, recurrent_block_size)``
    projects a dense LSTM's weights and returns ``(layer, relative_error)``.
    """

    cell_class = BlockCirculantLSTMCell
    family = "bc_lstm"

    @classmethod
    def for_task(cls, n_features, units, n_modes=4, rank=4, **kwargs):
        """``rank`` is the block size of both matrices (None: 1, the dense LSTM); ``n_modes`` is unused."""
        block = 1 if rank is None else min(int(rank), max(n_features, units))
        return cls(units, block_size=block, recurrent_block_size=min(block, units), **kwargs)
