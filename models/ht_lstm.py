"""HT-LSTM and FDHT-LSTM (hierarchical Tucker): the input-to-hidden map of all gates as one HT matrix.

As in ``models.tt_lstm`` the gate factor 4 is folded into the first output mode and the map runs
core by core in the cheapest order for streaming (``HTShape.stream_order``: each core contracted
as the buffer streams in, at most ``LIVE_WORDS`` sums per row: the hardware's frame pipeline),
rounded to the accumulator type after every core.
Cores are ``core_<node>``: leaves ``(n_k, m_k, r_k)``, transfer tensors ``(r_left, r_right,
r_node)``. The HT-LSTM's recurrent matrix is dense; the FDHT-LSTM has none (fused).

Counts on the UCF11 shape (57,600 -> 4 x 256, input modes [8, 20, 20, 18], output modes
[4, 4, 4, 4], balanced tree, every rank 4, root 1): 1,584 parameters in the HT cores and
264,752 in the whole layer (223.8x fewer than the dense 59,245,568; the published HT-LSTM has
0.266 M, 222.7x, with ranks the seeds do not give); the streaming order does the HT mat-vec in
2,084,864 MACs per frame with at most 1,024 sums per row (the cheapest order that finishes every
node's children first, which this module ran before: 2,789,376 MACs through a 65,536-word
buffer).
"""

from __future__ import annotations

from itertools import permutations
from math import prod

import tensorflow as tf

from models.decomposition import factor_modes, padded_modes
from models.ht import HTShape, ht_svd
from models.lstm_cell import LSTMCost, QuantizedLSTMCell, QuantizedRNN, fold_gate_modes


def ht_lstm_shape(input_modes, output_modes, ht_ranks, units=None) -> HTShape:
    """The HT shape of the input map, with the gate factor folded into the first output mode."""
    return HTShape.create(input_modes, fold_gate_modes(output_modes, units), ht_ranks)


def divisor_count(n: int) -> int:
    return sum(n % k == 0 for k in range(1, n + 1))


def stream_modes(modes, output_modes, ht_ranks) -> list:
    """``modes`` in the order a stream takes best: the last two (whose product is the first
    contraction's row in a balanced tree) with the most divisors, so that a stream's pack of a few
    values tiles that row in most ways; then the order with the fewest MACs (``stream_order``)."""
    orders = sorted(set(permutations(modes)))
    most = max(divisor_count(prod(order[-2:])) for order in orders)
    packable = [order for order in orders if divisor_count(prod(order[-2:])) == most]
    return list(min(packable, key=lambda order: ht_lstm_shape(order, output_modes, ht_ranks).macs))


def ht_lstm_cost(input_modes, output_modes, ht_ranks) -> LSTMCost:
    """Counts for an HT-LSTM; ``input_map_macs`` and the peak buffer follow its streaming order."""
    return LSTMCost.of(ht_lstm_shape(input_modes, output_modes, ht_ranks), prod(output_modes))


def fdht_lstm_cost(input_modes, output_modes, ht_ranks, n_in) -> LSTMCost:
    """Counts for an FDHT-LSTM with ``n_in`` features per frame (no dense recurrent matrix)."""
    shape = ht_lstm_shape(input_modes, output_modes, ht_ranks)
    return LSTMCost.of(shape, prod(output_modes), n_in=n_in, fused_recurrent=True)


class HTLSTMCell(QuantizedLSTMCell):
    """LSTM cell whose input-to-hidden map is an HT matrix over a balanced binary tree."""

    def __init__(self, units, input_modes, output_modes, ht_ranks, **kwargs):
        super().__init__(units, **kwargs)
        self.ht_shape = ht_lstm_shape(input_modes, output_modes, ht_ranks, units)
        self.input_modes = list(self.ht_shape.input_modes)
        self.output_modes = [int(m) for m in output_modes]
        self.ht_ranks = list(self.ht_shape.ranks)

    @property
    def decomposition(self) -> HTShape:
        return self.ht_shape

    def input_map_weight_shapes(self):
        return {f"core_{node.index}": self.ht_shape.core_shape(node.index) for node in self.ht_shape.nodes}

    def input_map(self, x, weights):
        buffer = x  # (batch, n1*..*nd)
        for step in self.ht_shape.schedule():
            # core: (i, b, a, j), its stored axes in read order; view: (batch, l, i, p, b, e)
            core = tf.reshape(tf.transpose(weights[step.node], step.axes), step.core_shape)
            view = tf.reshape(buffer, (-1, step.rows, step.n_in, step.n_right, step.rank_in, step.trail))
            out = tf.einsum("zlipbe,ibaj->zljpae", view, core)  # (batch, l, j, p, a, e)
            buffer = self.quantize(tf.reshape(out, (-1, step.out_size)), "accumulator_quantizer")
        return buffer  # (batch, 4H)

    def decompose(self, matrix):
        return ht_svd(matrix, self.ht_shape)

    def get_config(self):
        config = {"input_modes": self.input_modes, "output_modes": self.output_modes, "ht_ranks": self.ht_ranks}
        return {**super().get_config(), **config}


class HTLSTM(QuantizedRNN):
    """Keras RNN layer over ``HTLSTMCell``; arguments as ``TTLSTM`` with ``ht_ranks``.

    ``ht_ranks``: one rank per tree node in post-order (left subtree, right subtree, node),
    the root (last) 1; one int for every non-root node; or None (full rank).
    """

    cell_class = HTLSTMCell
    family = "ht_lstm"

    @classmethod
    def for_task(cls, n_features, units, n_modes=4, rank=4, **kwargs):
        input_modes, output_modes = cls.task_input_modes(n_features, units, n_modes, rank), factor_modes(units, n_modes)
        return cls(units, input_modes=input_modes, output_modes=output_modes, ht_ranks=rank, **kwargs)

    @staticmethod
    def task_input_modes(n_features, units, n_modes, rank) -> list:
        return factor_modes(n_features, n_modes)


class FDHTLSTMCell(HTLSTMCell):
    """Fully decomposed HT-LSTM cell: one HT map ``[x_t; h_{t-1}] -> 4H``, no dense matrix.

    ``input_modes`` factor ``n_in + units`` or a little more (the joined vector is zero-padded).
    """

    fused_recurrent = True


class FDHTLSTM(HTLSTM):
    """FDHT-LSTM (Yin et al., CVPR 2021): input and recurrent weights of all gates in one HT map.

    On UCF11 (57,600 features, 256 units) with input modes [8, 19, 20, 20] (60,800 >= 57,856,
    zero-padded; ``stream_modes``), output modes [4, 4, 4, 4] and every rank 6: 2,652 parameters in
    the cores and 3,676 with the biases (the published range is 3,132 to 8,808); 4,333,056 MACs per
    frame with at most 2,304 sums per row.
    """

    cell_class = FDHTLSTMCell
    family = "fdht_lstm"

    @staticmethod
    def task_input_modes(n_features, units, n_modes, rank) -> list:
        return stream_modes(padded_modes(n_features + units, n_modes), factor_modes(units, n_modes), rank)  # [x; h]
