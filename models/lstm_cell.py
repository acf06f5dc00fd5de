"""The gate and state block shared by every compressed LSTM family (Keras side), and the hooks
a family supplies.

A family is a cell (``QuantizedLSTMCell`` subclass) plus its RNN layer (``QuantizedRNN``
subclass with a ``family`` name). The cell supplies its **input map** (abstract methods below:
the structure, the weights, the map in TensorFlow, and the decomposition of a dense matrix) and
may replace the dense **recurrent map**; the RNN layer says how to build one for a task. The gate
block, bias, activations and state update are the same for every family, and
``hls_project.reference`` and ``hls_project/nnet_utils/nnet_lstm_cell.h`` implement exactly this
step.

One step, with ``q_X`` the rounding to quantizer ``X`` (half to even, then saturate; a quantizer
left at ``None`` means no rounding, i.e. float training)::

    x  = q_input(x_t)                                                     (n_in,)
    zx = input_map(x, q_kernel(W))      family specific, on the accumulator grid     (4H,)
    zh = recurrent_map(h_{t-1}, q_recurrent(U))   dense by default: h @ U, exact     (4H,)
    z  = q_accumulator(zx + zh + q_bias(b))                               (4H,) gates i,f,c,o
         (fused families: zx = input_map([x; h_{t-1}]) and no recurrent map)
    i, f, o = q_activation(recurrent_activation(z_i, z_f, z_o))
    g       = q_activation(activation(z_c))
    c_t = q_state(f * c_{t-1} + i * g)
    h_t = q_state(o * q_activation(activation(c_t)))

with sigmoid/tanh exact (the hardware's exact lookup tables), or, with
``activation_approximation``, the piecewise-linear functions of ``models.activation_pwl`` (the
hardware computes the same segments).

All arithmetic is float64, so every sum of fixed-point products is exact (up to 53 bits) and the
only rounding is the explicit ``q_*``: the hardware does the same with wide accumulators.

Quantizers: a QKeras user sets ``kernel``, ``recurrent``, ``bias`` and ``state`` (as for
``QLSTM``); ``input``, ``accumulator`` and ``activation`` then follow the rule of
``models.quantization.derive_datapath_types`` unless set explicitly.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from math import prod

import numpy as np
import tensorflow as tf

from models import activation_pwl
from models.families import register_family
from models.quantization import (
    QUANTIZER_NAMES,
    derive_datapath_types,
    fixed_type_of,
    get_quantizer,
    quantize_tf,
    serialize_quantizer,
)

ACTIVATIONS = {"sigmoid": tf.math.sigmoid, "tanh": tf.math.tanh}


def fold_gate_modes(output_modes, units=None) -> list:
    """Output modes with the gate factor 4 folded into the first: ``[4*m1, m2, ...]``.

    The flat output of such a map is the Keras gate layout ``[i | f | c | o]``, each ``units`` wide.
    """
    output_modes = [int(m) for m in output_modes]
    if units is not None and prod(output_modes) != int(units):
        raise ValueError(f"'output_modes' {output_modes} multiply to {prod(output_modes)}, not units={units}")
    return [4 * output_modes[0], *output_modes[1:]] if output_modes else output_modes


@dataclass(frozen=True)
class LSTMCost:
    """Parameter and multiply-accumulate counts of one compressed LSTM layer (per frame).

    ``input_map_macs`` and ``input_map_peak_buffer`` (words of the largest buffer the input map
    reads or writes) follow the decomposition's schedule.
    """

    input_map_params: int
    recurrent_params: int
    bias_params: int
    input_map_macs: int
    recurrent_macs: int
    dense_input_map_params: int
    input_map_peak_buffer: int
    dense_recurrent_params: int

    @classmethod
    def of(
        cls, shape, units: int, n_in: int | None = None, fused_recurrent: bool = False, recurrent_shape=None
    ) -> LSTMCost:
        """Counts for a decomposed input map ``shape`` (``n_params``, ``macs``, ``peak_buffer``, ``n_in``).

        ``fused_recurrent``: the map takes ``[x; h]`` of ``n_in + units`` values, no dense ``U``.
        ``recurrent_shape``: the structure of a compressed recurrent map (``n_params``, ``macs``);
        None for the dense ``U``.
        """
        dense_recurrent = 0 if fused_recurrent else units * 4 * units
        dense_rows = (n_in + units) if fused_recurrent else shape.n_in
        return cls(
            input_map_params=shape.n_params,
            recurrent_params=dense_recurrent if recurrent_shape is None else recurrent_shape.n_params,
            bias_params=4 * units,
            input_map_macs=shape.macs,
            recurrent_macs=dense_recurrent if recurrent_shape is None else recurrent_shape.macs,
            dense_input_map_params=dense_rows * 4 * units,
            input_map_peak_buffer=shape.peak_buffer,
            dense_recurrent_params=dense_recurrent,
        )

    @property
    def params(self) -> int:
        return self.input_map_params + self.recurrent_params + self.bias_params

    @property
    def dense_params(self) -> int:
        return self.dense_input_map_params + self.dense_recurrent_params + self.bias_params

    @property
    def compression(self) -> float:
        return self.dense_params / self.params


def check_activation(name, parameter: str) -> str:
    """The activation's name if the LUT kernel has it, else a ValueError naming ``parameter``."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(
            f"'{parameter}'={name!r} is not supported: the kernel has LUTs for " f"{sorted(ACTIVATIONS)} only"
        )
    return name


