"""hls4ml plugin for ``models.TTLSTM``: the TT input map's hooks (reference, step configs, C++).

The TT cores become separate weight arrays ``core_<k>_<index>``, each stored in the order its
step reads it (``weight_layout``). The contraction schedule of ``models.tt`` (last core first)
becomes a chain (``hls_project.decomposed``): the last core contracts the streaming frame
(``nnet::frame_mode_contract``), every other core is one ``nnet::tt_core_contract`` over a
buffer banked by its ``(i, b)`` terms (nnet_tt_lstm.h).
"""

from __future__ import annotations

from functools import partial

from hls_project.decomposed import BankView, Chain, ChainedInputMap, FrameMode, Link
from hls_project.lstm_cell import LSTMFamilyLayer
from hls_project.reference import staged_input_map
from models.tt import ContractionStep, contract_step
from models.tt_lstm import TTLSTM

STEP_TEMPLATE = """// step {step}: core {core}, {macs} MACs, {words} words in {banks} banks
struct config{index}_tt{step} : nnet::tt_core_config {{
    static const unsigned n_left = {n_left};
    static const unsigned n_in = {n_in};
    static const unsigned n_out = {n_out};
    static const unsigned n_right = {n_right};
    static const unsigned rank_in = {rank_in};
    static const unsigned rank_out = {rank_out};
    static const unsigned reuse_factor = {reuse_factor};
    static const unsigned multiplier_limit = {multiplier_limit};
    typedef {core_t} core_t;
    typedef {mac_t} mac_t;
    typedef {out_view} out_view;
}};
"""


def input_view(step: ContractionStep) -> BankView:
    """The banked layout a later step reads its input in: bank ``i * rank_in + b``, offset ``l * n_right + p``."""
    return BankView(u=step.n_in, q=step.n_right, v=step.rank_in)


def frame_mode(step: ContractionStep) -> FrameMode:
    """The first step (the last core: ``n_right = rank_in = 1``) as a contraction of the frame's mode."""
    if step.n_right != 1 or step.rank_in != 1:
        raise ValueError(f"the first TT step must have n_right = rank_in = 1, got {step}")
    return FrameMode(a=step.n_left, u=step.n_in, t=step.n_out * step.rank_out, b=1)


class TTLSTMLayer(ChainedInputMap, LSTMFamilyLayer):
    """IR of a TT-LSTM layer: the shared LSTM block plus TT cores ``core_0 .. core_{d-1}``."""

    keras_class = TTLSTM
    headers = ("nnet_decomposed.h", "nnet_tt_lstm.h")
    chain_comment = "TT mat-vec, last core first; buffers banked for their reader"

    @staticmethod
    def input_map_reference(cell, weights, types, frac):
        stages = [(partial(contract_step, step), weights[step.core]) for step in cell.tt_shape.schedule()]
        return lambda x: staged_input_map(x, stages, types, frac)

    def weight_layout(self, name, data):
        """A core in its step's read order: the first step's ``(n_in, n_out, rank_out)`` = ``[u][t]``,
        the others' ``(n_in, rank_in, rank_out, n_out)`` (one block per ``(i, b)`` term)."""
        steps = self.cell.tt_shape.schedule()
        if name == f"core_{steps[0].core}":
            return data.transpose(1, 2, 0, 3)
        if name.startswith("core_"):
            return data.transpose(1, 3, 0, 2)
        return super().weight_layout(name, data)

    def chain(self) -> Chain:
        """The schedule as a chain: the last core on the frame, then one link per core."""
        steps = self.cell.tt_shape.schedule()
        cores = self.weight_vars("input_map")
        links = tuple(
            Link(
                "nnet::tt_core_contract",
                f"config{self.index}_tt{number}",
                cores[step.core],
                step.out_size,
                step.terms,
                step.rank_out * step.n_in * step.n_out * step.rank_in,
            )
            for number, step in enumerate(steps[1:], start=1)
        )
        views = tuple(input_view(step) for step in steps[1:]) + (BankView(),)
        return Chain(frame_mode(steps[0]), cores[steps[0].core], links, views)

    step_template = STEP_TEMPLATE

    def schedule_steps(self) -> list:
        return self.cell.tt_shape.schedule()

    def step_fields(self, step) -> dict:
        return dict(
            core=step.core,
            banks=input_view(step).banks,
            n_left=step.n_left,
            n_in=step.n_in,
            n_out=step.n_out,
            n_right=step.n_right,
            rank_in=step.rank_in,
            rank_out=step.rank_out,
        )
