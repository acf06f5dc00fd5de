"""hls4ml plugin for ``models.TTLSTM``: the TT input map's hooks (reference, step configs, C++).

The TT cores become separate weight arrays ``core_<k>_<index>``, each stored in the order its
step reads it (``weight_layout``: ``(n_in, rank_in, rank_out, n_out)``). The contraction schedule
of ``models.tt`` (last core first) becomes a frame pipeline (``hls_project.decomposed.StreamChain``):
every core is one ``nnet::mode_contract`` process over the call's frames, the last core on the
streaming frame, each step streaming its rounded rows to the next, the last into the zx FIFO.
"""

from __future__ import annotations

from functools import partial

from hls_project.decomposed import StreamedInputMap
from hls_project.lstm_cell import LSTMFamilyLayer
from hls_project.reference import staged_input_map
from models.tt import contract_step
from models.tt_lstm import TTLSTM


class TTLSTMLayer(StreamedInputMap, LSTMFamilyLayer):
    """IR of a TT-LSTM layer: the shared LSTM block plus TT cores ``core_0 .. core_{d-1}``."""

    keras_class = TTLSTM
    headers = ("nnet_decomposed.h", "nnet_tt_lstm.h")
    chain_comment = "TT mat-vec, last core first: a frame pipeline of one process per core"
    chain_prefix, chain_base = "tt", "nnet::tt_core_config"

    @staticmethod
    def input_map_reference(cell, weights, types, frac):
        stages = [(partial(contract_step, step), weights[step.core]) for step in cell.tt_shape.schedule()]
        return lambda x: staged_input_map(x, stages, types, frac)

    def weight_layout(self, name, data):
        """A core in its step's read order ``(n_in, rank_in, rank_out, n_out)``."""
        if name.startswith("core_"):
            return data.transpose(1, 3, 0, 2)
        return super().weight_layout(name, data)

    def schedule_steps(self) -> list:
        return self.cell.tt_shape.schedule()

    @staticmethod
    def step_core(step) -> int:
        return step.core
