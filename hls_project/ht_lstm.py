"""hls4ml plugin for ``models.HTLSTM`` and ``models.FDHTLSTM``: the HT input map's hooks and the bank schedule.

The first tree node of the schedule (a leaf) contracts its mode of the streaming frame
(``nnet::mode_contract``); every other node is one ``nnet::ht_node_contract`` call
(nnet_ht_lstm.h). The buffer between two steps is stored in ``u * v`` banks of the step that
reads it (``hls_project.decomposed.BankView``), so all ``u * v`` reads of one output element come
from different banks in the same cycle; ``read_conflicts`` proves it for a schedule, and the
config carries a per-step table (shapes, MACs, words, banks).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from hls_project.decomposed import (
    BankView,
    Chain,
    ChainedInputMap,
    Link,
    StreamChain,
    StreamedInputMap,
    frame_step,
    over_frames,
    stream_steps,
)
from hls_project.lstm_cell import LSTMFamilyLayer
from hls_project.reference import staged_input_map
from models.ht import HTShape, contract_step
from models.ht_lstm import FDHTLSTM, HTLSTM


def read_conflicts(shape: HTShape) -> list:
    """The steps in which two reads of one cycle hit the same bank, or the layout is not a bijection.

    The first step reads the streaming frame (``nnet::mode_contract``), one value and the
    ``t`` coefficients ``core[u * t + t']`` (cyclic banks of ``t``) per cycle: no buffer to check.
    Every later step computes one output element per cycle and reads its ``u * v`` terms: the logical addresses
    of ``models.ht`` mapped through the reading step's ``BankView``, and the ``u * v``
    coefficients ``core[(u * v_size + v) * t_size + t]`` of a core block-partitioned into
    ``u * v`` banks (``nnet::ht_node_contract``). Every writer's re-indexing must also land each
    word in its own (bank, offset) cell. An empty list: conflict-free.
    """
    problems = []
    for number, step in enumerate(shape.schedule()[1:], start=1):
        view = BankView.of(step)
        words = np.arange(step.in_size)
        offsets = view.offset(words)
        cells = view.bank(words) * (step.in_size // view.banks) + offsets
        if offsets.max() >= step.in_size // view.banks or len(np.unique(cells)) != step.in_size:
            problems.append((number, "layout is not a bijection"))
        a, p, q, b = np.meshgrid(*(np.arange(n) for n in (step.a, step.p, step.q, step.b)), indexing="ij")
        reads = step.read_addresses(a.reshape(-1, 1, 1), p.reshape(-1, 1, 1), q.reshape(-1, 1, 1), b.reshape(-1, 1, 1))
        banks = np.sort(view.bank(reads).reshape(len(a.ravel()), -1), axis=1)  # (cycles, u * v)
        clashes = np.flatnonzero((np.diff(banks, axis=1) == 0).any(axis=1))
        problems += [(number, int(cycle)) for cycle in clashes[:10]]
        coefficients = np.arange(step.u * step.v)[None, :] * step.t + np.arange(step.t)[:, None]  # (t, u * v)
        core_banks = np.sort(coefficients // -(-coefficients.size // (step.u * step.v)), axis=1)  # block size
        if (np.diff(core_banks, axis=1) == 0).any():
            problems.append((number, "coefficient reads share a bank"))
    return problems


STEP_TEMPLATE = """// step {step}: node {node}, (a,p,u,q,v,t,b) = {view}, {macs} MACs, {words} words, {banks} banks
struct config{index}_ht{step} : nnet::ht_node_config {{
    static const unsigned a = {a}, p = {p}, u = {u}, q = {q}, v = {v}, t = {t}, b = {b};
    static const unsigned reuse_factor = {reuse_factor};
    static const unsigned multiplier_limit = {multiplier_limit};
    typedef {core_t} core_t;
    typedef {mac_t} mac_t;
    typedef {out_view} out_view;
}};
"""


class HTInputMap:
    """What the HT and FDHT layers share: the reference and the schedule of the tree's cores."""

    @staticmethod
    def input_map_reference(cell, weights, types, frac):
        stages = [(partial(contract_step, step), weights[step.node]) for step in cell.ht_shape.schedule()]
        return lambda x: staged_input_map(x, stages, types, frac)

    def schedule_steps(self) -> list:
        return self.cell.ht_shape.schedule()


class HTLSTMLayer(HTInputMap, StreamedInputMap, LSTMFamilyLayer):
    """IR of an HT-LSTM layer: the shared LSTM block plus one core per tree node, a frame pipeline."""

    keras_class = HTLSTM
    headers = ("nnet_decomposed.h", "nnet_ht_lstm.h")
    chain_comment = "HT mat-vec in its streaming order: a frame pipeline of one process per core"

    def weight_layout(self, name, data):
        """A core in its step's read order ``(n_in, rank_in, rank_out, n_out)``."""
        step = next((step for step in self.schedule_steps() if name == f"core_{step.node}"), None)
        if step is None:
            return super().weight_layout(name, data)
        return np.transpose(np.asarray(data), step.axes).reshape(step.core_shape)

    def stream_chain(self) -> StreamChain:
        """The streaming order over a call's frames, packs chosen (``stream_steps``)."""
        schedule, frames = self.schedule_steps(), self.get_attr("n_timesteps")
        steps = stream_steps([over_frames(step, frames) for step in schedule], self.input_pack())
        cores = self.weight_vars("input_map")
        return StreamChain(
            steps, tuple(cores[step.node] for step in schedule), frames, "ht", "nnet::ht_pipeline_config"
        )


class FDHTLSTMLayer(HTInputMap, ChainedInputMap, LSTMFamilyLayer):
    """IR of an FDHT-LSTM: the HT engine on ``[x_t; h_{t-1}]`` (the cell is fused), frame by frame
    through banked buffers."""

    keras_class = FDHTLSTM
    headers = ("nnet_decomposed.h", "nnet_ht_lstm.h")
    chain_comment = "HT mat-vec, tree nodes in the cheapest order; buffers banked for their reader"

    def chain(self) -> Chain:
        """The schedule as a chain: the first leaf on the frame (``p = q = v = 1``), then one link per node."""
        shape = self.cell.ht_shape
        steps = shape.schedule()
        cores = self.weight_vars("input_map")
        first = steps[0]
        links = tuple(
            Link(
                "nnet::ht_node_contract",
                f"config{self.index}_ht{number}",
                cores[step.node],
                step.out_size,
                step.terms,
                step.u * step.v * step.t,
            )
            for number, step in enumerate(steps[1:], start=1)
        )
        views = tuple(BankView.of(step) for step in steps[1:]) + (BankView(),)
        return Chain(frame_step(a=first.a, u=first.u, t=first.t, b=first.b), cores[first.node], links, views)

    step_template = STEP_TEMPLATE

    def step_fields(self, step) -> dict:
        view = (step.a, step.p, step.u, step.q, step.v, step.t, step.b)
        return dict(node=step.node, banks=BankView.of(step).banks, view=view, **dict(zip("apuqvtb", view, strict=True)))
