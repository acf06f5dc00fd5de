"""The IR base of every LSTM family (hls4ml's IR layer), with the hooks a family supplies.

A family is one IR layer class (``LSTMFamilyLayer`` subclass with ``keras_class`` set) and its
HLS header; defining the class registers it with hls4ml (``hls_project.families``: layer, the
converter handler of ``hls_project.lstm_handler``, the templates of ``hls_project.lstm_templates``
on every backend). Everything family-specific is read from the Keras cell, rebuilt from the
layer's config (``node.cell``): the decomposition, the weights, ``fused_recurrent``. The NumPy
execution of a family layer is ``hls_project.execute``; the sizing rules ``hls_project.sizing``.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import fields, replace

import numpy as np
from hls4ml.model.attributes import Attribute
from hls4ml.model.layers import Layer
from hls4ml.model.types import IntegerPrecisionType, NamedType

from fixedpoint import FixedType
from fixedpoint.hls_types import to_hls4ml
from hls_project.cost import LayerEstimate, Memory, Stage
from hls_project.families import keras_cell, register_family
from hls_project.input_stream import stream_element_values
from hls_project.lut import activation_table
from hls_project.reference import LSTMCellActivations
from hls_project.sizing import map_input_type, multiplier_limit, product_sum_type, recurrent_block, state_products
from models import activation_pwl
from models.quantization import LSTMTypes

# The members of the layer config a family fills in (nnet_lstm_cell.h), their heads owned here: a
# family returns their bodies (LSTMFamilyLayer.input_map_body, recurrent_map_body).
INPUT_MAP_HEAD = (
    "    template <class data_T>\n"
    "    static void input_map(hls::stream<data_T> &frame, const state_t h[n_state], accum_t zx[4 * n_state]) {"
)
STREAMING_INPUT_MAP_HEAD = (  # input_map_streams_zx: the frame's pre-activations into the FIFO
    "    static const bool input_map_streams_zx = true;\n"
    "    template <class data_T>\n"
    "    static void input_map(hls::stream<data_T> &frame, const state_t h[n_state], hls::stream<accum_t> &zx) {"
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


# The lookup tables of a layer (weights ``<name>_lut``) and the activation each holds: the o gate
# reads a copy of the gate table, so the State loop's three gate reads fit two ports and one (II 1).
TABLE_FUNCTION = {"gate": "gate", "output_gate": "gate", "candidate": "candidate", "state": "state"}
TABLES = tuple(TABLE_FUNCTION)


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


class LSTMFamilyLayer(Layer, metaclass=ABCMeta):
    """IR base of every family: the output, the shared weights (bias, lookup tables), the named
    types, the family's weights, and the hooks a family supplies (abstract methods below).

    The handler (``hls_project.lstm_handler``) sets the declared attributes below and
    ``<weight>_data`` for every weight (float values on their grids).
    """

    _expected_attributes = [
        Attribute("n_in", description="features per frame"),
        Attribute("n_out", description="units (H)"),
        Attribute("n_timesteps", description="frames per call"),
        Attribute("return_sequences", value_type=bool, default=False, description="h of every frame, else the last"),
        Attribute("stateful", value_type=bool, default=False, description="(h, c) kept between calls"),
        Attribute("keras_layer", value_type=dict, description="the Keras class name and config of the cell"),
    ]

    keras_class = None  # the models.QuantizedRNN subclass this IR lowers; setting it registers the family
    # the family's headers (beside nnet_lstm_cell.h): names in this tree's nnet_utils, or the paths
    # of a package's own (registered with every backend, written into the project's nnet_utils)
    headers = ()
    # the input map takes a whole call (input_maps: a pipeline of processes, the last writing the zx
    # FIFO; nnet_lstm_cell.h's call_input_map) instead of input_map frame by frame
    call_input_map = False
    # input_map writes a frame's pre-activations into the zx FIFO itself, in order (nnet_lstm_cell.h's
    # input_map_streams_zx): no frame_zx array and no send loop after it
    input_map_streams_zx = False
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
            register_family(cls)

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
            head = STREAMING_INPUT_MAP_HEAD if self.input_map_streams_zx else INPUT_MAP_HEAD
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

    def n_join(self) -> int:
        """Values the input map reads per frame: ``n_in``, or a fused family's ``[x; h; 0...]``."""
        return self.cell.decomposition.n_in if self.fused_recurrent else self.get_attr("n_in")

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
        # an iteration reads unit k's four pre-activations, a bank per gate: z, filled by the
        # preactivation loop from the FIFO's zx, zh and the bias; or, fused, the map's zx and the bias
        # themselves (nnet::lstm_preactivation)
        if self.fused_recurrent:
            gates = (Memory("zx", 4 * n, types.accumulator.width, 4), Memory("bias", 4 * n, types.bias.width, 4))
            reads = (("zx", 4), ("bias", 4))
            preactivation = []
        else:
            gates = (Memory("bias", 4 * n, types.bias.width), Memory("z", 4 * n, types.accumulator.width, 4))
            reads = (("z", 4),)
            zh = Memory("zh", 4 * n, self.recurrent_map_type().width)
            preactivation = [Stage("preactivation", 4 * n, 1, memories=(zh,))]  # no product: II 1
        state = (
            Memory("h", n, types.state.width, self.join_pack()),  # cyclic banks for a fused map's reads
            Memory("c", n, types.state.width),
            *gates,
        )
        # and the gate table for i and f (its two ports) and its copy for o
        reads += (("gate table", 2), ("output gate table", 1)) if tables else ()
        cell = preactivation + [
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
            fifo = Memory("pre-activation FIFO", 4 * n, types.accumulator.width)
            if self.input_map_streams_zx:  # frame by frame, the map's last stage writing the FIFO
                input_half[-1] = replace(input_half[-1], memories=input_half[-1].memories + (fifo,))
            elif not self.call_input_map:  # frame by frame into frame_zx, then sent into the FIFO
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
