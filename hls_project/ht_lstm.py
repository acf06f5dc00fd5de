"""hls4ml plugin for ``models.HTLSTM`` and ``models.FDHTLSTM``: the HT input map's hooks and the bank schedule.

Every tree node is one ``nnet::ht_node_contract`` call (nnet_ht_lstm.h). The buffer between two
steps is stored in ``u * v`` banks of the step that reads it (``BankView``), so all ``u * v``
reads of one output element come from different banks in the same cycle; ``read_conflicts``
proves it for a schedule, and the config carries a per-step table (shapes, MACs, words, banks).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from hls_project.lstm_cell import LSTMFamilyLayer, exact_cpp, map_input_type, product_sum_type
from hls_project.reference import staged_input_map
from models.ht import HTShape, HTStep, contract_step
from models.ht_lstm import FDHTLSTM, HTLSTM


@dataclass(frozen=True)
class BankView:
    """The banked layout of a buffer read as (a, p, u, q, v, b); mirrors ``nnet::bank_view``."""

    p: int = 1
    u: int = 1
    q: int = 1
    v: int = 1
    b: int = 1

    @classmethod
    def of(cls, step: HTStep | None) -> BankView:
        return cls() if step is None else cls(step.p, step.u, step.q, step.v, step.b)

    @property
    def banks(self) -> int:
        return self.u * self.v

    def bank(self, address):
        return ((address // (self.b * self.v * self.q)) % self.u) * self.v + (address // self.b) % self.v

    def offset(self, address):
        b = address % self.b
        q = (address // (self.b * self.v)) % self.q
        ap = address // (self.b * self.v * self.q * self.u)
        return (ap * self.q + q) * self.b + b

    def cpp(self) -> str:
        return f"nnet::bank_view<{self.p}, {self.u}, {self.q}, {self.v}, {self.b}>"


def read_conflicts(shape: HTShape) -> list:
    """The steps in which two reads of one cycle hit the same bank, or the layout is not a bijection.

    One cycle computes one output element and reads its ``u * v`` terms: the logical addresses
    of ``models.ht`` mapped through the reading step's ``BankView``, and the ``u * v``
    coefficients ``core[(u * v_size + v) * t_size + t]`` of a core block-partitioned into
    ``u * v`` banks (``nnet::ht_node_contract``). Every writer's re-indexing must also land each
    word in its own (bank, offset) cell. An empty list: conflict-free.
    """
    problems = []
    for number, step in enumerate(shape.schedule()):
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
    typedef {core_t} core_t;
    typedef {mac_t} mac_t;
    typedef {out_view} out_view;
}};
"""


class HTLSTMLayer(LSTMFamilyLayer):
    """IR of an HT-LSTM layer: the shared LSTM block plus one core per tree node."""

    keras_class = HTLSTM
    headers = ("nnet_ht_lstm.h",)

    @staticmethod
    def input_map_reference(cell, weights, types, frac):
        stages = [(partial(contract_step, step), weights[step.node]) for step in cell.ht_shape.schedule()]
        return lambda x: staged_input_map(x, stages, types, frac)

    def input_map_configs(self):
        types = self.lstm_types
        steps = self.cell.ht_shape.schedule()
        core_t = self.get_weights("core_0").type.name
        text = ""
        for number, step in enumerate(steps):
            in_type = map_input_type(types, self.fused_recurrent) if number == 0 else types.accumulator
            following = steps[number + 1] if number + 1 < len(steps) else None
            view = (step.a, step.p, step.u, step.q, step.v, step.t, step.b)
            text += STEP_TEMPLATE.format(
                index=self.index,
                step=number,
                node=step.node,
                macs=step.macs,
                words=step.in_size,
                banks=BankView.of(step).banks,
                view=view,
                **dict(zip("apuqvtb", view, strict=True)),
                reuse_factor=self.get_attr("reuse_factor", 1),
                core_t=core_t,
                mac_t=exact_cpp(product_sum_type(step.terms, in_type, types.kernel)),
                out_view=BankView.of(following).cpp(),
            )
        return text

    def input_map_cpp(self):
        steps = self.cell.ht_shape.schedule()
        cores = self.weight_vars("input_map")
        first = BankView.of(steps[0])
        # static: these are on-chip memories in hardware, and large shapes would overflow the C-sim stack
        lines = [
            "    // HT mat-vec, tree nodes in post-order; buffers banked for their reader",
            "    template <class x_T> static void input_map(const x_T x[n_join], accum_t zx[4 * n_state]) {",
            f"        static x_T buf0[{first.banks}][n_join / {first.banks}];",
            "        #pragma HLS ARRAY_PARTITION variable=buf0 complete dim=1",
            f"        nnet::ht_scatter<x_T, {first.cpp()}, n_join>(x, buf0);",
        ]
        for number, step in enumerate(steps):
            in_t = "x_T" if number == 0 else "accum_t"
            config = f"config{self.index}_ht{number}"
            view = BankView.of(steps[number + 1] if number + 1 < len(steps) else None)
            target, depth = f"buf{number + 1}", step.out_size // view.banks
            lines.append(f"        static accum_t {target}[{view.banks}][{depth}];")
            lines.append(f"        #pragma HLS ARRAY_PARTITION variable={target} complete dim=1")
            call = f"nnet::ht_node_contract<{in_t}, accum_t, {config}, {depth}>"
            lines.append(f"        {call}(buf{number}, {target}, {cores[step.node]});")
        lines.append(f"        for (unsigned i = 0; i < 4 * n_state; i++) zx[i] = buf{len(steps)}[0][i];")
        lines.append("    }")
        return "\n".join(lines)


class FDHTLSTMLayer(HTLSTMLayer):
    """IR of an FDHT-LSTM: the same HT engine on ``[x_t; h_{t-1}]`` (the cell is fused)."""

    keras_class = FDHTLSTM
