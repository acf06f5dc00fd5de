"""hls4ml plugin for ``models.RowBalancedSparseLSTM``: both maps row-balanced sparse (nnet_rbs_lstm.h).

Each map is one ``nnet::rbs_matvec_config`` (``SparseSchedule``): ``pes`` processing elements,
PE ``p`` owning rows ``p, p + pes, ...`` (row group ``g``: rows ``g * pes + p``); every cycle each
PE takes one term of its row. The reuse factor R sets ``pes`` as for every kernel: a row's ``nnz``
terms in at most R cycles on average, so ``pes >= ceil(nnz / R)``, rounded up to an even count (the
input is copied once per two PEs, two ports per block RAM: an odd count would leave a port idle)
and at most ``4H``; when ``pes`` does not divide ``4H`` the last row group's missing rows hold zero
terms. Values and indices are stored ``[row group][slot][pe]`` (``weight_layout``) so that PE ``p``
reads only its own cyclic bank. ``read_conflicts`` checks every cycle.

Schedule per frame (II = 1 in every loop): the frame is stored as it streams in, a pack of the
layer's input stream per cycle (``n_in / pack`` cycles; ``LSTMFamilyLayer.input_pack``), then the
input products, a row group every ``max(nnz_x, pes)`` cycles, whose sums go straight into the zx
FIFO one per cycle while the next group accumulates (``input_map_streams_zx``: no send); the
recurrent map copies ``h`` (``H`` cycles) and takes ``nnz_h`` cycles per row group into ``zh``. The
input map of frame t + 1 runs while the recurrent map and cell of frame t do (``nnet::lstm_call``,
as BRDS overlaps them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hls_project.cost import Memory, Stage
from hls_project.lstm_cell import LSTMFamilyLayer
from hls_project.reference import requantize_recorded
from hls_project.scheduled_maps import ScheduledMaps
from hls_project.sizing import multiplier_limit
from models.rbs_lstm import RowBalancedSparseLSTM
from models.row_balanced import RBShape, rb_matvec

MATVEC_TEMPLATE = """// {what}: {shape.n_in} -> {shape.n_out}, {shape.nnz} of {shape.n_in} columns per row \
(sparsity {shape.sparsity:.4g});
// {schedule.pes} processing elements x {schedule.groups} rows, {schedule.copies} input copies
struct config{index}_{suffix} : nnet::rbs_matvec_config {{
    static const unsigned n_in = {shape.n_in};
    static const unsigned n_rows = {shape.n_out};
    static const unsigned nnz = {shape.nnz};
    static const unsigned pes = {schedule.pes};
    static const unsigned groups = {schedule.groups};
    static const unsigned copies = {schedule.copies};
    typedef {weight_types[0]} value_t;
    typedef {weight_types[1]} index_t;
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
        need = multiplier_limit(shape.nnz, reuse_factor)
        return cls(shape, min(shape.n_out, PORTS * -(-need // PORTS)))

    @property
    def copies(self) -> int:
        return -(-self.pes // PORTS)

    @property
    def groups(self) -> int:
        """Row groups (rows per PE): the last one short of rows when ``pes`` does not divide 4H."""
        return -(-self.shape.n_out // self.pes)

    @property
    def product_cycles(self) -> int:
        return self.groups * self.shape.nnz

    def layout(self, stored) -> np.ndarray:
        """Keras ``(4H, nnz)`` values or indices in the kernel's order ``[row group][slot][pe]``, flat,
        the last group's missing rows zero."""
        stored = np.asarray(stored)
        padded = np.zeros((self.groups * self.pes, self.shape.nnz), stored.dtype)
        padded[: self.shape.n_out] = stored
        return padded.reshape(self.groups, self.pes, self.shape.nnz).transpose(0, 2, 1).reshape(-1)

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

    @property
    def terms_per_output(self) -> int:
        return self.shape.nnz

    template = MATVEC_TEMPLATE

    def stages(self, what: str, in_bits: int, value_bits: int, mac_bits: int, pack: int = 1, fifo=False) -> list:
        """The map's ``hls_project.cost.Stage`` per frame, loop by loop as nnet_rbs_lstm.h runs it:
        the input stored ``pack`` values per cycle (the input map: its stream's pack, a bank per
        value of every copy; the recurrent map copies h a value per cycle); the products into an
        array, or (``fifo``) into a FIFO, a group every ``max(nnz, pes)`` cycles, then the last
        group's sums (its tail)."""
        shape = self.shape
        terms = self.product_cycles * self.pes  # the layout's, the last group's missing rows included
        values = Memory(f"{what} values", terms, value_bits, self.pes)
        indices = Memory(f"{what} indices", terms, shape.index_bits, self.pes)
        inputs = Memory(f"{what} input copies", self.copies * shape.n_in, in_bits, self.copies * pack)
        # a register per PE (and, into a FIFO, one per PE for the previous group's sums, leaving)
        registers = self.pes * (2 if fifo else 1)
        sums = Memory(f"{what} row sums", registers, mac_bits, registers)
        group_cycles = max(shape.nnz, self.pes) if fifo else shape.nnz
        return [
            Stage(f"{what} store input", shape.n_in // pack, 1, memories=(inputs,)),
            Stage(
                f"{what} products",
                self.groups * group_cycles,
                1,
                self.pes,
                (in_bits, value_bits),
                mac_bits,
                (values, indices, sums),
                reads=((values.name, self.pes), (indices.name, self.pes)),
                fold=what,
                tail=self.pes if fifo else 0,
            ),
        ]


class RowBalancedSparseLSTMLayer(ScheduledMaps, LSTMFamilyLayer):
    """IR of a row-balanced sparse LSTM: the shared LSTM block, values and indices of both maps."""

    keras_class = RowBalancedSparseLSTM
    headers = ("nnet_rbs_lstm.h",)
    schedule_class = SparseSchedule
    kernel_prefix = "rbs"
    input_reader = "nnet::pack_reader<input_t, data_T::size>"  # a stream element per cycle
    input_map_streams_zx = True  # the input products write the zx FIFO (nnet::rbs_products)

    def input_map_stages(self):
        types = self.lstm_types
        return self.schedules()[0].stages(
            "input map", types.input.width, types.kernel.width, self.mac_types()[0].width, self.input_pack(), fifo=True
        )

    @staticmethod
    def input_map_reference(cell, weights, types, frac):
        values, indices = weights
        return lambda x: requantize_recorded(
            "input map", rb_matvec(x, values, indices), frac + types.kernel.frac, types.accumulator
        )

    @staticmethod
    def recurrent_map_reference(cell, weights, types):
        values, indices = weights
        return lambda h: (rb_matvec(h, values, indices), types.state.frac + types.recurrent.frac)
