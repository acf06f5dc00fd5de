"""QKeras quantizers as fixed-point types, and the same rounding as a TensorFlow op.

Only ``quantized_bits`` with ``alpha`` ``None``/1 and deterministic rounding maps to a hardware
type; anything else is rejected with the name of the parameter that carries it.
"""

from __future__ import annotations

import tensorflow as tf
from qkeras import quantizers as qk_quantizers

from host.fixed_point import FixedType


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
