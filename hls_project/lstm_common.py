"""The hls4ml pieces every LSTM family shares: types, tables, weights and the cell config.

A family module (e.g. ``hls_project.tt_lstm``) adds its input-map weights and the C++ of its
``input_map``; everything in ``nnet_lstm_cell.h`` is configured from here.
"""

from __future__ import annotations

from math import floor, log2

import numpy as np
from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
from hls4ml.model.layers import Layer
from hls4ml.model.types import FixedPrecisionType, NamedType, RoundingMode, SaturationMode

from hls_project.lut import activation_table
from hls_project.reference import LSTMCellTables, LSTMTypes, join_type, lstm_sequence
from host.fixed_point import FixedType
from models.lstm_cell import check_activation
from models.quantization import fixed_type_of, get_quantizer


def types_from_keras_config(config: dict, layer_name: str) -> LSTMTypes:
    """The layer's fixed-point types from its quantizers; errors name the layer and quantizer."""

    def fixed(name):
        try:
            return fixed_type_of(get_quantizer(config.get(name)), name)
        except ValueError as err:
            raise ValueError(f"layer '{layer_name}': {err}") from None

    return LSTMTypes(
        input=fixed("input_quantizer"),
        kernel=fixed("kernel_quantizer"),
        recurrent=fixed("recurrent_quantizer"),
        bias=fixed("bias_quantizer"),
        state=fixed("state_quantizer"),
        accumulator=fixed("accumulator_quantizer"),
        activation=fixed("activation_quantizer"),
    )


def cell_tables(types: LSTMTypes, activation: str, recurrent_activation: str) -> LSTMCellTables:
    return LSTMCellTables(
        gate=activation_table(recurrent_activation, types.accumulator, types.activation),
        candidate=activation_table(activation, types.accumulator, types.activation),
        state=activation_table(activation, types.state, types.activation),
    )


def hls_precision(ftype: FixedType) -> FixedPrecisionType:
    return FixedPrecisionType(
        width=ftype.width,
        integer=ftype.integer,
        signed=ftype.signed,
        rounding_mode=RoundingMode.RND_CONV,
        saturation_mode=SaturationMode.SAT_SYM if ftype.symmetric else SaturationMode.SAT,
    )


def exact_sum_cpp(bound: float, frac: int) -> str:
    """An ``ap_fixed`` that holds, without rounding or overflow, sums up to ``|bound|``."""
    integer = (floor(log2(bound)) + 2) if bound >= 1 else 1
    return f"ap_fixed<{max(integer + frac, 1)},{integer}>"


def magnitude(ftype: FixedType) -> float:
    return max(abs(ftype.min_value), abs(ftype.max_value))


def preact_mac_cpp(types: LSTMTypes, units: int) -> str:
    """Exact type of ``zx + b + sum_i h_i U_ij`` (``units`` products)."""
    frac = max(types.accumulator.frac, types.bias.frac, types.state.frac + types.recurrent.frac)
    bound = magnitude(types.accumulator) + magnitude(types.bias)
    bound += units * magnitude(types.state) * magnitude(types.recurrent)
    return exact_sum_cpp(bound, frac)


def parse_common_lstm(keras_layer, input_names, input_shapes, data_reader, fused_recurrent=False):
    """The handler part every family shares: sizes, flags, types, recurrent weights and bias.

    Fused families (``[x; h]`` through the input map) have no recurrent matrix: a one-word zero
    placeholder keeps the kernel's signature, and the recurrent loop runs zero times.
    """
    config = keras_layer["config"]
    name = config["name"]
    shape = input_shapes[0]
    if len(shape) != 3 or shape[1] is None:
        raise ValueError(
            f"layer '{name}': the model input must be (frames, features) with a fixed number of "
            f"frames for hardware, got {shape[1:]}"
        )
    types = types_from_keras_config(config, name)
    units = int(config["units"])
    layer = {
        "name": name,
        "n_in": int(shape[2]),
        "n_out": units,
        "n_timesteps": int(shape[1]),
        "return_sequences": bool(config.get("return_sequences", False)),
        "stateful": bool(config.get("stateful", False)),
        "activation_name": check_activation(config.get("activation"), "activation"),
        "recurrent_activation_name": check_activation(config.get("recurrent_activation"), "recurrent_activation"),
        "fixed_types": {k: getattr(types, k).to_dict() for k in LSTMTypes.__dataclass_fields__},
        "fused_recurrent": fused_recurrent,
        "recurrent_weight_data": np.zeros(1)
        if fused_recurrent
        else weight_grid(data_reader.get_weights_data(name, "recurrent_kernel"), types.recurrent),
        "bias_data": weight_grid(data_reader.get_weights_data(name, "bias"), types.bias),
    }
    if config.get("return_state") or config.get("go_backwards"):
        raise ValueError(f"layer '{name}': return_state and go_backwards are not supported in hardware")
    if input_names is not None:
        layer["inputs"] = input_names
    out_shape = [shape[0], shape[1], units] if layer["return_sequences"] else [shape[0], units]
    return layer, types, out_shape


