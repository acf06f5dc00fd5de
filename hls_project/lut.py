"""Lookup tables for sigmoid/tanh over a fixed-point input grid (the gate block's default; the
piecewise-linear alternative is ``models.activation_pwl``).

The table is *exact*: entry ``k`` is ``out.quantize(f(x))`` for the input grid point
``x = (lo_raw + k) * in.lsb``, and it spans just the inputs where the rounded output still
changes. Below ``lo_raw`` / above ``hi_raw`` the rounded output equals the end entry (``f`` is
monotone), so clamping the index is exact too and the kernel equals ``q_out(f(x))`` everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fixedpoint import FixedType

FUNCTIONS = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
}
MAX_TABLE_SIZE = 1 << 17


@dataclass(frozen=True)
class ActivationTable:
    """``values[k]`` (raw ``out`` integers) is f at raw input ``lo_raw + k``."""

    function: str
    lo_raw: int
    values: np.ndarray

    @property
    def size(self) -> int:
        return len(self.values)

    def lookup(self, raw) -> np.ndarray:
        """Raw inputs (any shape) -> raw outputs, clamping to the table."""
        index = np.clip(np.asarray(raw, np.int64) - self.lo_raw, 0, self.size - 1)
        return self.values[index]

    def evaluate_raw(self, raw) -> np.ndarray:
        """The gate block's interface to an activation (``models.activation_pwl.PWLActivation`` has it
        too): raw inputs -> raw outputs."""
        return self.lookup(raw)


def _output_raw(function, raw, in_type: FixedType, out_type: FixedType):
    return out_type.to_raw(FUNCTIONS[function](in_type.from_raw(raw)))


def _last_equal(function, lo, hi, target, in_type, out_type, from_low):
    """Binary search for the end of the run of ``target`` outputs starting at ``lo`` or ``hi``."""
    while lo < hi:
        mid = (lo + hi + 1) // 2 if from_low else (lo + hi) // 2
        same = _output_raw(function, mid, in_type, out_type) == target
        if from_low:
            lo, hi = (mid, hi) if same else (lo, mid - 1)
        else:
            lo, hi = (lo, mid) if same else (mid + 1, hi)
    return lo


def activation_table(function: str, in_type: FixedType, out_type: FixedType) -> ActivationTable:
    """The exact table of ``function`` from ``in_type`` to ``out_type`` (raise if too large)."""
    if function not in FUNCTIONS:
        raise ValueError(f"no lookup table for activation {function!r}; have {sorted(FUNCTIONS)}")
    first, last = in_type.min_raw, in_type.max_raw
    low_value = _output_raw(function, first, in_type, out_type)
    high_value = _output_raw(function, last, in_type, out_type)
    lo = _last_equal(function, first, last, low_value, in_type, out_type, from_low=True)
    hi = _last_equal(function, lo, last, high_value, in_type, out_type, from_low=False)
    size = hi - lo + 1
    if size > MAX_TABLE_SIZE:
        raise ValueError(
            f"the {function} table over {in_type.cpp()} needs {size} entries (> {MAX_TABLE_SIZE}): "
            "use fewer fractional bits in that quantizer"
        )
    raw = np.arange(lo, hi + 1, dtype=np.int64)
    return ActivationTable(function, int(lo), _output_raw(function, raw, in_type, out_type))
