"""The backend templates of every family's layer (hls4ml's config and function templates): the
``nnet::lstm_cell_config`` struct filled from the node and its family's hooks, and the
``nnet::lstm_sequence`` call. ``hls_project.families.register_family`` derives one subclass of
each per family."""

from __future__ import annotations

from pathlib import Path

from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate

from fixedpoint import exact_sum_type, magnitude
from hls_project.lstm_cell import TABLES, LSTMFamilyLayer
from hls_project.sizing import exact_cpp, multiplier_limit, recurrent_block, state_products


def pwl_cpp(name: str, pwl, in_type_name: str) -> str:
    """The segments of one PWL activation as a struct of the layer config (``nnet::pwl_eval``):
    exact constants of the input type, ``base_t`` and ``slope_t`` (models.activation_pwl grids)."""
    starts, _, bases, slopes = pwl.float_segments()
    n = pwl.n_segments

    def table(function, type_name, values):
        literals = ", ".join(repr(float(v)) for v in values)
        return (
            f"        static {type_name} {function}(unsigned k) {{\n"
            f"            static const {type_name} v[{n}] = {{{literals}}};\n"
            "            return v[k];\n"
            "        }\n"
        )

    return (
        f"    struct {name}_pwl {{  // {pwl.function} on {in_type_name}: {n} segments\n"
        f"        static const unsigned n_segments = {n};\n"
        f"        typedef {in_type_name} x_t;\n"
        f"        typedef {exact_cpp(pwl.value_type())} base_t;\n"
        f"        typedef {exact_cpp(pwl.slope_type())} slope_t;\n"
        + table("start", "x_t", starts)
        + table("base", "base_t", bases)
        + table("slope", "slope_t", slopes)
        + "    };"
    )


CELL_CONFIG_TEMPLATE = """struct config{index} : nnet::lstm_cell_config {{
    static const unsigned n_in = {n_in};
    static const unsigned n_state = {n_out};
    static const unsigned n_timesteps = {n_timesteps};
    static const bool return_sequences = {return_sequences};
    static const bool stateful = {stateful};
    static const unsigned reuse_factor = {reuse_factor};
    static const unsigned recurrent_block = {recurrent_block};  // terms (and multipliers) of h U per cycle
    static const unsigned state_multiplier_limit = {state_multiplier_limit};  // {state_products} products per unit
    static const bool fused_recurrent = {fused_recurrent};
    static const unsigned n_join = {n_join};
    static const unsigned join_pack = {join_pack};
    typedef {input_t} input_t;
    typedef {join_t} join_t;
    typedef {accum_t} accum_t;
    typedef {state_t} state_t;
    typedef {act_t} act_t;
    typedef {rec_t} rec_t;
    typedef {bias_t} bias_t;
    typedef {preact_mac_t} preact_mac_t;
{activations}
{input_map}
{recurrent_map}
}};
"""

TABLES_CONFIG_TEMPLATE = """    static const int gate_lut_lo = {gate_lut_lo};
    static const unsigned gate_lut_size = {gate_lut_size};
    static const int candidate_lut_lo = {candidate_lut_lo};
    static const unsigned candidate_lut_size = {candidate_lut_size};
    static const int state_lut_lo = {state_lut_lo};
    static const unsigned state_lut_size = {state_lut_size};"""
PWL_CONFIG_LINE = "    static const bool pwl_activations = true;  // piecewise-linear sigmoid/tanh: no tables"

FUNCTION_TEMPLATE = (
    "nnet::lstm_sequence<{input_t}, {output_t}, {config}>({input}, {reset}{output}, {b}, {gate_lut}, "
    "{output_gate_lut}, {candidate_lut}, {state_lut});"
)
PWL_FUNCTION_TEMPLATE = "nnet::lstm_sequence<{input_t}, {output_t}, {config}>({input}, {reset}{output}, {b});"