class QuantizedLSTMCell(tf.keras.layers.Layer, metaclass=ABCMeta):
    """Base LSTM cell: quantized gates and state around a family's input (and recurrent) map.

    Args:
        units: hidden size H.
        kernel_quantizer: rounds the input-map weights (e.g. TT cores).
        recurrent_quantizer: rounds the recurrent-map weights (the dense ``U`` (H, 4H) by default).
        bias_quantizer: the bias (4H,).
        state_quantizer: the states c and h (h is the layer output).
        input_quantizer: the input frame x_t.
        accumulator_quantizer: every intermediate of the input map and the gate pre-activations.
        activation_quantizer: the outputs of the sigmoid/tanh lookups.
        activation, recurrent_activation: 'tanh' or 'sigmoid'.
        activation_approximation: ``None`` (exact sigmoid/tanh) or piecewise-linear segments,
            e.g. ``{"segments": 8}`` or ``{"sigmoid": [[x, y], ...], "tanh": [...]}``
            (``models.activation_pwl``: grids, the cover rule).

    ``fixed_types`` maps each set (or derived) quantizer name to its ``FixedType``;
    ``derived_types`` maps the derived ones to the reason (see the module docstring).
    """

    # The declared property of fused families (FDHT): the input map takes [x_t; h_{t-1}] and there
    # is no recurrent map.
    fused_recurrent = False

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        recurrent_initializer="orthogonal",
        unit_forget_bias=True,
        activation_approximation=None,
        **kwargs,
    ):
        quantizers = {name: kwargs.pop(name, None) for name in QUANTIZER_NAMES}
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"'units' must be >= 1, got {units}")
        self.units = int(units)
        self.activation = check_activation(activation, "activation")
        self.recurrent_activation = check_activation(recurrent_activation, "recurrent_activation")
        self.recurrent_initializer = tf.keras.initializers.get(recurrent_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.quantizers = {}
        self.fixed_types = {}
        for name, value in quantizers.items():
            self.quantizers[name] = get_quantizer(value)
            if self.quantizers[name] is not None:
                self.fixed_types[name] = fixed_type_of(self.quantizers[name], name)
        derived = derive_datapath_types(self.fixed_types, self.units, self.fused_recurrent)
        self.fixed_types.update({name: ftype for name, (ftype, _) in derived.items()})
        self.derived_types = {name: reason for name, (_, reason) in derived.items()}
        self.activation_approximation = activation_pwl.normalize(activation_approximation)
        # {'gate', 'candidate', 'state'} -> PWLActivation, or None for the exact functions
        self.pwl_activations = activation_pwl.gate_block_activations(
            self.activation_approximation, self.activation, self.recurrent_activation, self.fixed_types
        )
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    # -- what a family supplies -----------------------------------------------------------------
    @property
    @abstractmethod
    def decomposition(self):
        """The input map's structure (e.g. ``models.tt.TTShape``): at least ``n_in`` (values it
        takes: the frame, or ``[x; h]`` zero-padded for fused families), ``n_out`` (= 4H),
        ``n_params``, ``macs`` and ``describe()``."""

    @abstractmethod
    def input_map_weight_shapes(self) -> dict:
        """``{weight name: shape}`` of the input map, in weight order (rounded by ``kernel_quantizer``)."""

    @abstractmethod
    def input_map(self, x, weights: list):
        """``(batch, n_in)`` float64 on the input grid (fused: ``[x; h]`` zero-padded) and the
        quantized weights -> ``(batch, 4H)`` float64 on the accumulator grid, gates ``[i|f|c|o]``."""

    @abstractmethod
    def decompose(self, matrix: np.ndarray) -> tuple:
        """A dense ``(n_in, 4H)`` float64 matrix -> ``(input-map weights, relative Frobenius error)``."""

    def input_map_initializer(self, name: str):
        """Initializer of input-map weight ``name``: Glorot scale for the implied dense matrix."""
        return tf.keras.initializers.RandomNormal(stddev=self.decomposition.glorot_stddev())

    def recurrent_map_weight_shapes(self) -> dict:
        """``{weight name: shape}`` of the recurrent map (rounded by ``recurrent_quantizer``): dense ``U``."""
        return {"recurrent_kernel": (self.units, 4 * self.units)}

    def recurrent_map_initializer(self, name: str):
        """Initializer of recurrent-map weight ``name``: the layer's ``recurrent_initializer``."""
        return self.recurrent_initializer

    def recurrent_map(self, h, weights: list):
        """``(batch, H)`` state -> ``(batch, 4H)``, exact (float64): ``h @ U`` unless a family
        compresses it (then it ends on the accumulator grid)."""
        return h @ weights[0]

    def recurrent_map_macs(self) -> int:
        """Multiply-accumulates of one recurrent map (per frame): ``H * 4H`` for the dense ``U``."""
        return 0 if self.fused_recurrent else self.units * 4 * self.units

    def decompose_recurrent(self, matrix: np.ndarray) -> tuple:
        """A dense ``(H, 4H)`` recurrent matrix -> ``(recurrent-map weights, relative error)``: itself, exact."""
        return [matrix], 0.0

    # Names among the maps' weights that are integer structure, not values (a sparse map's column
    # indices): int32, not trained, never rounded by a quantizer; the maps get them as they are.
    index_weight_names = ()

    def check_index_weights(self, weights: dict, layer_name: str) -> None:
        """Raise a ValueError naming layer ``layer_name`` when ``{name: integer array}`` (the index
        weights) is not a structure the maps can take; nothing to check by default."""

    def stored_index_weights(self) -> dict:
        """``{name: int array}`` of the built cell's index weights."""
        names = [*self.input_map_weight_shapes(), *(() if self.fused_recurrent else self.recurrent_map_weight_shapes())]
        weights = [*self.input_map_weights, *self.recurrent_map_weights]
        return {n: w.numpy() for n, w in zip(names, weights, strict=True) if n in self.index_weight_names}

    # -- shared block -------------------------------------------------------------------------
    def check_input_size(self, input_dim: int) -> None:
        size = self.decomposition.n_in
        if self.fused_recurrent and input_dim + self.units > size:
            raise ValueError(
                f"{self.decomposition.describe()}, fewer than the {input_dim + self.units} values of "
                "[x_t; h_t-1] (features + units)"
            )
        if not self.fused_recurrent and input_dim != size:
            raise ValueError(f"{self.decomposition.describe()}, but the input has {input_dim} features per frame")

    def build(self, input_shape):
        h = self.units
        self.check_input_size(int(input_shape[-1]))
        self.input_map_weights = [
            self.add_map_weight(name, shape, self.input_map_initializer(name))
            for name, shape in self.input_map_weight_shapes().items()
        ]
        self.recurrent_map_weights = []
        if not self.fused_recurrent:
            self.recurrent_map_weights = [
                self.add_map_weight(name, shape, self.recurrent_map_initializer(name))
                for name, shape in self.recurrent_map_weight_shapes().items()
            ]

        def bias_initializer(shape, dtype=None):
            forget = tf.ones((h,)) if self.unit_forget_bias else tf.zeros((h,))
            return tf.cast(tf.concat([tf.zeros((h,)), forget, tf.zeros((2 * h,))], 0), dtype)

        self.bias = self.add_weight(shape=(4 * h,), name="bias", initializer=bias_initializer)
        self.built = True

    def quantize(self, x, name: str):
        """Round float64 ``x`` with quantizer ``name`` (identity when it is not set)."""
        ftype = self.fixed_types.get(name)
        return x if ftype is None else quantize_tf(x, ftype)

    def add_map_weight(self, name: str, shape, initializer):
        """A map's weight: trainable values, or (``index_weight_names``) an int32 structure weight."""
        if name in self.index_weight_names:
            return self.add_weight(shape=shape, name=name, initializer=initializer, dtype="int32", trainable=False)
        return self.add_weight(shape=shape, name=name, initializer=initializer)

    def quantized_weights(self, weights, name: str) -> list:
        """Values rounded by quantizer ``name`` as float64; index weights as they are."""
        return [w if w.dtype.is_integer else self.quantize(tf.cast(w, tf.float64), name) for w in weights]

    def call(self, inputs, states, training=None):
        h_prev = tf.cast(states[0], tf.float64)
        c_prev = tf.cast(states[1], tf.float64)
        x = self.quantize(tf.cast(inputs, tf.float64), "input_quantizer")
        kernels = self.quantized_weights(self.input_map_weights, "kernel_quantizer")
        if self.fused_recurrent:
            joined = tf.concat([x, h_prev], axis=-1)
            padding = self.decomposition.n_in - joined.shape[-1]
            z = self.input_map(tf.pad(joined, [[0, 0], [0, padding]]) if padding else joined, kernels)
        else:
            recurrent = self.quantized_weights(self.recurrent_map_weights, "recurrent_quantizer")
            z = self.input_map(x, kernels) + self.recurrent_map(h_prev, recurrent)
        z = self.quantize(z + self.quantized_weights([self.bias], "bias_quantizer")[0], "accumulator_quantizer")
        z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
        gate, candidate, state = (self.activation_function(use) for use in ("gate", "candidate", "state"))
        i, f, o = (self.quantize(gate(v), "activation_quantizer") for v in (z_i, z_f, z_o))
        g = self.quantize(candidate(z_c), "activation_quantizer")
        c = self.quantize(f * c_prev + i * g, "state_quantizer")
        h = self.quantize(o * self.quantize(state(c), "activation_quantizer"), "state_quantizer")
        h32, c32 = tf.cast(h, tf.float32), tf.cast(c, tf.float32)
        return h32, [h32, c32]

    def activation_function(self, use: str):
        """The function of ``use`` ('gate': i, f, o; 'candidate': g; 'state': tanh(c)) in
        TensorFlow, before rounding: exact, or its piecewise-linear segments."""
        if self.pwl_activations is None:
            return ACTIVATIONS[self.recurrent_activation if use == "gate" else self.activation]
        return self.pwl_activations[use].evaluate_tf

    def get_config(self):
        config = {
            "units": self.units,
            "activation": self.activation,
            "recurrent_activation": self.recurrent_activation,
            "recurrent_initializer": tf.keras.initializers.serialize(self.recurrent_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "activation_approximation": self.activation_approximation,
        }
        config.update({k: serialize_quantizer(q) for k, q in self.quantizers.items()})
        return {**super().get_config(), **config}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        tf.keras.utils.register_keras_serializable(package="models")(cls)


class SizedByInput(metaclass=ABCMeta):
    """Mixin of a family cell whose input map's structure is made from the frame size (the
    block-circulant and sparse maps, unlike the TT/HT modes given up front): ``input_dim`` is set
    when the layer is built (or given, as the config stores it) and ``decomposition`` exists from
    then on. The family supplies ``input_map_structure(input_dim)`` (abstract); its constructor calls
    ``set_input_dim(input_dim)`` with the given ``input_dim`` or None."""

    input_dim = None

    @abstractmethod
    def input_map_structure(self, input_dim: int):
        """The input map's structure for frames of ``input_dim`` values (validated)."""

    def set_input_dim(self, input_dim) -> None:
        if input_dim is not None:
            self.input_map_shape = self.input_map_structure(int(input_dim))
            self.input_dim = int(input_dim)

    @property
    def decomposition(self):
        if self.input_dim is None:
            raise ValueError(f"layer '{self.name}': the input map knows its structure once the layer is built")
        return self.input_map_shape

    def check_input_size(self, input_dim):
        if self.input_dim is None:
            self.set_input_dim(input_dim)
        super().check_input_size(input_dim)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim}


class QuantizedRNN(tf.keras.layers.RNN, metaclass=ABCMeta):
    """Keras RNN wrapper over a family cell (like QKeras' QLSTM over QLSTMCell).

    Subclasses set ``cell_class`` and, to be registered as a family, ``family`` (a snake_case
    name such as ``tt_lstm``). The constructor splits keyword arguments between the cell
    (everything the cell's ``get_config`` has) and the RNN (``return_sequences``, ``stateful``,
    ...), so ``get_config()`` round-trips.
    """

    cell_class = QuantizedLSTMCell
    family = None
    rnn_keys = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "time_major")
    _dropped_keys = ("zero_output_for_mask",)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        tf.keras.utils.register_keras_serializable(package="models")(cls)
        if "family" in cls.__dict__:
            register_family(cls)

    @classmethod
    @abstractmethod
    def for_task(cls, n_features: int, units: int, n_modes: int = 4, rank=4, **kwargs):
        """A layer of this family for frames of ``n_features`` values and ``units`` hidden units:
        ``n_modes`` factors per dimension, every inner rank ``rank`` (``None``: full rank, so that
        ``from_dense`` is exact). ``kwargs`` go to the constructor (quantizers, ``stateful``, ...)."""

    def __init__(self, units, *args, **kwargs):
        rnn_kwargs = {k: kwargs.pop(k) for k in self.rnn_keys if k in kwargs}
        for key in self._dropped_keys:
            kwargs.pop(key, None)
        layer_kwargs = {k: kwargs.pop(k) for k in ("name", "dtype", "trainable") if k in kwargs}
        for key in ("batch_input_shape", "input_shape", "batch_size"):
            if key in kwargs:
                layer_kwargs[key] = kwargs.pop(key)
        try:
            cell = self.cell_class(units, *args, **kwargs)
        except activation_pwl.ApproximationError as error:
            name = layer_kwargs.get("name", self.family or type(self).__name__)
            raise activation_pwl.ApproximationError(f"layer '{name}': {error}") from None
        super().__init__(cell, **rnn_kwargs, **layer_kwargs)

    @property
    def units(self):
        return self.cell.units

    @classmethod
    def from_dense(cls, kernel, recurrent_kernel, bias, *args, **kwargs):
        """A built layer whose maps come from a dense LSTM's weights (see ``load_dense``).

        ``args``, ``kwargs``: the family's constructor arguments after ``units``. Returns
        ``(layer, relative_error)``.
        """
        layer = cls(np.shape(recurrent_kernel)[0], *args, **kwargs)
        return layer, layer.load_dense(kernel, recurrent_kernel, bias)

    def load_dense(self, kernel, recurrent_kernel, bias) -> float:
        """Build this layer and set its weights from a dense LSTM's: the input map is the
        family's decomposition of ``kernel`` (fused: of ``[kernel; recurrent_kernel]``, zero rows
        for padding), the recurrent map the cell's ``decompose_recurrent`` of ``recurrent_kernel``.

        kernel (n_in, 4H), recurrent_kernel (H, 4H), bias (4H,) as in Keras' ``LSTM``. Returns the
        larger relative Frobenius error of the two decompositions.
        """
        kernel = np.asarray(kernel, np.float64)
        recurrent_kernel = np.asarray(recurrent_kernel, np.float64)
        cell = self.cell
        cell.check_input_size(len(kernel))
        matrix = np.concatenate([kernel, recurrent_kernel]) if cell.fused_recurrent else kernel
        weights, error = cell.decompose(np.pad(matrix, [(0, cell.decomposition.n_in - len(matrix)), (0, 0)]))
        if not cell.fused_recurrent:
            recurrent_weights, recurrent_error = cell.decompose_recurrent(recurrent_kernel)
            weights, error = [*weights, *recurrent_weights], max(error, recurrent_error)
        self.build((None, None, len(kernel)))
        # by variable, not by Keras' list order (which puts the untrained index weights last)
        variables = [*cell.input_map_weights, *cell.recurrent_map_weights, cell.bias]
        for variable, value in zip(variables, [*weights, bias], strict=True):
            variable.assign(np.asarray(value).astype(variable.dtype.as_numpy_dtype))
        cell.check_index_weights(cell.stored_index_weights(), self.name)
        return error

    def get_config(self):
        config = super().get_config()
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        config.pop("cell")
        config.update(cell_config)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def build_from_config(self, config):
        # .keras files store the input shape as a list; Keras 2.15's RNN.build needs a TensorShape
        self.build(tf.TensorShape(config["input_shape"]))
