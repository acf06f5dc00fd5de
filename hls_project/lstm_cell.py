"""The hls4ml side of every LSTM family: the IR base with the hooks a family supplies, the
converter handler, the config/function templates, registration and the NumPy execution.

A family is one IR layer class here (``LSTMFamilyLayer`` subclass with ``keras_class`` set) and
its HLS header; defining the class registers it with hls4ml (layer, handler, templates on every
backend in ``BACKENDS``). Everything family-specific is read from the Keras cell, rebuilt from
the layer's config (``node.cell``): the decomposition, the weights, ``fused_recurrent``. The
gate block in ``nnet_lstm_cell.h`` is configured from here.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import fields

import hls4ml
import numpy as np
from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
from hls4ml.model.layers import Layer
from hls4ml.model.types import IntegerPrecisionType, NamedType

from fixedpoint import FixedType, exact_sum_type, magnitude
from fixedpoint.hls_types import to_hls4ml
from hls_project.cost import LayerEstimate, Memory, Stage
from hls_project.input_stream import stream_element_values
from hls_project.lut import activation_table
from hls_project.reference import LSTMCellActivations, join_raw, join_type, lstm_sequence
from models import activation_pwl
from models.quantization import LSTMTypes

BACKENDS = ("Vivado", "Vitis", "VivadoAccelerator")
FAMILY_LAYERS: dict = {}  # Keras class name -> LSTMFamilyLayer subclass


# The members of the layer config a family fills in (nnet_lstm_cell.h), their heads owned here: a
# family returns their bodies (LSTMFamilyLayer.input_map_body, recurrent_map_body).
INPUT_MAP_HEAD = (
    "    template <class data_T>\n"
    "    static void input_map(hls::stream<data_T> &frame, const state_t h[n_state], accum_t zx[4 * n_state]) {"
)
CALL_INPUT_MAP_HEAD = (
    "    static const bool call_input_map = true;\n"
    "    template <class data_T> static void input_maps({source}, hls::stream<accum_t> &zx) {{"
)
CALL_SOURCES = {True: "hls::stream<data_T> &data", False: "const data_T data[n_timesteps * n_in]"}  # by io_stream
RECURRENT_MAP_HEAD = "    static void recurrent_map(const state_t h[n_state], rec_t zh[4 * n_state]) {"


def config_member(head: str, body: str) -> str:
    """A member function of the layer config: its ``head`` (signature and brace), ``body`` (C++
    lines indented 8 spaces) and the closing brace."""
    return f"{head}\n{body}\n    }}"


def exact_cpp(ftype: FixedType) -> str:
    """An exact accumulator's C++ type: no rounding or saturation logic, it never needs any."""
    return f"ap_fixed<{ftype.width},{ftype.integer}>"


def product_sum_type(terms: int, in_type: FixedType, weight_type: FixedType) -> FixedType:
    """The exact type of a sum of ``terms`` products ``in * weight``."""
    return exact_sum_type(terms * magnitude(in_type) * magnitude(weight_type), in_type.frac + weight_type.frac)


STATE_PRODUCTS = 3  # per unit and frame in nnet::lstm_cell_step: f * c, i * g, o * tanh(c)
PWL_PRODUCTS = 5  # and with piecewise-linear activations, one slope product per i, f, g, o, tanh(c)
# The lookup tables of a layer (weights ``<name>_lut``) and the activation each holds: the o gate
# reads a copy of the gate table, so the State loop's three gate reads fit two ports and one (II 1).
TABLE_FUNCTION = {"gate": "gate", "output_gate": "gate", "candidate": "candidate", "state": "state"}
TABLES = tuple(TABLE_FUNCTION)


