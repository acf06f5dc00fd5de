"""The rounding rules under the whole flow: fixed-point types in NumPy only (they run on the board too).

A ``FixedType`` is one ``ap_fixed<W, I, AP_RND_CONV, AP_SAT>`` (or ``ap_ufixed``, or
``AP_SAT_SYM``): ``width`` bits in all, ``integer`` of them above the binary point (the sign bit
included for signed types, as in Vivado HLS). Values are handled either as floats on the type's
grid or as *raw* integers (the value times ``2**frac``, an ``int64``).

Rounding is round-half-to-even (``AP_RND_CONV``, the same as QKeras' ``quantized_bits``, which
uses ``tf.round``) and overflow saturates (``AP_SAT``; ``AP_SAT_SYM`` for symmetric quantizers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from math import floor, log2

import numpy as np


@dataclass(frozen=True)
class FixedType:
    """One signed or unsigned fixed-point type with convergent rounding and saturation."""

    width: int
    integer: int
    signed: bool = True
    symmetric: bool = False

    def __post_init__(self):
        if self.width < 1 or self.width > 64:
            raise ValueError(f"fixed-point width must be in 1..64, got {self.width}")
        if self.signed and self.width < 2:
            raise ValueError("a signed fixed-point type needs at least 2 bits")

    @property
    def frac(self) -> int:
        """Bits below the binary point (may be negative)."""
        return self.width - self.integer

    @property
    def lsb(self) -> float:
        return 2.0**-self.frac

    @property
    def min_raw(self) -> int:
        if not self.signed:
            return 0
        low = -(2 ** (self.width - 1))
        return low + 1 if self.symmetric else low

    @property
    def max_raw(self) -> int:
        return 2 ** (self.width - 1) - 1 if self.signed else 2**self.width - 1

    @property
    def min_value(self) -> float:
        return self.min_raw * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_raw * self.lsb

    def cpp(self) -> str:
        """The HLS type, e.g. ``ap_fixed<16,6,AP_RND_CONV,AP_SAT>``."""
        base = "ap_fixed" if self.signed else "ap_ufixed"
        sat = "AP_SAT_SYM" if self.symmetric else "AP_SAT"
        return f"{base}<{self.width},{self.integer},AP_RND_CONV,{sat}>"

    def to_raw(self, x) -> np.ndarray:
        """Floats -> raw int64: round half to even at the LSB, then saturate."""
        scaled = np.asarray(x, dtype=np.float64) * 2.0**self.frac
        return np.clip(np.rint(scaled), self.min_raw, self.max_raw).astype(np.int64)

    def from_raw(self, raw) -> np.ndarray:
        """Raw integers -> float64 values (exact for widths up to 53 bits)."""
        return np.asarray(raw, dtype=np.float64) * self.lsb

    def quantize(self, x) -> np.ndarray:
        """Floats -> the nearest floats on this type's grid (float64)."""
        return self.from_raw(self.to_raw(x))

    def saturate_raw(self, raw) -> np.ndarray:
        return np.clip(np.asarray(raw, dtype=np.int64), self.min_raw, self.max_raw)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FixedType:
        return cls(**d)


def round_shift(raw, shift: int) -> np.ndarray:
    """Divide raw int64 values by ``2**shift`` with round-half-to-even (``shift <= 0`` is exact).

    This is what assigning an exact wide ``ap_fixed`` to a narrower ``AP_RND_CONV`` type does to
    the raw value before saturation.
    """
    raw = np.asarray(raw, dtype=np.int64)
    if shift <= 0:
        return raw << -shift
    quotient = raw >> shift  # floor division
    remainder = raw - (quotient << shift)
    half = np.int64(1) << (shift - 1)
    round_up = (remainder > half) | ((remainder == half) & (quotient & 1 == 1))
    return quotient + round_up.astype(np.int64)


def requantize_raw(raw, frac_in: int, out: FixedType) -> np.ndarray:
    """Exact raw values with ``frac_in`` fractional bits -> raw values of ``out`` (round, saturate)."""
    return out.saturate_raw(round_shift(raw, frac_in - out.frac))


def exact_sum_type(bound: float, frac: int) -> FixedType:
    """The narrowest signed type that holds every sum up to ``|bound|`` with ``frac`` fractional
    bits, without rounding or overflow (what an exact accumulator needs)."""
    integer = (floor(log2(bound)) + 2) if bound >= 1 else 1
    return FixedType(max(integer + frac, 2), integer)


def magnitude(ftype: FixedType) -> float:
    """The largest absolute value of ``ftype``."""
    return max(abs(ftype.min_value), abs(ftype.max_value))
