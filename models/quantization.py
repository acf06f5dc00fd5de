"""QKeras quantizers as fixed-point types, the seven types of an LSTM layer, and the rounding op.

Only ``quantized_bits`` with ``alpha`` ``None``/1 and deterministic rounding maps to a hardware
type; anything else is rejected with the name of the parameter that carries it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import tensorflow as tf
from qkeras import quantizers as qk_quantizers

from fixedpoint import FixedType, exact_sum_type, magnitude


@dataclass(frozen=True)
class LSTMTypes:
    """The fixed-point types of one quantized LSTM layer, one per quantizer ``<field>_quantizer``.

    ``kernel``, ``recurrent``, ``bias``, ``state`` are the four a QKeras ``QLSTM`` takes; ``input``
    (the frame), ``accumulator`` (every input-map intermediate and the gate pre-activations) and
    ``activation`` (sigmoid/tanh outputs) are the datapath's, derived by ``derive_datapath_types``
    when not given.
    """

    input: FixedType
    kernel: FixedType
    recurrent: FixedType
    bias: FixedType
    state: FixedType
    accumulator: FixedType
    activation: FixedType

    @classmethod
    def from_fixed_types(cls, fixed_types: dict, layer_name: str) -> LSTMTypes:
        """From ``{'<field>_quantizer': FixedType}``; a missing one is an error naming it."""
        missing = [name for name in QUANTIZER_NAMES if name not in fixed_types]
        if missing:
            raise ValueError(
                f"layer '{layer_name}': {', '.join(repr(m) for m in missing)} not set: the fixed-point flow "
                "needs quantized_bits quantizers there (at least kernel, recurrent, bias and state)"
            )
        return cls(**{f.name: fixed_types[f"{f.name}_quantizer"] for f in fields(cls)})


QUANTIZER_NAMES = tuple(f"{f.name}_quantizer" for f in fields(LSTMTypes))
QKERAS_QUANTIZER_NAMES = ("kernel_quantizer", "recurrent_quantizer", "bias_quantizer", "state_quantizer")


def derive_datapath_types(given: dict, units: int, fused_recurrent: bool) -> dict:
    """The rule for the three datapath types a QKeras user does not set, from the four they do.

    ``given``: ``{'<field>_quantizer': FixedType}`` with at least kernel, recurrent, bias and
    state. Returns ``{name: (FixedType, reason)}`` for each of input, accumulator and activation
    that is not in ``given`` (explicit quantizers win):

    * input = the state type (the frame rides the same grid as ``h``);
    * accumulator: the state's fractional bits, and integer bits for the exact sum
      ``|b| + units * |h| * |U|`` (``U`` the recurrent weights; the kernel's for fused families);
    * activation: the state's width, one integer bit (sigmoid/tanh lie in [-1, 1]).
    """
    if any(name not in given for name in QKERAS_QUANTIZER_NAMES):
        return {}
    state, bias = given["state_quantizer"], given["bias_quantizer"]
    weight = given["kernel_quantizer" if fused_recurrent else "recurrent_quantizer"]
    bound = magnitude(bias) + units * magnitude(state) * magnitude(weight)
    accumulator = exact_sum_type(bound, state.frac)
    rules = {
        "input_quantizer": (state, "the state type"),
        "accumulator_quantizer": (accumulator, f"state resolution, holds |b| + {units}*|h|*|U| = {bound:g}"),
        "activation_quantizer": (FixedType(state.width, 1), "state width, 1 integer bit"),
    }
    return {name: rule for name, rule in rules.items() if name not in given}


def get_quantizer(value):
    """A quantizer object from a QKeras object, a config dict, a string, or ``None``."""
    if value is None or callable(value) and not isinstance(value, (str, dict)):
        return value
    return qk_quantizers.get_quantizer(value)


def serialize_quantizer(quantizer):
    return None if quantizer is None else tf.keras.utils.serialize_keras_object(quantizer)


def fixed_type_of(quantizer, parameter: str) -> FixedType:
    """The ``FixedType`` that ``quantizer`` rounds to; ``parameter`` names it in errors."""
    if quantizer is None:
        raise ValueError(f"'{parameter}' is not set: the fixed-point flow needs a quantized_bits quantizer there")
    if not isinstance(quantizer, qk_quantizers.quantized_bits):
        raise ValueError(f"'{parameter}' is {quantizer}: only quantized_bits maps to a fixed-point type")
    if quantizer.alpha not in (None, 1, 1.0):
        raise ValueError(f"'{parameter}' has alpha={quantizer.alpha!r}; use alpha=1 (no scale)")
    if quantizer.use_stochastic_rounding:
        raise ValueError(f"'{parameter}' uses stochastic rounding, which hardware does not do")
    integer = int(quantizer.integer)
    bits = int(quantizer.bits)
    if bits - int(quantizer.keep_negative) < 1:
        raise ValueError(f"'{parameter}' has {bits} bit(s): too few for a fixed-point value")
    if quantizer.keep_negative:
        return FixedType(bits, integer + 1, signed=True, symmetric=bool(quantizer.symmetric))
    return FixedType(bits, integer, signed=False)


def quantize_tf(x, ftype: FixedType):
    """Round ``x`` to ``ftype`` in float64, with a straight-through gradient.

    Same rounding as ``FixedType.quantize`` and QKeras' ``quantized_bits``: half to even, then
    saturate. ``x`` float64 keeps sums of fixed-point products exact, so this matches hardware.
    """
    scale = tf.constant(2.0**ftype.frac, tf.float64)
    raw = tf.clip_by_value(tf.round(x * scale), float(ftype.min_raw), float(ftype.max_raw))
    return x + tf.stop_gradient(raw / scale - x)
