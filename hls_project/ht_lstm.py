"""hls4ml plugin for ``models.HTLSTM`` and ``models.FDHTLSTM``: the HT input map's hooks.

Both run the tree's cores in their streaming order (``models.ht.HTShape.stream_order``) as a frame
pipeline (``hls_project.decomposed.StreamChain``): every core one ``nnet::mode_contract`` process,
its core stored in read order (``weight_layout``). The HT-LSTM's pipeline runs over a call's
frames, a call ahead of the recurrent half; the FDHT-LSTM's (fused) over one frame of
``[x_t; h_t-1; 0...]``, read a pack at a time (``join_pack``), before the cell gives h_t.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from hls_project.decomposed import StreamedInputMap
from hls_project.lstm_cell import LSTMFamilyLayer
from hls_project.reference import staged_input_map
from models.ht import contract_step
from models.ht_lstm import FDHTLSTM, HTLSTM


class HTInputMap(StreamedInputMap):
    """What the HT and FDHT layers share: the tree's cores in their streaming order, stored in
    read order."""

    headers = ("nnet_decomposed.h", "nnet_ht_lstm.h")
    chain_prefix, chain_base = "ht", "nnet::ht_pipeline_config"

    @staticmethod
    def input_map_reference(cell, weights, types, frac):
        stages = [(partial(contract_step, step), weights[step.node]) for step in cell.ht_shape.schedule()]
        return lambda x: staged_input_map(x, stages, types, frac)

    def schedule_steps(self) -> list:
        return self.cell.ht_shape.schedule()

    @staticmethod
    def step_core(step) -> int:
        return step.node

    def weight_layout(self, name, data):
        """A core in its step's read order ``(n_in, rank_in, rank_out, n_out)``."""
        step = next((step for step in self.schedule_steps() if name == f"core_{step.node}"), None)
        if step is None:
            return super().weight_layout(name, data)
        return np.transpose(np.asarray(data), step.axes).reshape(step.core_shape)


class HTLSTMLayer(HTInputMap, LSTMFamilyLayer):
    """IR of an HT-LSTM layer: the shared LSTM block plus one core per tree node, a frame pipeline."""

    keras_class = HTLSTM
    chain_comment = "HT mat-vec in its streaming order: a frame pipeline of one process per core"


class FDHTLSTMLayer(HTInputMap, LSTMFamilyLayer):
    """IR of an FDHT-LSTM: the HT engine on ``[x_t; h_t-1]`` (the cell is fused), a frame pipeline
    per frame."""

    keras_class = FDHTLSTM
    chain_comment = "HT mat-vec of [x; h] in its streaming order: a pipeline of one process per core"
