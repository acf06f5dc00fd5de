"""Row-balanced dual-ratio sparse LSTM (BRDS, arXiv 2101.02667) in inference form.

Both weight matrices of all four gates are row-balanced sparse (``models.row_balanced``): every
output row of the input matrix keeps ``nnz_x`` values, every row of the recurrent matrix
``nnz_h``, each with its column indices, the two counts set by separate sparsity ratios
(``input_sparsity``, ``recurrent_sparsity``: BRDS picks them by each matrix's sensitivity). The
values are rounded by ``kernel_quantizer`` / ``recurrent_quantizer``; the indices are integer
weights (``index_weight_names``), never trained or rounded. The input map is rounded once to the
accumulator type, the recurrent map is exact (as the dense ``h @ U``).

``RowBalancedSparseLSTM.from_dense`` keeps the largest magnitudes of each row of a dense LSTM's
matrices (one-shot); ``models.pruning`` prunes gradually with fine-tuning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from models.lstm_cell import LSTMCost, QuantizedLSTMCell, QuantizedRNN, SizedByInput
from models.row_balanced import RBShape, check_sparsity, rb_prune


@dataclass(frozen=True)
class SparseLSTMCost(LSTMCost):
    """``LSTMCost`` plus the stored indices (one per stored value, at their bit widths)."""

    input_index_bits: int = 0
    recurrent_index_bits: int = 0

    def memory_bits(self, kernel_bits: int, recurrent_bits: int, bias_bits: int) -> int:
        """Bits of the weights: values at their quantizers' widths, indices at theirs, the bias."""
        return (
            self.input_map_params * (kernel_bits + self.input_index_bits)
            + self.recurrent_params * (recurrent_bits + self.recurrent_index_bits)
            + self.bias_params * bias_bits
        )


def rbs_lstm_shapes(n_in, units, input_sparsity, recurrent_sparsity) -> tuple:
    """The row-balanced shapes of the input ``(n_in, 4H)`` and recurrent ``(H, 4H)`` matrices."""
    return (
        RBShape.create(n_in, 4 * units, input_sparsity, "input_sparsity"),
        RBShape.create(units, 4 * units, recurrent_sparsity, "recurrent_sparsity"),
    )


def rbs_lstm_cost(n_in, units, input_sparsity, recurrent_sparsity) -> SparseLSTMCost:
    """Counts for a row-balanced sparse LSTM; ``memory_bits`` adds the indices."""
    inputs, recurrent = rbs_lstm_shapes(n_in, units, input_sparsity, recurrent_sparsity)
    cost = LSTMCost.of(inputs, units, recurrent_shape=recurrent)
    return SparseLSTMCost(**vars(cost), input_index_bits=inputs.index_bits, recurrent_index_bits=recurrent.index_bits)


def sparse_matvec(x, values, indices):
    """``x @ W`` from the stored rows in TensorFlow (exact in float64, differentiable in the values).

    x: (batch, n_in); values (4H, nnz) and indices (4H, nnz). Returns (batch, 4H).
    """
    gathered = tf.gather(x, indices, axis=1)  # (batch, 4H, nnz): the inputs each row multiplies
    return tf.einsum("bon,on->bo", gathered, values)


