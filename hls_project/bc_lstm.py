"""hls4ml plugin for ``models.BlockCirculantLSTM``: both maps block-circulant (nnet_bc_lstm.h).

Each map is one ``nnet::bc_matvec_config`` (``CirculantSchedule``): the input arrives one block of
``k`` values at a time, and every cycle takes ``terms`` consecutive inputs of the block against
``lanes`` output blocks (``lanes * terms`` multipliers). The reuse factor R sets them as for every
kernel: an output's ``p * k`` terms in at most R cycles, so ``lanes * terms >= ceil(p * k / R)``,
``terms`` the smallest divisor of ``k`` that gets there (up to ``k``), then ``lanes`` the smallest
divisor of ``4q``. The vectors are stored ``[i][group][d][lane]`` (``weight_layout``) so that the
cycle's ``terms`` diagonals ``(r - s) mod k`` and its ``lanes`` blocks fall in distinct cyclic banks
(``read_conflicts`` checks it on the schedule).
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
from models.bc_lstm import BlockCirculantLSTM
from models.circulant import BCShape, bc_matvec

MATVEC_TEMPLATE = """// {what}: {n_in} -> 4 x {n_state} in {blocks} circulant blocks of {k}; {macs} MACs per frame,
// {lanes} x {terms} multipliers ({cycles} cycles of products)
struct config{index}_{suffix} : nnet::bc_matvec_config {{
    static const unsigned n_in = {n_in};
    static const unsigned n_state = {n_state};
    static const unsigned k = {k};
    static const unsigned p = {p};
    static const unsigned q = {q};
    static const unsigned lanes = {lanes};
    static const unsigned terms = {terms};
    static const unsigned multiplier_limit = {multiplier_limit};
    typedef {vector_t} vector_t;
    typedef {mac_t} mac_t;
}};
"""


@dataclass(frozen=True)
class CirculantSchedule:
    """One block-circulant mat-vec as ``nnet::bc_block_products`` runs it at a reuse factor."""

    shape: BCShape
    lanes: int
    terms: int

    @classmethod
    def at(cls, shape: BCShape, reuse_factor: int) -> CirculantSchedule:
        need = multiplier_limit(shape.padded_in, reuse_factor)
        terms = smallest_divisor_reaching(shape.block_size, need)
        lanes = smallest_divisor_reaching(shape.gates * shape.q, -(-need // terms))
        return cls(shape, lanes, terms)

    @property
    def groups(self) -> int:
        return self.shape.gates * self.shape.q // self.lanes

    @property
    def multipliers(self) -> int:
        return self.lanes * self.terms

    @property
    def product_cycles(self) -> int:
        """Cycles of ``Products`` per map: one per (input block, group, output row, round)."""
        k = self.shape.block_size
        return self.shape.p * self.groups * k * (k // self.terms)

    def layout(self, vectors) -> np.ndarray:
        """Keras ``(4q, p, k)`` vectors in the kernel's order ``[i][group][d][lane]``, flat."""
        k, p = self.shape.block_size, self.shape.p
        return np.asarray(vectors).reshape(self.groups, self.lanes, p, k).transpose(2, 0, 3, 1).reshape(-1)

    def read_conflicts(self) -> list:
        """``(block, group, r, round)`` cycles whose vector reads share a cyclic bank (``lanes * terms``
        banks); the kernel needs none. Checked on every cycle of input block 0 (the others only shift
        the address by a multiple of the bank count)."""
        k, banks = self.shape.block_size, self.lanes * self.terms
        conflicts = []
        for g in range(self.groups):
            for r in range(k):
                for first in range(0, k, self.terms):
                    s = first + np.arange(self.terms)
                    d = (r - s) % k
                    addresses = ((g * k + d)[:, None] * self.lanes + np.arange(self.lanes)[None, :]).ravel()
                    if len(set(addresses % banks)) != addresses.size:
                        conflicts.append((0, g, r, first // self.terms))
        return conflicts

    def config(self, what, index, suffix, vector_t, mac_t) -> str:
        shape = self.shape
        return MATVEC_TEMPLATE.format(
            what=what,
            index=index,
            suffix=suffix,
            n_in=shape.n_in,
            n_state=shape.units,
            blocks=shape.gates * shape.q * shape.p,
            k=shape.block_size,
            p=shape.p,
            q=shape.q,
            lanes=self.lanes,
            terms=self.terms,
            multiplier_limit=self.multipliers,
            macs=shape.macs,
            cycles=self.product_cycles,
            vector_t=vector_t,
            mac_t=mac_t,
        )

    def stages(self, what: str, in_bits: int, vector_bits: int, mac_bits: int) -> list:
        """The map's ``hls_project.cost.Stage`` per frame, loop by loop as nnet_bc_lstm.h runs it."""
        shape, k = self.shape, self.shape.block_size
        vectors = Memory(f"{what} vectors", shape.n_params, vector_bits, self.multipliers)
        acc = Memory(f"{what} acc", shape.gates * shape.q * k, mac_bits, self.lanes)
        block = Memory(f"{what} input block", k, in_bits, self.terms)
        return [
            Stage(f"{what} read", shape.padded_in, 1, memories=(block,)),
            Stage(
                f"{what} products",
                self.product_cycles,
                1,
                self.multipliers,
                (in_bits, vector_bits),
                mac_bits,
                (vectors, acc),
            ),
            Stage(f"{what} output", shape.gates * shape.q * k, 1),
        ]


class BlockCirculantLSTMLayer(LSTMFamilyLayer):
    """IR of a block-circulant LSTM: the shared LSTM block, ``circulant_kernel`` and ``circulant_recurrent_kernel``."""

    keras_class = BlockCirculantLSTM
    headers = ("nnet_bc_lstm.h",)

    @staticmethod
    def input_map_reference(cell, weights, types, frac):
        shape = cell.decomposition
        return lambda x: requantize_raw(bc_matvec(x, weights[0], shape), frac + types.kernel.frac, types.accumulator)

    @staticmethod
    def recurrent_map_reference(cell, weights, types):
        return lambda h: (bc_matvec(h, weights[0], cell.recurrent_shape), types.state.frac + types.recurrent.frac)

    def schedules(self, reuse_factor=None) -> tuple:
        """The input map's and the recurrent map's ``CirculantSchedule`` at ``reuse_factor`` (default:
        the layer's)."""
        reuse_factor = reuse_factor or self.get_attr("reuse_factor", 1)
        cell = self.cell
        return CirculantSchedule.at(cell.decomposition, reuse_factor), CirculantSchedule.at(
            cell.recurrent_shape, reuse_factor
        )

    def weight_layout(self, name, data):
        names = ("circulant_kernel", "circulant_recurrent_kernel")
        return dict(zip(names, self.schedules(layout_reuse_factor(self)), strict=True))[name].layout(data)

    def mac_types(self) -> tuple:
        """Exact sums of the input map (``p * k`` products of a frame value and a vector value) and
        of the recurrent map (its output type ``rec_t``)."""
        types = self.lstm_types
        return (
            product_sum_type(self.cell.decomposition.n_in, map_input_type(types, False), types.kernel),
            self.recurrent_map_type(),
        )

    def recurrent_map_type(self):
        types = self.lstm_types
        return product_sum_type(self.cell.recurrent_shape.n_in, types.state, types.recurrent)

    def input_map_configs(self):
        (inputs, recurrent), (input_mac, recurrent_mac) = self.schedules(), self.mac_types()
        return inputs.config(
            "input map", self.index, "x", self.get_weights("circulant_kernel").type.name, exact_cpp(input_mac)
        ) + recurrent.config(
            "recurrent map",
            self.index,
            "h",
            self.get_weights("circulant_recurrent_kernel").type.name,
            exact_cpp(recurrent_mac),
        )

    def input_map_cpp(self):
        vectors = self.weight_vars("input_map")[0]
        return (
            "    template <class data_T>\n"
            "    static void input_map(hls::stream<data_T> &frame, const state_t h[n_state],\n"
            "                          accum_t zx[4 * n_state]) {\n"
            f"        nnet::bc_input_map<config{self.index}, config{self.index}_x, data_T>(frame, h, zx, {vectors});\n"
            "    }"
        )

    def recurrent_map_cpp(self):
        vectors = self.weight_vars("recurrent_map")[0]
        return (
            "    static void recurrent_map(const state_t h[n_state], rec_t zh[4 * n_state]) {\n"
            f"        nnet::bc_array_map<config{self.index}_h>(h, zh, {vectors});\n"
            "    }"
        )

    def input_map_stages(self):
        types = self.lstm_types
        return self.schedules()[0].stages("input map", types.input.width, types.kernel.width, self.mac_types()[0].width)

    def recurrent_map_stages(self):
        types = self.lstm_types
        return self.schedules()[1].stages(
            "recurrent map", types.state.width, types.recurrent.width, self.mac_types()[1].width
        )