def parse_cores(layer: dict, data_reader, n_cores: int, types: LSTMTypes) -> None:
    """Read the family's ``core_<k>`` weights, rounded by the kernel quantizer, into ``layer``."""
    for k in range(n_cores):
        core = data_reader.get_weights_data(layer["name"], f"core_{k}:")  # ':' so core_1 is not core_10
        layer[f"core_{k}_data"] = weight_grid(core, types.kernel)


class CompressedLSTMLayer(Layer):
    """IR base: the output, the shared weights (recurrent, bias, tables) and the named types.

    Attributes set by the converter handler: ``n_in, n_out, n_timesteps, return_sequences,
    stateful, activation_name, recurrent_activation_name, fixed_types`` (name -> dict),
    ``recurrent_weight_data``, ``bias_data`` (float values on their grids).
    """

    def fixed(self, name: str) -> FixedType:
        return FixedType.from_dict(self.get_attr("fixed_types")[name])

    @property
    def join_type(self) -> FixedType:
        """The type of the input map's input: the frame, or ``[x; h]`` for fused families."""
        return join_type(self.lstm_types) if self.get_attr("fused_recurrent") else self.lstm_types.input

    @property
    def lstm_types(self) -> LSTMTypes:
        return LSTMTypes(**{k: self.fixed(k) for k in LSTMTypes.__dataclass_fields__})

    def add_named_type(self, attr: str, ftype: FixedType):
        self.set_attr(attr, NamedType(f"layer{self.index}_{attr}", hls_precision(ftype)))

    def add_fixed_weight(self, name, var_name, type_name, ftype: FixedType, data):
        self.add_weights_variable(
            name=name, var_name=var_name, type_name=type_name, precision=hls_precision(ftype), data=data
        )

    def add_cores(self, n_cores: int, types: LSTMTypes):
        """The family's cores as weight arrays ``c<index>_<k>`` of the kernel type."""
        for k in range(n_cores):
            data = self.get_attr(f"core_{k}_data")
            self.add_fixed_weight(f"core_{k}", f"c{{index}}_{k}", "kernel{index}_t", types.kernel, data)

    def initialize(self):
        types = self.lstm_types
        steps = self.get_attr("n_timesteps") if self.get_attr("return_sequences") else None
        shape = [steps, self.get_attr("n_out")] if steps else [self.get_attr("n_out")]
        self.add_output_variable(shape, precision=hls_precision(types.state))
        for attr in ("input", "accumulator", "state", "activation"):
            self.add_named_type(f"{attr}_t", getattr(types, attr))
        self.add_named_type("join_t", self.join_type)
        self.add_fixed_weight(
            "recurrent_weight",
            "wr{index}",
            "recurrent{index}_t",
            types.recurrent,
            self.get_attr("recurrent_weight_data"),
        )
        self.add_fixed_weight("bias", "b{index}", "bias{index}_t", types.bias, self.get_attr("bias_data"))
        tables = cell_tables(types, self.get_attr("activation_name"), self.get_attr("recurrent_activation_name"))
        for name, table in (("gate", tables.gate), ("candidate", tables.candidate), ("state", tables.state)):
            values = types.activation.from_raw(table.values)
            self.add_fixed_weight(
                f"{name}_lut", f"{name}_lut{{index}}", "activation{index}_t", types.activation, values
            )
            self.set_attr(f"{name}_lut_lo", table.lo_raw)
        self.initialize_input_map(types)


CELL_CONFIG_TEMPLATE = """struct config{index} : nnet::lstm_cell_config {{
    static const unsigned n_in = {n_in};
    static const unsigned n_state = {n_out};
    static const unsigned n_timesteps = {n_timesteps};
    static const bool return_sequences = {return_sequences};
    static const bool stateful = {stateful};
    static const unsigned reuse_factor = {reuse_factor};
    static const bool fused_recurrent = {fused_recurrent};
    static const unsigned n_join = {n_join};
    static const unsigned n_recurrent_state = {n_recurrent_state};
    static const unsigned n_recurrent_weights = {n_recurrent_weights};
    typedef {input_t} input_t;
    typedef {join_t} join_t;
    typedef {accum_t} accum_t;
    typedef {state_t} state_t;
    typedef {act_t} act_t;
    typedef {recurrent_t} recurrent_weight_t;
    typedef {bias_t} bias_t;
    typedef {preact_mac_t} preact_mac_t;
    static const int gate_lut_lo = {gate_lut_lo};
    static const unsigned gate_lut_size = {gate_lut_size};
    static const int candidate_lut_lo = {candidate_lut_lo};
    static const unsigned candidate_lut_size = {candidate_lut_size};
    static const int state_lut_lo = {state_lut_lo};
    static const unsigned state_lut_size = {state_lut_size};
{input_map}
}};
"""