class RowBalancedSparseLSTMCell(SizedByInput, QuantizedLSTMCell):
    """LSTM cell whose input and recurrent matrices are row-balanced sparse.

    Weights: ``sparse_kernel`` / ``kernel_indices`` (4H, nnz_x) and ``sparse_recurrent_kernel`` /
    ``recurrent_indices`` (4H, nnz_h). ``input_dim`` is the frame size; None until built.
    """

    index_weight_names = ("kernel_indices", "recurrent_indices")

    def __init__(self, units, input_sparsity, recurrent_sparsity=None, input_dim=None, **kwargs):
        super().__init__(units, **kwargs)
        self.input_sparsity = check_sparsity(input_sparsity, "input_sparsity")
        self.recurrent_sparsity = check_sparsity(
            self.input_sparsity if recurrent_sparsity is None else recurrent_sparsity, "recurrent_sparsity"
        )
        self.recurrent_shape = RBShape.create(self.units, 4 * self.units, self.recurrent_sparsity, "recurrent_sparsity")
        self.set_input_dim(input_dim)

    def input_map_structure(self, input_dim):
        return RBShape.create(input_dim, 4 * self.units, self.input_sparsity, "input_sparsity")

    def input_map_weight_shapes(self):
        shape = self.decomposition.stored_shape
        return {"sparse_kernel": shape, "kernel_indices": shape}

    @staticmethod
    def map_initializer(shape: RBShape, name: str):
        """Indices: ``nnz`` spread columns per row (a valid structure before any pruning); values:
        normal with the variance of a Glorot-initialized dense row of ``nnz`` inputs."""
        if name.endswith("indices"):
            return lambda _, dtype=None: tf.constant(shape.spread_indices(), dtype=dtype)
        return tf.keras.initializers.RandomNormal(stddev=np.sqrt(2.0 / (shape.nnz + shape.n_out)))

    def input_map_initializer(self, name):
        return self.map_initializer(self.decomposition, name)

    def recurrent_map_initializer(self, name):
        return self.map_initializer(self.recurrent_shape, name)

    def input_map(self, x, weights):
        values, indices = weights
        return self.quantize(sparse_matvec(x, values, indices), "accumulator_quantizer")

    def decompose(self, matrix):
        values, indices, error = rb_prune(matrix, self.decomposition)
        return [values, indices], error

    def recurrent_map_weight_shapes(self):
        shape = self.recurrent_shape.stored_shape
        return {"sparse_recurrent_kernel": shape, "recurrent_indices": shape}

    def recurrent_map(self, h, weights):
        values, indices = weights
        return sparse_matvec(h, values, indices)

    def recurrent_map_macs(self):
        return self.recurrent_shape.macs

    def decompose_recurrent(self, matrix):
        values, indices, error = rb_prune(matrix, self.recurrent_shape)
        return [values, indices], error

    def check_index_weights(self, weights: dict, layer_name: str) -> None:
        """Every stored row has exactly nnz columns in range, none repeated (ValueError naming the
        layer, the row and the value)."""
        shapes = {"kernel_indices": self.decomposition, "recurrent_indices": self.recurrent_shape}
        for name, indices in weights.items():
            shapes[name].check_indices(indices, f"layer '{layer_name}' {name}")

    def get_config(self):
        config = {
            "input_sparsity": self.input_sparsity,
            "recurrent_sparsity": self.recurrent_sparsity,
        }
        return {**super().get_config(), **config}


class RowBalancedSparseLSTM(QuantizedRNN):
    """Keras RNN layer over ``RowBalancedSparseLSTMCell``.

    Args:
        units: hidden size H.
        input_sparsity: fraction of each row of the input matrix pruned, in [0, 1) (0: dense).
        recurrent_sparsity: the same for the recurrent matrix (default: ``input_sparsity``).
        kernel_quantizer, recurrent_quantizer, bias_quantizer, state_quantizer,
        input_quantizer, accumulator_quantizer, activation_quantizer: see ``QuantizedLSTMCell``.
        activation, recurrent_activation, return_sequences, stateful: as in Keras' LSTM.

    ``RowBalancedSparseLSTM.from_dense(kernel, recurrent_kernel, bias, input_sparsity,
    recurrent_sparsity)`` keeps each row's largest magnitudes; returns ``(layer, relative_error)``.
    """

    cell_class = RowBalancedSparseLSTMCell
    family = "rbs_lstm"

    @classmethod
    def for_task(cls, n_features, units, n_modes=4, rank=4, **kwargs):
        """``rank`` r keeps 1/r of each row of both matrices (None: dense); ``n_modes`` is unused."""
        sparsity = 0.0 if rank is None else 1.0 - 1.0 / int(rank)
        return cls(units, input_sparsity=sparsity, recurrent_sparsity=sparsity, **kwargs)
