"""TT-LSTM (Yang et al., ICML 2017): the input-to-hidden map of all four gates is one TT matrix.

The gate factor 4 is folded into the first output mode: with ``output_modes = [m1, ..., md]``
(``prod = units``) the TT matrix has output modes ``[4*m1, m2, ..., md]``, so its flat output is
the usual Keras gate layout ``[i | f | c | o]``, each ``units`` wide. The recurrent matrix is
dense. The TT mat-vec is done core by core (``models.tt``), never densified, and its result is
rounded to the accumulator type after every core.
"""

from __future__ import annotations

from math import prod

import tensorflow as tf

from models.decomposition import factor_modes
from models.lstm_cell import LSTMCost, QuantizedLSTMCell, QuantizedRNN, fold_gate_modes
from models.tt import TTShape, tt_svd


def tt_lstm_shape(input_modes, output_modes, tt_ranks, units=None) -> TTShape:
    """The TT shape of the input map, with the gate factor folded into the first output mode."""
    return TTShape.create(input_modes, fold_gate_modes(output_modes, units), tt_ranks)


def tt_lstm_cost(input_modes, output_modes, tt_ranks) -> LSTMCost:
    """Counts for a TT-LSTM; ``input_map_macs`` is the TT mat-vec, last core first."""
    return LSTMCost.of(tt_lstm_shape(input_modes, output_modes, tt_ranks), prod(output_modes))


class TTLSTMCell(QuantizedLSTMCell):
    """LSTM cell whose input-to-hidden map is a TT matrix (cores ``core_0 .. core_{d-1}``).

    Core ``k`` has shape ``(r[k], n[k], m'[k], r[k+1])`` with ``m' = [4*m1, m2, ...]``; the cores
    are rounded by ``kernel_quantizer``, each contraction by ``accumulator_quantizer``.
    """

    def __init__(self, units, input_modes, output_modes, tt_ranks, kernel_initializer=None, **kwargs):
        super().__init__(units, **kwargs)
        self.tt_shape = tt_lstm_shape(input_modes, output_modes, tt_ranks, units=units)
        self.input_modes = list(self.tt_shape.input_modes)
        self.output_modes = [int(m) for m in output_modes]
        self.tt_ranks = list(self.tt_shape.ranks)
        self.kernel_initializer = kernel_initializer

    @property
    def decomposition(self) -> TTShape:
        return self.tt_shape

    def input_map_weight_shapes(self):
        return {f"core_{k}": self.tt_shape.core_shape(k) for k in range(self.tt_shape.n_cores)}

    def input_map_initializer(self, name):
        return tf.keras.initializers.get(self.kernel_initializer) or super().input_map_initializer(name)

    def input_map(self, x, weights):
        buffer = x  # (batch, n_in): modes (n1..nd), nothing contracted yet
        for step in self.tt_shape.schedule():
            core = weights[step.core]
            # t: (batch, n_left, n_in, n_right, rank_in); core: (rank_out, n_in, n_out, rank_in)
            t = tf.reshape(buffer, (-1, step.n_left, step.n_in, step.n_right, step.rank_in))
            # out: (batch, n_left, n_out, n_right, rank_out)
            out = tf.einsum("blipc,aijc->bljpa", t, core)
            buffer = self.quantize(tf.reshape(out, (-1, step.out_size)), "accumulator_quantizer")
        return buffer  # (batch, 4H): modes (4*m1, m2..md)

    def decompose(self, matrix):
        return tt_svd(matrix, self.tt_shape)

    def get_config(self):
        config = {
            "input_modes": self.input_modes,
            "output_modes": self.output_modes,
            "tt_ranks": self.tt_ranks,
        }
        return {**super().get_config(), **config}


class TTLSTM(QuantizedRNN):
    """Keras RNN layer over ``TTLSTMCell``.

    Args:
        units: hidden size H (= prod(output_modes)).
        input_modes: factorization of the frame size, e.g. [8, 20, 20, 18] for 57,600.
        output_modes: factorization of H, e.g. [4, 4, 4, 4]; the gate factor 4 is folded in.
        tt_ranks: d+1 ranks starting and ending with 1, one int for all inner ranks, or None
            (full rank: exact for any matrix).
        kernel_quantizer, recurrent_quantizer, bias_quantizer, state_quantizer,
        input_quantizer, accumulator_quantizer, activation_quantizer: see ``QuantizedLSTMCell``.
        activation, recurrent_activation, return_sequences, stateful: as in Keras' LSTM.

    ``TTLSTM.from_dense(kernel, recurrent_kernel, bias, input_modes, output_modes, tt_ranks)``
    initialises the cores by TT-SVD and returns ``(layer, relative_error)``.
    """

    cell_class = TTLSTMCell
    family = "tt_lstm"

    @classmethod
    def for_task(cls, n_features, units, n_modes=4, rank=4, **kwargs):
        input_modes, output_modes = factor_modes(n_features, n_modes), factor_modes(units, n_modes)
        return cls(units, input_modes=input_modes, output_modes=output_modes, tt_ranks=rank, **kwargs)
