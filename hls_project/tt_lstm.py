"""hls4ml plugin for ``models.TTLSTM``: converter handler, IR layer and config template.

The TT cores become separate weight arrays ``c<index>_<k>``; the contraction schedule of
``models.tt`` (last core first) becomes one ``nnet::tt_core_config`` per step and a generated
``input_map`` that chains ``nnet::tt_core_contract`` over them (nnet_tt_lstm.h).
"""

from __future__ import annotations

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
from hls_project.reference import LSTMTypes, tt_input_map
from models.tt import TTShape
from models.tt_lstm import tt_lstm_shape


def parse_tt_lstm(keras_layer, input_names, input_shapes, data_reader):
    layer, types, out_shape = parse_common_lstm(keras_layer, input_names, input_shapes, data_reader)
    config = keras_layer["config"]
    shape = tt_lstm_shape(config["input_modes"], config["output_modes"], config["tt_ranks"], config["units"])
    layer.update(
        class_name="TTLSTM",
        input_modes=list(shape.input_modes),
        output_modes=list(shape.output_modes),
        tt_ranks=list(shape.ranks),
    )
    parse_cores(layer, data_reader, shape.n_cores, types)
    return layer, out_shape


class TTLSTMLayer(CompressedLSTMLayer):
    """IR of a TT-LSTM layer: the shared LSTM block plus TT cores ``core_0 .. core_{d-1}``."""

    @property
    def tt_shape(self) -> TTShape:
        return TTShape.create(self.get_attr("input_modes"), self.get_attr("output_modes"), self.get_attr("tt_ranks"))

    def initialize_input_map(self, types: LSTMTypes):
        self.add_cores(self.tt_shape.n_cores, types)


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


class TTLSTMConfigTemplate(CompressedLSTMConfigTemplate):
    layer_class = TTLSTMLayer

    def family_configs(self, node):
        types = node.lstm_types
        text = ""
        for number, step in enumerate(node.tt_shape.schedule()):
            in_type = types.input if number == 0 else types.accumulator
            mac_t = exact_sum_cpp(
                step.terms * magnitude(in_type) * magnitude(types.kernel), in_type.frac + types.kernel.frac
            )
            text += STEP_TEMPLATE.format(
                index=node.index,
                step=number,
                core=step.core,
                macs=step.macs,
                n_left=step.n_left,
                n_in=step.n_in,
                n_out=step.n_out,
                n_right=step.n_right,
                rank_in=step.rank_in,
                rank_out=step.rank_out,
                reuse_factor=node.get_attr("reuse_factor", 1),
                core_t=node.get_weights(f"core_{step.core}").type.name,
                mac_t=mac_t,
            )
        return text

    def input_map_cpp(self, node):
        steps = node.tt_shape.schedule()
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
            core = node.get_weights(f"core_{step.core}").name
            call = f"nnet::tt_core_contract<{in_t}, accum_t, config{node.index}_tt{number}>"
            lines.append(f"        {call}({source}, {target}, {core});")
            source = target
        lines.append("    }")
        return "\n".join(lines)


class TTLSTMFunctionTemplate(CompressedLSTMFunctionTemplate):
    layer_class = TTLSTMLayer
    headers = ("nnet_utils/nnet_lstm_cell.h", "nnet_utils/nnet_tt_lstm.h")


def execute(layer, x, state=None):
    """NumPy bit-accurate model of the HLS TT-LSTM for a Keras ``TTLSTM`` (see ``execute_lstm``)."""
    shape = layer.cell.tt_shape

    def input_map(types):
        cores = [types.kernel.to_raw(core.numpy()) for core in layer.cell.cores]
        return lambda x_raw, h_raw: tt_input_map(x_raw, cores, shape, types)

    return execute_lstm(layer, x, input_map, state)
