"""hls4ml plugin for ``models.RowBalancedSparseLSTM``: both maps row-balanced sparse (nnet_rbs_lstm.h).

Each map is one ``nnet::rbs_matvec_config`` (``SparseSchedule``): ``pes`` processing elements,
PE ``p`` owning rows ``p, p + pes, ...``; every cycle each PE takes one term of its row. The reuse
factor R sets ``pes`` as for every kernel: a row's ``nnz`` terms in at most R cycles on average,
so ``pes >= ceil(nnz / R)``, the smallest divisor of ``4H`` that gets there (equal rows per PE:
no PE waits). Values and indices are stored ``[row group][slot][pe]`` (``weight_layout``) so that
PE ``p`` reads only its own cyclic bank; the input is copied once per two PEs (two ports per
block RAM). ``read_conflicts`` checks every cycle.

Schedule per frame (II = 1 in every loop): the frame's ``n_in`` values are stored as they stream
in (``n_in`` cycles), then ``4H / pes * nnz_x`` cycles of input products; the recurrent map copies
``h`` (``H`` cycles) and takes ``4H / pes * nnz_h`` cycles. The input and recurrent products run
one after the other (the shared cell calls the input map, then the recurrent map); overlapping
them across frames, as BRDS does, is not done.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fixedpoint import requantize_raw
from hls_project.cost import Memory, Stage
from hls_project.lstm_cell import (
    LSTMFamilyLayer,
    exact_cpp,
    layout_reuse_factor,
    map_input_type,
    multiplier_limit,
    product_sum_type,
    smallest_divisor_reaching,
)
from models.rbs_lstm import RowBalancedSparseLSTM
from models.row_balanced import RBShape, rb_matvec

MATVEC_TEMPLATE = """// {what}: {n_in} -> {n_rows}, {nnz} of {n_in} columns per row (sparsity {sparsity:.4g});
// {pes} processing elements x {rows_per_pe} rows, {cycles} cycles of products, {copies} input copies
struct config{index}_{suffix} : nnet::rbs_matvec_config {{
    static const unsigned n_in = {n_in};
    static const unsigned n_rows = {n_rows};
    static const unsigned nnz = {nnz};
    static const unsigned pes = {pes};
    static const unsigned copies = {copies};
    typedef {value_t} value_t;
    typedef {index_t} index_t;
    typedef {mac_t} mac_t;
}};
"""

PORTS = 2  # reads per cycle of one block RAM copy of the input


@dataclass(frozen=True)
class SparseSchedule:
    """One row-balanced sparse mat-vec as ``nnet::rbs_products`` runs it at a reuse factor."""

    shape: RBShape
    pes: int

    @classmethod
    def at(cls, shape: RBShape, reuse_factor: int) -> SparseSchedule:
        return cls(shape, smallest_divisor_reaching(shape.n_out, multiplier_limit(shape.nnz, reuse_factor)))

    @property
    def copies(self) -> int:
        return -(-self.pes // PORTS)

    @property
    def rows_per_pe(self) -> int:
        return self.shape.n_out // self.pes

    @property
    def product_cycles(self) -> int:
        return self.rows_per_pe * self.shape.nnz

    def layout(self, stored) -> np.ndarray:
        """Keras ``(4H, nnz)`` values or indices in the kernel's order ``[row group][slot][pe]``, flat."""
        stored = np.asarray(stored)
        return stored.reshape(self.rows_per_pe, self.pes, self.shape.nnz).transpose(0, 2, 1).reshape(-1)

    def read_conflicts(self) -> list:
        """``(cycle, memory)`` pairs where a bank of the values or indices (``pes`` cyclic banks) is
        read twice, or a copy of the input more than ``PORTS`` times; the kernel needs none."""
        conflicts = []
        pe = np.arange(self.pes)
        for step in range(self.product_cycles):
            banks = (step * self.pes + pe) % self.pes  # the address each PE reads, as the kernel forms it
            if len(set(banks)) != self.pes:
                conflicts.append((step, "values/indices"))
            if np.bincount(pe // PORTS).max() > PORTS or (pe // PORTS).max() >= self.copies:
                conflicts.append((step, "input"))
        return conflicts

    def config(self, what, index, suffix, value_t, index_t, mac_t) -> str:
        shape = self.shape
        return MATVEC_TEMPLATE.format(
            what=what,
            index=index,
            suffix=suffix,
            n_in=shape.n_in,
            n_rows=shape.n_out,
            nnz=shape.nnz,
            sparsity=shape.sparsity,
            pes=self.pes,
            rows_per_pe=self.rows_per_pe,
            cycles=self.product_cycles,
            copies=self.copies,
            value_t=value_t,
            index_t=index_t,
            mac_t=mac_t,
        )

    def stages(self, what: str, in_bits: int, value_bits: int, mac_bits: int) -> list:
        """The map's ``hls_project.cost.Stage`` per frame, loop by loop as nnet_rbs_lstm.h runs it."""
        shape = self.shape
        values = Memory(f"{what} values", shape.n_params, value_bits, self.pes)
        indices = Memory(f"{what} indices", shape.n_params, shape.index_bits, self.pes)
        inputs = Memory(f"{what} input copies", self.copies * shape.n_in, in_bits, self.copies)
        return [
            Stage(f"{what} store input", shape.n_in, 1, memories=(inputs,)),
            Stage(
                f"{what} products", self.product_cycles, 1, self.pes, (in_bits, value_bits), mac_bits, (values, indices)
            ),
        ]


class RowBalancedSparseLSTMLayer(LSTMFamilyLayer):
    """IR of a row-balanced sparse LSTM: the shared LSTM block, values and indices of both maps."""

    keras_class = RowBalancedSparseLSTM
    headers = ("nnet_rbs_lstm.h",)

    @staticmethod
    def input_map_reference(cell, weights, types, frac):
        values, indices = weights
        return lambda x: requantize_raw(rb_matvec(x, values, indices), frac + types.kernel.frac, types.accumulator)

    @staticmethod
    def recurrent_map_reference(cell, weights, types):
        values, indices = weights
        return lambda h: (rb_matvec(h, values, indices), types.state.frac + types.recurrent.frac)

    def schedules(self, reuse_factor=None) -> tuple:
        """The input map's and the recurrent map's ``SparseSchedule`` at ``reuse_factor`` (default: the layer's)."""
        reuse_factor = reuse_factor or self.get_attr("reuse_factor", 1)
        return SparseSchedule.at(self.cell.decomposition, reuse_factor), SparseSchedule.at(
            self.cell.recurrent_shape, reuse_factor
        )

    def weight_layout(self, name, data):
        inputs, recurrent = self.schedules(layout_reuse_factor(self))
        schedule = inputs if name in ("sparse_kernel", "kernel_indices") else recurrent
        return schedule.layout(data)

    def mac_types(self) -> tuple:
        types = self.lstm_types
        return (
            product_sum_type(self.cell.decomposition.nnz, map_input_type(types, False), types.kernel),
            self.recurrent_map_type(),
        )

    def recurrent_map_type(self):
        types = self.lstm_types
        return product_sum_type(self.cell.recurrent_shape.nnz, types.state, types.recurrent)

    def map_config(self, schedule, what, suffix, part, mac) -> str:
        values, indices = (self.get_weights(name).type.name for name in self.get_attr(f"{part}_weight_names"))
        return schedule.config(what, self.index, suffix, values, indices, exact_cpp(mac))

    def input_map_configs(self):
        (inputs, recurrent), (input_mac, recurrent_mac) = self.schedules(), self.mac_types()
        return self.map_config(inputs, "input map", "x", "input_map", input_mac) + self.map_config(
            recurrent, "recurrent map", "h", "recurrent_map", recurrent_mac
        )

    def input_map_cpp(self):
        values, indices = self.weight_vars("input_map")
        return (
            "    template <class data_T>\n"
            "    static void input_map(hls::stream<data_T> &frame, const state_t h[n_state],\n"
            "                          accum_t zx[4 * n_state]) {\n"
            f"        nnet::rbs_input_map<config{self.index}, config{self.index}_x, data_T>(frame, h, zx, {values}, "
            f"{indices});\n"
            "    }"
        )

    def recurrent_map_cpp(self):
        values, indices = self.weight_vars("recurrent_map")
        return (
            "    static void recurrent_map(const state_t h[n_state], rec_t zh[4 * n_state]) {\n"
            f"        nnet::rbs_array_map<config{self.index}_h>(h, zh, {values}, {indices});\n"
            "    }"
        )

    def input_map_stages(self):
        types = self.lstm_types
        return self.schedules()[0].stages("input map", types.input.width, types.kernel.width, self.mac_types()[0].width)

    def recurrent_map_stages(self):
        types = self.lstm_types
        stages = self.schedules()[1].stages(
            "recurrent map", types.state.width, types.recurrent.width, self.mac_types()[1].width
        )
        return stages