def multiplier_limit(products: int, reuse_factor: int) -> int:
    """Multipliers of a loop pipelined at II ``reuse_factor`` with ``products`` per iteration
    (the ``ALLOCATION`` limit every kernel config carries as ``multiplier_limit``)."""
    return -(-int(products) // max(1, int(reuse_factor)))


def smallest_divisor_reaching(size: int, need: int) -> int:
    """The smallest divisor of ``size`` that is at least ``need`` (``size`` when ``need`` exceeds it):
    a kernel's parallelism, a divisor so that its banks line up with the work."""
    return min(d for d in range(min(max(1, need), size), size + 1) if size % d == 0)


def recurrent_block(n_state: int, reuse_factor: int) -> int:
    """Terms of ``h @ U`` read per cycle: the smallest divisor of ``n_state`` that reaches II
    ``reuse_factor`` (a divisor, so that cyclic banks of ``h`` and of gate-major ``U`` line up)."""
    return smallest_divisor_reaching(n_state, multiplier_limit(n_state, reuse_factor))


FOLDING_CONFIG_KEY = "Folding"  # hls_config["LayerName"][layer]: {folding stage: reuse factor}


def layout_folding(node) -> dict:
    """The folding a family's ``weight_layout`` stores its weights for, when the order depends on
    it: the configured one, recorded so that writing the config can check it still holds."""
    node.set_attr("layout_folding", node.folding())
    return node.get_attr("layout_folding")


def cell_activations(types: LSTMTypes, cell) -> LSTMCellActivations:
    """The gate block's activations for Keras ``cell`` on ``types``: exact lookup tables, or the
    cell's ``activation_approximation`` as piecewise-linear segments."""
    if cell.activation_approximation is not None:
        fixed_types = {f"{f.name}_quantizer": getattr(types, f.name) for f in fields(types)}
        return LSTMCellActivations(
            **activation_pwl.gate_block_activations(
                cell.activation_approximation, cell.activation, cell.recurrent_activation, fixed_types
            )
        )
    return LSTMCellActivations(
        gate=activation_table(cell.recurrent_activation, types.accumulator, types.activation),
        candidate=activation_table(cell.activation, types.accumulator, types.activation),
        state=activation_table(cell.activation, types.state, types.activation),
    )


def state_products(activations: LSTMCellActivations) -> int:
    """Products per unit in the state-update loop (its ``ALLOCATION`` limit's numerator)."""
    return STATE_PRODUCTS + (PWL_PRODUCTS if activations.piecewise_linear else 0)


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


def weight_grid(values, ftype: FixedType) -> np.ndarray:
    """Weights rounded exactly as the Keras layer rounds them (float64 on the type's grid)."""
    return ftype.quantize(np.asarray(values, np.float64))


def keras_cell(keras_layer: dict):
    """The Keras cell of a family layer, rebuilt (unbuilt, no weights) from its class name and config."""
    return FAMILY_LAYERS[keras_layer["class_name"]].keras_class.from_config(keras_layer["config"]).cell


def map_input_type(types: LSTMTypes, fused_recurrent: bool) -> FixedType:
    """The type of the input map's input: the frame, or ``[x; h]`` for fused families."""
    return join_type(types) if fused_recurrent else types.input


class LSTMFamilyLayer(Layer, metaclass=ABCMeta):
    """IR base of every family: the output, the shared weights (bias, lookup tables), the named
    types, the family's weights, and the hooks a family supplies (abstract methods below).

    Attributes set by the handler: ``n_in, n_out, n_timesteps, return_sequences, stateful,
    keras_layer`` (the Keras class name and config the cell is rebuilt from), and
    ``<weight>_data`` for every weight (float values on their grids).
    """

    keras_class = None  # the models.QuantizedRNN subclass this IR lowers; setting it registers the family
    headers = ()  # the family's nnet_utils headers (beside nnet_lstm_cell.h)
    # the input map takes a whole call (input_maps: a pipeline of processes, the last writing the zx
    # FIFO; nnet_lstm_cell.h's call_input_map) instead of input_map frame by frame
    call_input_map = False
    # the input map's stages are DATAFLOW processes, each streaming to the next (a frame pipeline):
    # a whole call's of them run a call ahead (call_input_map), a fused family's take their latency
    pipelined_input_map = False
    # the recurrent map is nnet::dense_recurrent_map on the kernel stored gate-major (4H, H): a
    # family with its own recurrent_map_body sets False
    dense_recurrent_map = True

    # -- folding: each pipelined stage with products has its own reuse factor ------------------
    def input_map_folding_stages(self) -> list:
        """The names of the input map's folding stages (each one reuse factor: its II and
        multipliers; a family's ``input_map_stages`` mark theirs with ``Stage.fold``). None by
        default: the family's input map does not fold."""
        return []

    def folding_stages(self) -> list:
        """Every stage the folding pass sets: the input map's, the recurrent map, the state update."""
        recurrent = [] if self.fused_recurrent else ["recurrent map"]
        return self.input_map_folding_stages() + recurrent + ["state update"]

    def folding_options(self) -> dict:
        """Settings of the layer's datapath besides its reuse factors that the folding pass may
        narrow when even the most folded design does not fit, ``{name: (default, narrower, ...)}``
        (a family's; none by default)."""
        return {}

    def folding(self) -> dict:
        """``{folding stage: reuse factor}``: an estimate's override (attribute ``folding``), else
        the config's ``Folding`` for this layer (``hls_project.convert(folding=...)``), each stage it
        does not name at the layer's reuse factor; and the ``folding_options`` it names."""
        given = self.get_attr("folding")
        if given is None:
            given = self.model.config.get_layer_config_value(self, FOLDING_CONFIG_KEY, None) or {}
        options = self.folding_options()
        unknown = sorted(set(given) - set(self.folding_stages()) - set(options))
        if unknown:
            raise ValueError(
                f"layer '{self.name}' has no folding stage {', '.join(map(repr, unknown))} "
                f"(it has: {', '.join([*self.folding_stages(), *options])})"
            )
        for name, values in options.items():
            if name in given and int(given[name]) not in values:
                raise ValueError(f"layer '{self.name}': {name!r} is one of {list(values)}, got {given[name]}")
        base = self.get_attr("reuse_factor") or self.model.config.get_reuse_factor(self)
        folding = {stage: int(given.get(stage, base)) for stage in self.folding_stages()}
        return folding | {name: int(given[name]) for name in options if name in given}

    def folding_option(self, name: str) -> int:
        """The value of folding option ``name``: the folding's, else its default."""
        return self.folding().get(name, self.folding_options()[name][0])

    def fold(self, stage: str) -> int:
        """The reuse factor of folding stage ``stage``."""
        return self.folding()[stage]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("keras_class") is not None:
            register(cls)

    # -- NumPy bit-accurate execution (FINN's execute_node) ------------------------------------
    @staticmethod
    @abstractmethod
    def input_map_reference(cell, weights: list, types: LSTMTypes, frac: int):
        """The input map on raw integers: returns ``f(x) -> zx``, x (batch, n_in) raw with ``frac``
        fractional bits (the frame, or ``[x; h]`` zero-padded), zx (batch, 4H) accumulator raw.
        ``weights``: the input-map weights as raw kernel integers, in the cell's order."""

    @staticmethod
    def recurrent_map_reference(cell, weights: list, types: LSTMTypes):
        """The recurrent map on raw integers: returns ``f(h) -> (zh raw, zh frac)``; dense ``h @ U``, exact."""
        recurrent = weights[0]
        return lambda h: (h @ recurrent, types.state.frac + types.recurrent.frac)

    # -- C++ ---------------------------------------------------------------------------------
    @abstractmethod
    def input_map_configs(self) -> str:
        """C++ placed before the layer config: the structs of the family's steps."""

    def input_map_cpp(self) -> str:
        """The layer config's input map member around ``input_map_body``: ``input_map(frame, h,
        zx)``, frame by frame, or with ``call_input_map`` ``input_maps(data, zx)``, a whole call
        (``data`` the call's stream, or its array with io_parallel) into the zx FIFO."""
        if self.call_input_map:
            head = CALL_INPUT_MAP_HEAD.format(source=CALL_SOURCES[self.io_stream()])
        else:
            head = INPUT_MAP_HEAD
        return config_member(head, self.input_map_body())

    @abstractmethod
    def input_map_body(self) -> str:
        """The body of the input map member (C++ lines indented 8 spaces), bit-equal to
        ``input_map_reference``: ``input_map`` reads the ``n_join`` values of ``[x; h; 0...]`` in
        order with one ``nnet::join_reader<data_T, config>`` (the frame as it streams in), or the
        frame's packs (``input_pack`` values each) as they come, into ``zx``; ``input_maps``
        (``call_input_map``) reads the call's frames from ``data`` and writes their
        pre-activations into the FIFO ``zx``."""

    def recurrent_map_type(self) -> FixedType:
        """The type of ``zh`` (the recurrent map's output): exact for the dense ``h @ U``."""
        types = self.lstm_types
        return product_sum_type(self.get_attr("n_out"), types.state, types.recurrent)

    def weight_layout(self, name: str, data):
        """Weight ``name`` (float values, the Keras shape) in the order the kernel reads it. By
        default the dense recurrent kernel is stored gate-major, ``(4H, H)``, for
        ``nnet::dense_recurrent_map`` (``dense_recurrent_map``); everything else as is."""
        if name == "recurrent_kernel" and self.dense_recurrent_map:
            return np.asarray(data).T
        return data

    def recurrent_map_cpp(self) -> str:
        """The layer config's ``recurrent_map(h, zh)`` member around ``recurrent_map_body``."""
        return config_member(RECURRENT_MAP_HEAD, self.recurrent_map_body())

    def recurrent_map_body(self) -> str:
        """The body of ``recurrent_map`` (override together with ``recurrent_map_stages`` and
        ``dense_recurrent_map``): the dense ``h @ U`` of ``nnet::dense_recurrent_map``."""
        weights = self.weight_vars("recurrent_map")
        return f"        nnet::dense_recurrent_map<config{self.index}>(h, zh, {weights[0]});"

    def io_stream(self) -> bool:
        return self.model.config.get_config_value("IOType") == "io_stream"

    # -- cost (hls_project.cost) ------------------------------------------------------------
    def input_pack(self) -> int:
        """Values per element of the layer's input stream (``data_T::size`` of ``input_map``): the
        model input's narrow pack (``hls_project.input_stream``) or hls4ml's element; 1 with
        io_parallel, whose frame FIFO holds single values (``nnet::lstm_input_map``)."""
        if self.model.config.get_config_value("IOType") != "io_stream":
            return 1
        return stream_element_values(self.get_input_variable())

    def join_pack(self) -> int:
        """Values of ``[x; h; 0...]`` a fused family's input map reads at once (``h`` is partitioned
        for them): 1 unless the family says otherwise."""
        return 1

    @abstractmethod
    def input_map_stages(self) -> list:
        """The input map's ``hls_project.cost.Stage`` list for one frame, computed from the same
        schedule objects that write its configs and C++ (one source of truth)."""

    def recurrent_map_stages(self) -> list:
        """The recurrent map's stages (override together with ``recurrent_map_body``): the dense
        ``h @ U`` of ``nnet::dense_recurrent_map``, ``recurrent_block`` terms per cycle."""
        types, n = self.lstm_types, self.get_attr("n_out")
        block = recurrent_block(n, self.fold("recurrent map"))
        weights = Memory("recurrent kernel", 4 * n * n, types.recurrent.width, block)
        product = (types.state.width, types.recurrent.width)
        return [
            Stage(
                "recurrent map",
                4 * n * (n // block),
                1,
                block,
                product,
                self.recurrent_map_type().width,
                (weights,),
                reads=(("recurrent kernel", block),),
                fold="recurrent map",
            )
        ]

    def estimate(self) -> LayerEstimate:
        """The layer's stages for one frame, run ``n_timesteps`` times per model call, and the
        cycles of its recurrence at the fastest folding (``LayerEstimate.fastest_recurrence``)."""
        return self.stage_estimate(self.fastest_recurrence())

    def fastest_recurrence(self) -> int:
        """Cycles of the recurrence with every stage on it at reuse factor 1 (the recurrent map and
        the state update; every stage of a fused family). No other stage is on it, so it is the
        same at any folding: computed once per node (the folding pass estimates it many times)."""
        if getattr(self, "_fastest_recurrence", None) is None:
            on_recurrence = self.folding_stages() if self.fused_recurrent else ["recurrent map", "state update"]
            given = self.get_attr("folding")
            self.set_attr("folding", dict(self.folding(), **dict.fromkeys(on_recurrence, 1)))
            try:
                self._fastest_recurrence = self.stage_estimate(0).recurrence_cycles
            finally:
                self.set_attr("folding", given)
        return self._fastest_recurrence

    def stage_estimate(self, fastest_recurrence: int) -> LayerEstimate:
        """The layer's estimate at its folding (``fastest_recurrence``: 0 for this one's own)."""
        types, n, reuse_factor = self.lstm_types, self.get_attr("n_out"), self.fold("state update")
        activations = self.activations
        product_bits = (types.activation.width, max(types.state.width, types.activation.width))
        sum_bits = types.state.width
        if activations.piecewise_linear:
            # no tables; PWL_PRODUCTS more products (slope * (z - start)) and adders (base + product) in the
            # same loop: the stage's operands and adders are the widest of both kinds (one ALLOCATION limit)
            tables = ()
            for pwl in (activations.gate, activations.candidate, activations.state):
                bits = sorted((pwl.slope_type().width, pwl.in_type.width + 1), reverse=True)
                product_bits = tuple(max(a, b) for a, b in zip(sorted(product_bits, reverse=True), bits, strict=True))
                sum_bits = max(sum_bits, pwl.value_type().width)
        else:
            tables = tuple(
                Memory(
                    f"{name.replace('_', ' ')} table",
                    self.get_weights(f"{name}_lut").data_length,
                    types.activation.width,
                )
                for name in TABLES
            )
        state = (
            Memory("h", n, types.state.width, self.join_pack()),  # cyclic banks for a fused map's reads
            Memory("c", n, types.state.width),
            Memory("bias", 4 * n, types.bias.width),
            Memory("z", 4 * n, types.accumulator.width, 4),  # partitioned by gate: one read each
        )
        # an iteration reads z once per gate, the gate table for i and f (its two ports) and its copy for o
        reads = (("z", 4),) + ((("gate table", 2), ("output gate table", 1)) if tables else ())
        # the map's output the preactivation reads: zx of a fused family (its map is in this loop's
        # frame), else zh of the recurrent map (zx comes from the FIFO)
        map_output = (
            Memory("zx", 4 * n, types.accumulator.width)
            if self.fused_recurrent
            else Memory("zh", 4 * n, self.recurrent_map_type().width)
        )
        cell = [
            Stage("preactivation", 4 * n, 1, memories=(map_output,)),  # no product: II 1
            Stage(
                "state update",
                n,
                reuse_factor,
                multiplier_limit(state_products(activations), reuse_factor),
                product_bits,
                sum_bits,
                tables + state,
                state_products(activations),
                reads,
                fold="state update",
            ),
        ]
        frames = self.get_attr("n_timesteps")
        macs = self.cell.decomposition.macs + self.cell.recurrent_map_macs()
        dense_macs = (self.get_attr("n_in") + n) * 4 * n  # the uncompressed LSTM's two matrices
        if self.fused_recurrent:  # one frame after another: map (a pipeline's latency, or its stages' sum), then cell
            input_map = self.input_map_stages()
            stages, ahead, pipeline = input_map + cell, 0, len(input_map) if self.pipelined_input_map else 0
        else:  # nnet::lstm_call's DATAFLOW: the input half runs a frame ahead of the recurrent half
            input_half, recurrent_map = self.input_map_stages(), self.recurrent_map_stages()
            if not self.call_input_map:  # frame by frame into frame_zx, then sent into the FIFO
                fifo = Memory("pre-activation FIFO", 4 * n, types.accumulator.width)
                frame_zx = Memory("frame_zx", 4 * n, types.accumulator.width)
                input_half.append(Stage("pre-activation send", 4 * n, 1, memories=(frame_zx, fifo)))
            stages, ahead, pipeline = input_half + recurrent_map + cell, len(input_half), 0
        return LayerEstimate(
            self.name,
            self.keras_class.__name__,
            tuple(stages),
            frames,
            macs * frames,
            dense_macs * frames,
            ahead,
            0 if self.fused_recurrent else len(recurrent_map),
            recurrent=True,
            folding=self.folding(),
            ahead_pipeline=self.call_input_map,
            pipeline_stages=pipeline,
            fastest_recurrence=fastest_recurrence,
        )

    # -- shared ------------------------------------------------------------------------------
    @property
    def cell(self):
        """The Keras cell (``keras_cell`` of the layer's class name and config), built once per node."""
        if getattr(self, "_cell", None) is None:
            self._cell = keras_cell(self.get_attr("keras_layer"))
        return self._cell

    @property
    def lstm_types(self) -> LSTMTypes:
        return LSTMTypes.from_fixed_types(self.cell.fixed_types, self.name)

    @property
    def activations(self) -> LSTMCellActivations:
        """The gate block's activations (``cell_activations``), built once per node."""
        if getattr(self, "_activations", None) is None:
            self._activations = cell_activations(self.lstm_types, self.cell)
        return self._activations

    @property
    def fused_recurrent(self) -> bool:
        return self.cell.fused_recurrent

    def weight_vars(self, part: str) -> list:
        """C++ names of the ``input_map`` or ``recurrent_map`` weights, in the cell's order."""
        return [self.get_weights(name).name for name in self.get_attr(f"{part}_weight_names")]

    def add_named_type(self, attr: str, ftype: FixedType):
        self.set_attr(attr, NamedType(f"layer{self.index}_{attr}", to_hls4ml(ftype)))

    def add_fixed_weight(self, name, var_name, type_name, ftype: FixedType, data):
        self.add_weights_variable(
            name=name, var_name=var_name, type_name=type_name, precision=to_hls4ml(ftype), data=data
        )

    def initialize(self):
        types = self.lstm_types
        steps = self.get_attr("n_timesteps") if self.get_attr("return_sequences") else None
        shape = [steps, self.get_attr("n_out")] if steps else [self.get_attr("n_out")]
        self.add_output_variable(shape, precision=to_hls4ml(types.state))
        for attr in ("input", "accumulator", "state", "activation"):
            self.add_named_type(f"{attr}_t", getattr(types, attr))
        self.add_named_type("join_t", map_input_type(types, self.fused_recurrent))
        for part, short, ftype in (
            ("input_map", "kernel", types.kernel),
            ("recurrent_map", "recurrent", types.recurrent),
        ):
            for name in self.get_attr(f"{part}_weight_names"):
                data = self.weight_layout(name, self.get_attr(f"{name}_data"))
                if name in self.cell.index_weight_names:  # unsigned integers, as narrow as they fit
                    precision = IntegerPrecisionType(
                        width=max(1, int(np.max(data, initial=0)).bit_length()), signed=False
                    )
                    self.add_weights_variable(
                        name=name,
                        var_name=f"{name}_{{index}}",
                        type_name=f"{name}{{index}}_t",
                        precision=precision,
                        data=data,
                    )
                else:
                    self.add_fixed_weight(name, f"{name}_{{index}}", f"{short}{{index}}_t", ftype, data)
        self.add_fixed_weight("bias", "b{index}", "bias{index}_t", types.bias, self.get_attr("bias_data"))
        activations = self.activations
        if activations.piecewise_linear:
            return  # no tables: the segments are constants of the layer config
        for name in TABLES:
            table = getattr(activations, TABLE_FUNCTION[name])
            values = types.activation.from_raw(table.values)
            self.add_fixed_weight(
                f"{name}_lut", f"{name}_lut{{index}}", "activation{index}_t", types.activation, values
            )
            self.set_attr(f"{name}_lut_lo", table.lo_raw)


def read_weight(data_reader, layer_name: str, weight: str) -> np.ndarray:
    data = data_reader.get_weights_data(layer_name, f"/{weight}:")  # '/' and ':' so core_1 is not core_10
    if data is None:
        raise ValueError(f"layer '{layer_name}': no weight '{weight}' in the model's weights")
    return data


def parse_lstm_family(keras_layer, input_names, input_shapes, data_reader):
    """The converter handler of every family: sizes, flags, the Keras config and every weight."""
    config = keras_layer["config"]
    name = config["name"]
    shape = input_shapes[0]
    if len(shape) != 3 or shape[1] is None:
        raise ValueError(
            f"layer '{name}': the model input must be (frames, features) with a fixed number of "
            f"frames for hardware, got {shape[1:]}"
        )
    if config.get("return_state") or config.get("go_backwards"):
        raise ValueError(f"layer '{name}': return_state and go_backwards are not supported in hardware")
    cell = keras_cell(keras_layer)
    types = LSTMTypes.from_fixed_types(cell.fixed_types, name)
    units = cell.units
    layer = {
        "name": name,
        "class_name": keras_layer["class_name"],
        "keras_layer": {"class_name": keras_layer["class_name"], "config": config},
        "n_in": int(shape[2]),
        "n_out": units,
        "n_timesteps": int(shape[1]),
        "return_sequences": bool(config.get("return_sequences", False)),
        "stateful": bool(config.get("stateful", False)),
    }
    parts = [("input_map", cell.input_map_weight_shapes(), types.kernel)]
    parts.append(("recurrent_map", {} if cell.fused_recurrent else cell.recurrent_map_weight_shapes(), types.recurrent))
    for part, shapes, ftype in parts:
        layer[f"{part}_weight_names"] = list(shapes)
        for weight in shapes:
            data = read_weight(data_reader, name, weight)
            is_index = weight in cell.index_weight_names
            layer[f"{weight}_data"] = np.asarray(data, np.int64) if is_index else weight_grid(data, ftype)
    cell.check_index_weights({weight: layer[f"{weight}_data"] for weight in cell.index_weight_names}, name)
    layer["bias_data"] = weight_grid(read_weight(data_reader, name, "bias"), types.bias)
    if input_names is not None:
        layer["inputs"] = input_names
    out_shape = [shape[0], shape[1], units] if layer["return_sequences"] else [shape[0], units]
    return layer, out_shape


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
            "n_join": node.cell.decomposition.n_in if fused else node.get_attr("n_in"),
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
        headers = ["nnet_utils/nnet_lstm_cell.h", *(f"nnet_utils/{h}" for h in self.layer_class.headers)]
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


def register(layer_class) -> None:
    """Register a family's IR class with hls4ml: layer, handler and templates (once per name)."""
    name = layer_class.keras_class.__name__
    known = FAMILY_LAYERS.get(name)
    if known is not None:
        if known.__qualname__ != layer_class.__qualname__:
            raise ValueError(f"Keras class {name} is lowered by {known.__module__}.{known.__qualname__} already")
        FAMILY_LAYERS[name] = layer_class
        return
    FAMILY_LAYERS[name] = layer_class
    hls4ml.model.layers.register_layer(name, layer_class)
    templates = [
        type(f"{layer_class.__name__}{base.__name__[4:]}", (base,), {"layer_class": layer_class})
        for base in (LSTMConfigTemplate, LSTMFunctionTemplate)
    ]
    for backend_name in BACKENDS:
        backend = hls4ml.backends.get_backend(backend_name)
        for template in templates:
            backend.register_template(template)
    hls4ml.converters.register_keras_v2_layer_handler(name, parse_lstm_family)


def family_layer_of(layer):
    """The IR class that lowers Keras layer ``layer``; a ValueError when none does."""
    family = FAMILY_LAYERS.get(type(layer).__name__)
    if family is not None and family.keras_class is type(layer):
        return family
    raise ValueError(f"layer '{layer.name}' ({type(layer).__name__}) is not a registered LSTM family")


def raw_weight(weight, ftype: FixedType) -> np.ndarray:
    """A Keras weight as the kernel holds it: raw integers of ``ftype``, or an index weight as is."""
    return np.asarray(weight.numpy(), np.int64) if weight.dtype.is_integer else ftype.to_raw(weight.numpy())


def execute(layer, x, state=None):
    """Bit-accurate NumPy execution of a Keras family layer, as the HLS kernel computes it.

    x: (batch, T, n_in) floats. Returns ``(outputs as float64, (h, c) raw)``; pass the state back
    to continue a stateful stream.
    """
    family = family_layer_of(layer)
    cell = layer.cell
    types = LSTMTypes.from_fixed_types(cell.fixed_types, layer.name)
    kernels = [raw_weight(w, types.kernel) for w in cell.input_map_weights]
    input_map = family.input_map_reference(cell, kernels, types, map_input_type(types, cell.fused_recurrent).frac)
    if cell.fused_recurrent:
        n_join = cell.decomposition.n_in
        x_map, recurrent_map = (lambda x_raw, h_raw: input_map(join_raw(x_raw, h_raw, n_join, types))), None
    else:
        recurrent = [raw_weight(w, types.recurrent) for w in cell.recurrent_map_weights]
        x_map, recurrent_map = (
            (lambda x_raw, h_raw: input_map(x_raw)),
            family.recurrent_map_reference(cell, recurrent, types),
        )
    out, state = lstm_sequence(
        types.input.to_raw(x),
        x_map,
        recurrent_map,
        types.bias.to_raw(cell.bias.numpy()),
        types,
        cell_activations(types, cell),
        state=state,
        return_sequences=bool(layer.return_sequences),
    )
    return types.state.from_raw(out), state
