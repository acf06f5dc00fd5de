"""The gate and state block shared by every compressed LSTM family (Keras side).

A family cell subclasses ``QuantizedLSTMCell`` and supplies only its input-to-hidden map:
``build_input_map(input_dim)`` creates its weights and ``input_map(x)`` maps a float64
``(batch, n_in)`` frame on the input grid to ``(batch, 4H)`` on the accumulator grid. The
recurrent mat-vec, bias, activations and state update below are the same for all of them,
and ``hls_project.reference`` and ``hls_project/nnet_utils/nnet_lstm_cell.h`` implement
exactly this step.

One step, with ``q_X`` the rounding to quantizer ``X`` (half to even, then saturate; a quantizer
left at ``None`` means no rounding, i.e. float training)::

    x  = q_input(x_t)                                         (n_in,)
    zx = input_map(x)        family specific, ends on the accumulator grid   (4H,)
    z  = q_accumulator(zx + h_{t-1} @ q_recurrent(U) + q_bias(b))             (4H,) gates i,f,c,o
         (fused families: zx = input_map([x; h_{t-1}]) and no U)
    i, f, o = q_activation(recurrent_activation(z_i, z_f, z_o))
    g       = q_activation(activation(z_c))
    c_t = q_state(f * c_{t-1} + i * g)
    h_t = q_state(o * q_activation(activation(c_t)))

All arithmetic is float64, so every sum of fixed-point products is exact (up to 53 bits) and the
only rounding is the explicit ``q_*``: the hardware does the same with wide accumulators.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import tensorflow as tf

from models.quantization import fixed_type_of, get_quantizer, quantize_tf, serialize_quantizer

QUANTIZER_NAMES = (
    "kernel_quantizer",
    "recurrent_quantizer",
    "bias_quantizer",
    "state_quantizer",
    "input_quantizer",
    "accumulator_quantizer",
    "activation_quantizer",
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
    """Parameter and multiply-accumulate counts of one compressed LSTM layer (per frame)."""

    input_map_params: int
    recurrent_params: int
    bias_params: int
    input_map_macs: int
    recurrent_macs: int
    dense_input_map_params: int

    @classmethod
    def of(cls, shape, units: int, n_in: int | None = None, fused_recurrent: bool = False) -> LSTMCost:
        """Counts for a decomposed input map ``shape`` (``n_params``, ``macs``, ``n_in``).

        ``fused_recurrent``: the map takes ``[x; h]`` of ``n_in + units`` values, no dense ``U``.
        """
        recurrent = 0 if fused_recurrent else units * 4 * units
        dense_rows = (n_in + units) if fused_recurrent else shape.n_in
        return cls(shape.n_params, recurrent, 4 * units, shape.macs, recurrent, dense_rows * 4 * units)

    @property
    def params(self) -> int:
        return self.input_map_params + self.recurrent_params + self.bias_params

    @property
    def dense_params(self) -> int:
        return self.dense_input_map_params + self.recurrent_params + self.bias_params

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


class QuantizedLSTMCell(tf.keras.layers.Layer):
    """Base LSTM cell: quantized gates and state around a family-specific input map.

    Args:
        units: hidden size H.
        kernel_quantizer: rounds the input-map weights (e.g. TT cores).
        recurrent_quantizer, bias_quantizer: the dense recurrent kernel (H, 4H) and bias (4H,).
        state_quantizer: the states c and h (h is the layer output).
        input_quantizer: the input frame x_t.
        accumulator_quantizer: every intermediate of the input map and the gate pre-activations.
        activation_quantizer: the outputs of the sigmoid/tanh lookups.
        activation, recurrent_activation: 'tanh' or 'sigmoid'.
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        recurrent_initializer="orthogonal",
        unit_forget_bias=True,
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
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    # -- shared block -------------------------------------------------------------------------
    # FDHT-style families set this: the input map takes [x_t; h_{t-1}] and there is no U.
    fused_recurrent = False

    def build(self, input_shape):
        h = self.units
        self.build_input_map(int(input_shape[-1]) + (h if self.fused_recurrent else 0))
        if not self.fused_recurrent:
            self.recurrent_kernel = self.add_weight(
                shape=(h, 4 * h), name="recurrent_kernel", initializer=self.recurrent_initializer
            )

        def bias_initializer(shape, dtype=None):
            forget = tf.ones((h,)) if self.unit_forget_bias else tf.zeros((h,))
            return tf.cast(tf.concat([tf.zeros((h,)), forget, tf.zeros((2 * h,))], 0), dtype)

        self.bias = self.add_weight(shape=(4 * h,), name="bias", initializer=bias_initializer)
        self.built = True

    def quantize(self, x, name: str):
        """Round float64 ``x`` with quantizer ``name`` (identity when it is not set)."""
        ftype = self.fixed_types.get(name)
        return x if ftype is None else quantize_tf(x, ftype)

    def quantized_weight(self, weight, name: str):
        return self.quantize(tf.cast(weight, tf.float64), name)

    def call(self, inputs, states, training=None):
        h_prev = tf.cast(states[0], tf.float64)
        c_prev = tf.cast(states[1], tf.float64)
        x = self.quantize(tf.cast(inputs, tf.float64), "input_quantizer")
        if self.fused_recurrent:
            z = self.input_map(tf.concat([x, h_prev], axis=-1))
        else:
            z = self.input_map(x) + h_prev @ self.quantized_weight(self.recurrent_kernel, "recurrent_quantizer")
        z = self.quantize(z + self.quantized_weight(self.bias, "bias_quantizer"), "accumulator_quantizer")
        z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
        gate = ACTIVATIONS[self.recurrent_activation]
        act = ACTIVATIONS[self.activation]
        i, f, o = (self.quantize(gate(v), "activation_quantizer") for v in (z_i, z_f, z_o))
        g = self.quantize(act(z_c), "activation_quantizer")
        c = self.quantize(f * c_prev + i * g, "state_quantizer")
        h = self.quantize(o * self.quantize(act(c), "activation_quantizer"), "state_quantizer")
        h32, c32 = tf.cast(h, tf.float32), tf.cast(c, tf.float32)
        return h32, [h32, c32]

    def get_config(self):
        config = {
            "units": self.units,
            "activation": self.activation,
            "recurrent_activation": self.recurrent_activation,
            "recurrent_initializer": tf.keras.initializers.serialize(self.recurrent_initializer),
            "unit_forget_bias": self.unit_forget_bias,
        }
        config.update({k: serialize_quantizer(q) for k, q in self.quantizers.items()})
        return {**super().get_config(), **config}


class QuantizedRNN(tf.keras.layers.RNN):
    """Keras RNN wrapper over a family cell (like QKeras' QLSTM over QLSTMCell).

    Subclasses set ``cell_class``; the constructor splits keyword arguments between the cell
    (everything the cell's ``get_config`` has) and the RNN (``return_sequences``, ``stateful``,
    ...), so ``get_config()`` round-trips.
    """

    cell_class = QuantizedLSTMCell
    rnn_keys = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "time_major")
    _dropped_keys = ("zero_output_for_mask",)

    def __init__(self, units, **kwargs):
        rnn_kwargs = {k: kwargs.pop(k) for k in self.rnn_keys if k in kwargs}
        for key in self._dropped_keys:
            kwargs.pop(key, None)
        layer_kwargs = {k: kwargs.pop(k) for k in ("name", "dtype", "trainable") if k in kwargs}
        for key in ("batch_input_shape", "input_shape", "batch_size"):
            if key in kwargs:
                layer_kwargs[key] = kwargs.pop(key)
        cell = self.cell_class(units, **kwargs)
        super().__init__(cell, **rnn_kwargs, **layer_kwargs)

    @property
    def units(self):
        return self.cell.units

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
