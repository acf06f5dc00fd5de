"""hls4ml plugin for ``models.BlockCirculantLSTM``: both maps block-circulant (nnet_bc_lstm.h).

Each map is one ``nnet::bc_matvec_config`` (``CirculantSchedule``): the input arrives one block of
``k`` values at a time, and every cycle takes ``terms`` consecutive inputs of the block against
``lanes`` output blocks (``lanes * terms`` multipliers). The reuse factor R sets them as for every
kernel: an output's ``p * k`` terms in at most R cycles, so ``lanes * terms >= ceil(p * k / R)``,
``terms`` the smallest divisor of ``k`` that gets there (up to ``k``), then ``lanes`` the smallest
divisor of ``4q``. The vectors are stored ``[i][group][d][lane]`` (``weight_layout``) so that the
cycle's ``terms`` consecutive diagonals and its ``lanes`` blocks fall in distinct cyclic banks, each
a constant of the unrolled loops (``read_conflicts`` checks it on the schedule); the inputs of
those diagonals come from a window of registers rotated every cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hls_project.cost import Memory, Stage
from hls_project.lstm_cell import LSTMFamilyLayer
from hls_project.reference import requantize_recorded
from hls_project.scheduled_maps import ScheduledMaps
from hls_project.sizing import multiplier_limit, smallest_divisor_reaching
from models.bc_lstm import BlockCirculantLSTM
from models.circulant import BCShape, bc_matvec

MATVEC_TEMPLATE = """// {what}: {shape.n_in} -> 4 x {shape.units} in {schedule.blocks} circulant blocks of \
{shape.block_size}; {shape.macs} MACs per frame,
// {schedule.lanes} x {schedule.terms} multipliers ({schedule.product_cycles} cycles of products)
struct config{index}_{suffix} : nnet::bc_matvec_config {{
    static const unsigned n_in = {shape.n_in};
    static const unsigned n_state = {shape.units};
    static const unsigned k = {shape.block_size};
    static const unsigned p = {shape.p};
    static const unsigned q = {shape.q};
    static const unsigned lanes = {schedule.lanes};
    static const unsigned terms = {schedule.terms};
    static const unsigned multiplier_limit = {schedule.multipliers};
    typedef {weight_types[0]} vector_t;
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
        """``(block, group, round)`` cycles whose vector reads share a cyclic bank (``lanes * terms``
        banks), the addresses as the kernel forms them: diagonals ``round * terms + u`` of every
        lane (each row of a group reads the same ones; its inputs come from the window). The
        kernel needs none. Checked on input block 0 (the others only shift the address by a
        multiple of the bank count)."""
        k, banks = self.shape.block_size, self.lanes * self.terms
        conflicts = []
        for g in range(self.groups):
            for first in range(0, k, self.terms):
                d = first + np.arange(self.terms)
                addresses = ((g * k + d)[:, None] * self.lanes + np.arange(self.lanes)[None, :]).ravel()
                if len(set(addresses % banks)) != addresses.size:
                    conflicts.append((0, g, first // self.terms))
        return conflicts

    @property
    def terms_per_output(self) -> int:
        return self.shape.n_in

    template = MATVEC_TEMPLATE

    @property
    def blocks(self) -> int:
        return self.shape.gates * self.shape.q * self.shape.p

    def stages(self, what: str, in_bits: int, vector_bits: int, mac_bits: int) -> list:
        """The map's ``hls_project.cost.Stage`` per frame, loop by loop as nnet_bc_lstm.h runs it."""
        shape, k = self.shape, self.shape.block_size
        vectors = Memory(f"{what} vectors", shape.n_params, vector_bits, self.multipliers)
        acc = Memory(f"{what} acc", shape.gates * shape.q * k, mac_bits, self.lanes)
        block = Memory(f"{what} input block", k, in_bits, k)  # registers: the window loads it at once
        window = Memory(f"{what} input window", k, in_bits, k)  # registers, rotated every cycle
        partial = Memory(f"{what} partial sums", self.lanes, mac_bits, self.lanes)  # registers
        # Read and the products run once per input block (p entries); the output's Rows loop once
        # per output block (4 q entries)
        return [
            Stage(f"{what} read", shape.padded_in, 1, memories=(block,), entries=shape.p),
            Stage(
                f"{what} products",
                self.product_cycles,
                1,
                self.multipliers,
                (in_bits, vector_bits),
                mac_bits,
                (vectors, acc, partial, window),
                reads=((vectors.name, self.multipliers),),
                entries=shape.p,
                fold=what,
            ),
            Stage(f"{what} output", shape.gates * shape.q * k, 1, entries=shape.gates * shape.q),
        ]


class BlockCirculantLSTMLayer(ScheduledMaps, LSTMFamilyLayer):
    """IR of a block-circulant LSTM: the shared LSTM block, ``circulant_kernel`` and ``circulant_recurrent_kernel``."""

    keras_class = BlockCirculantLSTM
    headers = ("nnet_bc_lstm.h",)
    schedule_class = CirculantSchedule
    kernel_prefix = "bc"
    input_reader = "nnet::join_reader<data_T, config{index}>"  # value by value

    @staticmethod
    def input_map_reference(cell, weights, types, frac):
        shape = cell.decomposition
        return lambda x: requantize_recorded(
            "input map", bc_matvec(x, weights[0], shape), frac + types.kernel.frac, types.accumulator
        )

    @staticmethod
    def recurrent_map_reference(cell, weights, types):
        return lambda h: (bc_matvec(h, weights[0], cell.recurrent_shape), types.state.frac + types.recurrent.frac)
