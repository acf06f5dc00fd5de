"""hls4ml plugin for ``models.TTLSTM``: the TT input map's hooks (reference, step configs, C++).

The TT cores become separate weight arrays ``core_<k>_<index>``; the contraction schedule of
``models.tt`` (last core first) becomes one ``nnet::tt_core_config`` per step and a generated
``input_map`` that chains ``nnet::tt_core_contract`` over them (nnet_tt_lstm.h).
"""

from __future__ import annotations

from functools import partial

from hls_project.lstm_cell import LSTMFamilyLayer, exact_cpp, map_input_type, product_sum_type
from hls_project.reference import staged_input_map
from models.tt import contract_step
from models.tt_lstm import TTLSTM

STEP_TEMPLATE = """struct config{index}_tt{step} : nnet::tt_core_config {{  // core {core}: {macs} MACs
    static const unsigned n_left = {n_left};
    static const unsigned n_in = {n_in};
    static const unsigned n_out = {n_out};
    static const unsigned n_right = {n_right};
    static const unsigned rank_in = {rank_in};
    static const unsigned rank_out = {rank_out};
    static const unsigned reuse_factor = {reuse_factor};
    typedef {core_t} core_t;
    typedef {mac_t} mac_t;
}};
"""


class TTLSTMLayer(LSTMFamilyLayer):
    """IR of a TT-LSTM layer: the shared LSTM block plus TT cores ``core_0 .. core_{d-1}``."""

    keras_class = TTLSTM
    headers = ("nnet_tt_lstm.h",)

    @staticmethod
    def input_map_reference(cell, weights, types, frac):
        stages = [(partial(contract_step, step), weights[step.core]) for step in cell.tt_shape.schedule()]
        return lambda x: staged_input_map(x, stages, types, frac)

    def input_map_configs(self):
        types = self.lstm_types
        core_t = self.get_weights("core_0").type.name
        text = ""
        for number, step in enumerate(self.cell.tt_shape.schedule()):
            in_type = map_input_type(types, self.fused_recurrent) if number == 0 else types.accumulator
            text += STEP_TEMPLATE.format(
                index=self.index,
                step=number,
                core=step.core,
                macs=step.macs,
                n_left=step.n_left,
                n_in=step.n_in,
                n_out=step.n_out,
                n_right=step.n_right,
                rank_in=step.rank_in,
                rank_out=step.rank_out,
                reuse_factor=self.get_attr("reuse_factor", 1),
                core_t=core_t,
                mac_t=exact_cpp(product_sum_type(step.terms, in_type, types.kernel)),
            )
        return text

    def input_map_cpp(self):
        steps = self.cell.tt_shape.schedule()
        cores = self.weight_vars("input_map")
        lines = [
            "    // TT mat-vec, last core first; every step rounds to accum_t",
            "    template <class x_T> static void input_map(const x_T x[n_join], accum_t zx[4 * n_state]) {",
        ]
        source = "x"
        for number, step in enumerate(steps):
            in_t = "x_T" if number == 0 else "accum_t"
            target = "zx" if number == len(steps) - 1 else f"buf{number}"
            if target != "zx":
                lines.append(f"        static accum_t {target}[{step.out_size}];  // on-chip memory")
            call = f"nnet::tt_core_contract<{in_t}, accum_t, config{self.index}_tt{number}>"
            lines.append(f"        {call}({source}, {target}, {cores[step.core]});")
            source = target
        lines.append("    }")
        return "\n".join(lines)