FUNCTION_TEMPLATE = (
    "nnet::lstm_sequence<{input_t}, {output_t}, {config}>({input}, {output}, {wr}, {b}, "
    "{gate_lut}, {candidate_lut}, {state_lut});"
)


class CompressedLSTMConfigTemplate(LayerConfigTemplate):
    """Fills ``nnet::lstm_cell_config``; ``family_configs`` / ``input_map_cpp`` are the family's."""

    layer_class = CompressedLSTMLayer

    def __init__(self):
        super().__init__(self.layer_class)

    def family_configs(self, node) -> str:
        return ""

    def input_map_cpp(self, node) -> str:
        return ""

    def n_join(self, node) -> int:
        """Values the input map takes: the frame, or ``[x; h]`` padded to the modes (fused)."""
        return node.get_attr("n_in")

    def format(self, node):
        types = node.lstm_types
        fused = bool(node.get_attr("fused_recurrent"))
        units = 0 if fused else node.get_attr("n_out")
        params = {
            "fused_recurrent": str(fused).lower(),
            "n_join": self.n_join(node),
            "n_recurrent_state": units,
            "n_recurrent_weights": max(1, units * 4 * node.get_attr("n_out")),
            "join_t": node.get_attr("join_t").name,
            "index": node.index,
            "n_in": node.get_attr("n_in"),
            "n_out": node.get_attr("n_out"),
            "n_timesteps": node.get_attr("n_timesteps"),
            "return_sequences": str(bool(node.get_attr("return_sequences"))).lower(),
            "stateful": str(bool(node.get_attr("stateful"))).lower(),
            "reuse_factor": node.get_attr("reuse_factor", 1),
            "input_t": node.get_attr("input_t").name,
            "accum_t": node.get_attr("accumulator_t").name,
            "state_t": node.get_attr("state_t").name,
            "act_t": node.get_attr("activation_t").name,
            "recurrent_t": node.get_weights("recurrent_weight").type.name,
            "bias_t": node.get_weights("bias").type.name,
            "preact_mac_t": preact_mac_cpp(types, units),
            "input_map": self.input_map_cpp(node),
        }
        for name in ("gate", "candidate", "state"):
            params[f"{name}_lut_lo"] = node.get_attr(f"{name}_lut_lo")
            params[f"{name}_lut_size"] = node.get_weights(f"{name}_lut").data_length
        return self.family_configs(node) + CELL_CONFIG_TEMPLATE.format(**params)


class CompressedLSTMFunctionTemplate(FunctionCallTemplate):
    layer_class = CompressedLSTMLayer
    headers = ("nnet_utils/nnet_lstm_cell.h",)

    def __init__(self):
        super().__init__(self.layer_class, include_header=list(self.headers))
        self.template = FUNCTION_TEMPLATE

    def format(self, node):
        params = self._default_function_params(node)
        for name in ("wr", "b"):
            params[name] = node.get_weights("recurrent_weight" if name == "wr" else "bias").name
        for name in ("gate", "candidate", "state"):
            params[f"{name}_lut"] = node.get_weights(f"{name}_lut").name
        return self.template.format(**params)


def weight_grid(values, ftype: FixedType) -> np.ndarray:
    """Weights rounded exactly as the Keras layer rounds them (float64 on the type's grid)."""
    return ftype.quantize(np.asarray(values, np.float64))


def execute_lstm(layer, x, input_map, state=None):
    """Bit-accurate NumPy execution of a Keras family layer, as the HLS kernel computes it.

    ``input_map(types)`` returns the family's raw input map ``(x_raw, h_raw) -> zx raw``.
    x: (batch, T, n_in) floats. Returns ``(outputs as float64, (h, c) raw)``; pass the state back
    to continue a stateful stream.
    """
    config = layer.get_config()
    types = types_from_keras_config(config, layer.name)
    tables = cell_tables(types, config["activation"], config["recurrent_activation"])
    cell = layer.cell
    out, state = lstm_sequence(
        types.input.to_raw(x),
        input_map(types),
        None if cell.fused_recurrent else types.recurrent.to_raw(cell.recurrent_kernel.numpy()),
        types.bias.to_raw(cell.bias.numpy()),
        types,
        tables,
        state=state,
        return_sequences=bool(config.get("return_sequences")),
    )
    return types.state.from_raw(out), state
