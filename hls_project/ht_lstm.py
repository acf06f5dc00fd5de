"""hls4ml plugin for ``models.HTLSTM``: handler, IR layer, config template and the bank schedule.

Every tree node is one ``nnet::ht_node_contract`` call (nnet_ht_lstm.h). The buffer between two
steps is stored in ``u * v`` banks of the step that reads it (``BankView``), so all ``u * v``
reads of one output element come from different banks in the same cycle; ``read_conflicts``
proves it for a schedule, and the config carries a per-step table (shapes, MACs, words, banks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hls_project.lstm_common import (
    CompressedLSTMConfigTemplate,
    CompressedLSTMFunctionTemplate,
    CompressedLSTMLayer,
    exact_sum_cpp,
    execute_lstm,
    magnitude,
    parse_common_lstm,
    parse_cores,
)
from hls_project.reference import LSTMTypes, ht_input_map, join_raw, join_type
from models.ht import HTShape, HTStep
from models.ht_lstm import ht_lstm_shape


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
    of ``models.ht`` mapped through the reading step's ``BankView``. Every writer's re-indexing
    must also land each word in its own (bank, offset) cell. An empty list: conflict-free.
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
    return problems


def schedule_table(shape: HTShape) -> list:
    """Per step: node, (a, p, u, q, v, t, b), MACs, buffer words read, banks."""
    return [
        dict(step=number, node=step.node, view=(step.a, step.p, step.u, step.q, step.v, step.t, step.b),
             macs=step.macs, words=step.in_size, banks=BankView.of(step).banks)
        for number, step in enumerate(shape.schedule())
    ]  # fmt: skip


def parse_ht_lstm(keras_layer, input_names, input_shapes, data_reader):
    """Handler for ``HTLSTM`` and (fused recurrence) ``FDHTLSTM``."""
    fused = keras_layer["class_name"] == "FDHTLSTM"
    layer, types, out_shape = parse_common_lstm(keras_layer, input_names, input_shapes, data_reader, fused)
    config = keras_layer["config"]
    shape = ht_lstm_shape(config["input_modes"], config["output_modes"], config["ht_ranks"], config["units"])
    layer.update(
        class_name=keras_layer["class_name"],
        input_modes=list(shape.input_modes),
        output_modes=list(shape.output_modes),
        ht_ranks=list(shape.ranks),
    )
    parse_cores(layer, data_reader, len(shape.nodes), types)
    return layer, out_shape


class HTLSTMLayer(CompressedLSTMLayer):
    """IR of an HT-LSTM layer: the shared LSTM block plus one core per tree node."""

    @property
    def ht_shape(self) -> HTShape:
        return HTShape.create(self.get_attr("input_modes"), self.get_attr("output_modes"), self.get_attr("ht_ranks"))

    def initialize_input_map(self, types: LSTMTypes):
        self.add_cores(len(self.ht_shape.nodes), types)


STEP_TEMPLATE = """// step {step}: node {node}, (a,p,u,q,v,t,b) = {view}, {macs} MACs, {words} words, {banks} banks
struct config{index}_ht{step} : nnet::ht_node_config {{
    static const unsigned a = {a}, p = {p}, u = {u}, q = {q}, v = {v}, t = {t}, b = {b};
    static const unsigned reuse_factor = {reuse_factor};
    typedef {core_t} core_t;
    typedef {mac_t} mac_t;
    typedef {out_view} out_view;
}};
"""


class HTLSTMConfigTemplate(CompressedLSTMConfigTemplate):
    layer_class = HTLSTMLayer

    def family_configs(self, node):
        types = node.lstm_types
        steps = node.ht_shape.schedule()
        text = ""
        for number, step in enumerate(steps):
            in_type = node.join_type if number == 0 else types.accumulator
            mac_t = exact_sum_cpp(
                step.terms * magnitude(in_type) * magnitude(types.kernel), in_type.frac + types.kernel.frac
            )
            following = steps[number + 1] if number + 1 < len(steps) else None
            text += STEP_TEMPLATE.format(
                index=node.index, step=number, node=step.node, macs=step.macs, words=step.in_size,
                banks=BankView.of(step).banks, view=(step.a, step.p, step.u, step.q, step.v, step.t, step.b),
                a=step.a, p=step.p, u=step.u, q=step.q, v=step.v, t=step.t, b=step.b,
                reuse_factor=node.get_attr("reuse_factor", 1), core_t=node.get_weights(f"core_{step.node}").type.name,
                mac_t=mac_t, out_view=BankView.of(following).cpp(),
            )  # fmt: skip
        return text

    def input_map_cpp(self, node):
        steps = node.ht_shape.schedule()
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
            core = node.get_weights(f"core_{step.node}").name
            config = f"config{node.index}_ht{number}"
            view = BankView.of(steps[number + 1] if number + 1 < len(steps) else None)
            target, depth = f"buf{number + 1}", step.out_size // view.banks
            lines.append(f"        static accum_t {target}[{view.banks}][{depth}];")
            lines.append(f"        #pragma HLS ARRAY_PARTITION variable={target} complete dim=1")
            call = f"nnet::ht_node_contract<{in_t}, accum_t, {config}, {depth}>"
            lines.append(f"        {call}(buf{number}, {target}, {core});")
        lines.append(f"        for (unsigned i = 0; i < 4 * n_state; i++) zx[i] = buf{len(steps)}[0][i];")
        lines.append("    }")
        return "\n".join(lines)


class HTLSTMFunctionTemplate(CompressedLSTMFunctionTemplate):
    layer_class = HTLSTMLayer
    headers = ("nnet_utils/nnet_lstm_cell.h", "nnet_utils/nnet_ht_lstm.h")


class FDHTLSTMLayer(HTLSTMLayer):
    """IR of an FDHT-LSTM: the HT engine takes ``[x_t; h_{t-1}]`` (zero-padded), no recurrent matrix."""


class FDHTLSTMConfigTemplate(HTLSTMConfigTemplate):
    layer_class = FDHTLSTMLayer

    def n_join(self, node) -> int:
        return node.ht_shape.n_in


class FDHTLSTMFunctionTemplate(HTLSTMFunctionTemplate):
    layer_class = FDHTLSTMLayer


def execute(layer, x, state=None):
    """NumPy bit-accurate model of the HLS kernel for a Keras ``HTLSTM`` or ``FDHTLSTM``."""
    shape = layer.cell.ht_shape

    def input_map(types):
        cores = [types.kernel.to_raw(core.numpy()) for core in layer.cell.cores]
        if not layer.cell.fused_recurrent:
            return lambda x_raw, h_raw: ht_input_map(x_raw, cores, shape, types)
        frac = join_type(types).frac
        return lambda x_raw, h_raw: ht_input_map(join_raw(x_raw, h_raw, shape.n_in, types), cores, shape, types, frac)

    return execute_lstm(layer, x, input_map, state)