class LSTMConfigTemplate(LayerConfigTemplate):
    """Fills ``nnet::lstm_cell_config`` from the node and its family's hooks (one subclass per family)."""

    layer_class = LSTMFamilyLayer

    def __init__(self):
        super().__init__(self.layer_class)

    def format(self, node):
        types = node.lstm_types
        fused = node.fused_recurrent
        rec_type = types.accumulator if fused else node.recurrent_map_type()
        terms = [types.accumulator, types.bias] + ([] if fused else [rec_type])
        preact = exact_sum_type(sum(magnitude(t) for t in terms), max(t.frac for t in terms))
        folding = node.folding()
        stored_for = node.get_attr("layout_folding", folding)
        if stored_for != folding:
            raise ValueError(
                f"layer '{node.name}': its weights are stored for folding {stored_for}, not {folding}: "
                "convert again to write it at another reuse factor or folding"
            )
        reuse_factor = folding["state update"]
        block = recurrent_block(node.get_attr("n_out"), folding.get("recurrent map", reuse_factor))
        params = {
            "index": node.index,
            "n_in": node.get_attr("n_in"),
            "n_out": node.get_attr("n_out"),
            "n_timesteps": node.get_attr("n_timesteps"),
            "return_sequences": str(bool(node.get_attr("return_sequences"))).lower(),
            "stateful": str(bool(node.get_attr("stateful"))).lower(),
            "reuse_factor": reuse_factor,
            "recurrent_block": block,
            "state_multiplier_limit": multiplier_limit(state_products(node.activations), reuse_factor),
            "state_products": state_products(node.activations),
            "fused_recurrent": str(fused).lower(),
            "n_join": node.n_join(),
            "join_pack": node.join_pack(),
            "input_t": node.get_attr("input_t").name,
            "join_t": node.get_attr("join_t").name,
            "accum_t": node.get_attr("accumulator_t").name,
            "state_t": node.get_attr("state_t").name,
            "act_t": node.get_attr("activation_t").name,
            "rec_t": exact_cpp(rec_type),
            "bias_t": node.get_weights("bias").type.name,
            "preact_mac_t": exact_cpp(preact),
            "input_map": node.input_map_cpp(),
            "recurrent_map": "" if fused else node.recurrent_map_cpp(),
            "activations": self.activations_config(node),
        }
        return node.input_map_configs() + CELL_CONFIG_TEMPLATE.format(**params)

    @staticmethod
    def activations_config(node) -> str:
        """The table bounds, or the PWL segments (``nnet::pwl_eval``) on the input types' names."""
        activations = node.activations
        if not activations.piecewise_linear:
            tables = {}
            for name in ("gate", "candidate", "state"):
                tables[f"{name}_lut_lo"] = node.get_attr(f"{name}_lut_lo")
                tables[f"{name}_lut_size"] = node.get_weights(f"{name}_lut").data_length
            return TABLES_CONFIG_TEMPLATE.format(**tables)
        uses = (("gate", "accum_t"), ("candidate", "accum_t"), ("state", "state_t"))
        return "\n".join([PWL_CONFIG_LINE, *(pwl_cpp(use, getattr(activations, use), x_t) for use, x_t in uses)])


class LSTMFunctionTemplate(FunctionCallTemplate):
    """The ``nnet::lstm_sequence`` call (one subclass per family, for its headers)."""

    layer_class = LSTMFamilyLayer

    def __init__(self):
        headers = ["nnet_utils/nnet_lstm_cell.h", *(f"nnet_utils/{Path(h).name}" for h in self.layer_class.headers)]
        super().__init__(self.layer_class, include_header=headers)
        self.template = FUNCTION_TEMPLATE

    def format(self, node):
        params = self._default_function_params(node)
        params["b"] = node.get_weights("bias").name
        # the reset port of a stateful layer in an overlay (hls_project.input_stream.AddResetPort)
        params["reset"] = f"{node.get_input_variable(node.inputs[1]).name}, " if len(node.inputs) > 1 else ""
        if node.activations.piecewise_linear:
            return PWL_FUNCTION_TEMPLATE.format(**params)
        for name in TABLES:
            params[f"{name}_lut"] = node.get_weights(f"{name}_lut").name
        return self.template.format(**params)
