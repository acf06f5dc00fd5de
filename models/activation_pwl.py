"""Piecewise-linear sigmoid and tanh (Wang et al., TVLSI 2017): the gate block's
``activation_approximation`` option, exact from Keras to HLS.

What a user gives (``activation_approximation=``, a dict; ``None`` keeps the exact tables):

* ``{"segments": n}``: ``n`` uniform segments, sigmoid on ``[-8, 8]`` and tanh on ``[-4, 4]``
  (``UNIFORM_RANGE``), through ``f`` at the inner breakpoints and the function's limits at the two
  ends (sigmoid 0 and 1, tanh -1 and 1);
* ``{"sigmoid": [[x0, y0], [x1, y1], ...], "tanh": [...]}``: explicit breakpoint tables (an
  explicit table wins over ``segments`` for its function). ``x`` strictly increasing, ``y``
  non-decreasing (both functions are).

Outside its first and last breakpoints a table is held at its end value. A table therefore
**covers** its input when, at each end, it either reaches the input type's end (first
``x <= min``, last ``x >= max`` of the quantizer the function reads: the accumulator for the
gates and the candidate, the state for ``tanh(c)``) or its end value is the function's limit
(``LIMITS``), where holding is what the function does anyway. Float layers (no quantizers) have
unbounded inputs, so there both ends must be at the limits.

How it stays exact (``PWLActivation.build``): for an input type with ``F_in`` fractional bits
and an activation type with ``F_out``,

* breakpoints are rounded to the input grid (they must stay distinct there);
* slopes are fixed point with ``F_s = F_out + SLOPE_GUARD_BITS`` fractional bits, chosen one
  segment after the other so that each segment ends where the next starts (the running value is
  fed back: ``s_k = round((y_k+1 - Y_k) / (x_k+1 - x_k))``, never negative);
* values ``Y_k`` are on the product grid ``F_p = F_s + F_in``: ``Y_k+1 = Y_k + s_k (x_k+1 - x_k)``
  exactly, so the function is continuous, monotone and equal to ``np.interp`` over its knots;
* the segments are restricted to the input type's range, constant segments added where the
  table is held, so the first starts at the type's minimum and the last ends at its maximum.

``y = Y_k + s_k * (z - x_k)`` is then an integer of at most 53 bits on the ``F_p`` grid (checked):
exact in float64 (Keras), in int64 (NumPy) and in ``ap_fixed`` (C++), followed by one rounding
to the activation type (half to even, saturate).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import isfinite

import numpy as np

from fixedpoint import FixedType, exact_sum_type, requantize_raw

FUNCTIONS = {"sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)), "tanh": np.tanh}
LIMITS = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
UNIFORM_RANGE = {"sigmoid": 8.0, "tanh": 4.0}  # {"segments": n} spans [-r, r]
SLOPE_GUARD_BITS = 8  # slope fractional bits beyond the activation type's
MAX_SEGMENTS = 256  # one comparison per segment in the kernel
EXACT_BITS = 53  # float64's significand: Keras computes the segments in float64
KEYS = ("segments", *FUNCTIONS)
# The three evaluations in one LSTM step: (which activation, the quantizer of its input).
USES = {
    "gate": ("recurrent_activation", "accumulator_quantizer"),  # i, f, o
    "candidate": ("activation", "accumulator_quantizer"),  # g
    "state": ("activation", "state_quantizer"),  # tanh(c)
}


class ApproximationError(ValueError):
    """A bad ``activation_approximation`` (the RNN layer adds its name)."""


def _fail(message: str):
    raise ApproximationError(f"'activation_approximation': {message}")


def normalize(value) -> dict | None:
    """The validated, JSON-ready form of ``activation_approximation`` (what ``get_config`` stores):
    ``None``, or a dict with ``segments`` (int) and/or ``sigmoid``/``tanh`` tables (lists of
    ``[x, y]`` floats)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        _fail(f"expected None or a dict with keys {list(KEYS)}, got {value!r}")
    unknown = sorted(str(key) for key in value if key not in KEYS)
    if unknown:
        _fail(f"unknown key(s) {unknown}; known: {list(KEYS)}")
    if not value:
        _fail("an empty dict: give 'segments' or a breakpoint table")
    out = {}
    if "segments" in value:
        segments = value["segments"]
        if isinstance(segments, bool) or not isinstance(segments, (int, np.integer)):
            _fail(f"'segments' must be an integer, got {segments!r}")
        if not 1 <= segments <= MAX_SEGMENTS:
            _fail(f"'segments' must be in 1..{MAX_SEGMENTS}, got {segments}")
        out["segments"] = int(segments)
    for function in FUNCTIONS:
        if function in value:
            out[function] = _check_table(function, value[function])
    return out


def _check_table(function: str, table) -> list:
    try:
        rows = [[float(x), float(y)] for x, y in table]
    except (TypeError, ValueError):
        _fail(f"the {function} table must be a list of [x, y] pairs of numbers, got {table!r}")
    if len(rows) < 2:
        _fail(f"the {function} table needs at least 2 breakpoints, got {len(rows)}")
    for k, (x, y) in enumerate(rows):
        if not (isfinite(x) and isfinite(y)):
            _fail(f"the {function} table has a non-finite breakpoint [{x}, {y}] at index {k}")
    for k in range(1, len(rows)):
        (x0, y0), (x1, y1) = rows[k - 1], rows[k]
        if x1 <= x0:
            _fail(f"the {function} breakpoints must be strictly increasing: x={x1:g} (index {k}) after x={x0:g}")
        if y1 < y0:
            _fail(
                f"the {function} values must be non-decreasing ({function} is): y={y1:g} at x={x1:g} "
                f"after y={y0:g} at x={x0:g}"
            )
    return rows


def table_of(approximation: dict, function: str) -> tuple:
    """``(xs, ys)`` float64 breakpoints of ``function``: the explicit table, else uniform segments."""
    if function in approximation:
        xs, ys = np.asarray(approximation[function], np.float64).T
        return xs, ys
    if "segments" not in approximation:
        _fail(f"no {function} table and no 'segments' (the layer uses {function})")
    bound = UNIFORM_RANGE[function]
    xs = np.linspace(-bound, bound, approximation["segments"] + 1)
    ys = FUNCTIONS[function](xs)
    ys[0], ys[-1] = LIMITS[function]
    return xs, ys


def check_cover(function: str, xs, ys, in_type: FixedType | None, quantizer: str) -> None:
    """The cover rule (module docstring): each end reaches the input type's end or the limit."""
    low, high = LIMITS[function]
    lo = -np.inf if in_type is None else in_type.min_value
    hi = np.inf if in_type is None else in_type.max_value
    where = f"no {quantizer}: the input is unbounded" if in_type is None else f"{quantizer} {in_type.cpp()}"
    if xs[0] > lo and ys[0] != low:
        _fail(
            f"the {function} table does not cover its input ({where}): it starts at x={xs[0]:g} with y={ys[0]:g}; "
            f"start it at x <= {lo:g} or give it {function}'s limit y={low:g} there (the table is held outside)"
        )
    if xs[-1] < hi and ys[-1] != high:
        _fail(
            f"the {function} table does not cover its input ({where}): it ends at x={xs[-1]:g} with y={ys[-1]:g}; "
            f"end it at x >= {hi:g} or give it {function}'s limit y={high:g} there (the table is held outside)"
        )


@dataclass(frozen=True)
class PWLActivation:
    """One piecewise-linear function: segment ``k`` covers ``[starts[k], starts[k+1])`` (the last
    ``[starts[-1], end]``), ``y = bases[k] + slopes[k] * (z - starts[k])``, ``z`` clamped to
    ``[starts[0], end]``.

    Quantized (``in_type`` and ``out_type`` set): ``starts``/``end`` raw on the input grid
    (``in_type.frac``), ``slopes`` raw with ``slope_frac``, ``bases`` raw with ``value_frac =
    slope_frac + in_type.frac``, and ``starts[0]``/``end`` are the input type's ends. Float (either
    type ``None``): the breakpoints, values and slopes as floats, unrounded.
    """

    function: str
    in_type: FixedType | None
    out_type: FixedType | None
    starts: np.ndarray
    end: float | int
    bases: np.ndarray
    slopes: np.ndarray
    slope_frac: int = 0

    @property
    def quantized(self) -> bool:
        return self.in_type is not None and self.out_type is not None

    @property
    def n_segments(self) -> int:
        return len(self.starts)

    @property
    def value_frac(self) -> int:
        return self.slope_frac + self.in_type.frac

    @classmethod
    def build(cls, function, xs, ys, in_type: FixedType | None, out_type: FixedType | None) -> PWLActivation:
        """The segments through breakpoints ``(xs, ys)`` (validated), on the grids of the module docstring."""
        xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
        if in_type is None or out_type is None:
            return cls(function, in_type, out_type, xs[:-1], float(xs[-1]), ys[:-1], np.diff(ys) / np.diff(xs))
        f_in, f_s = in_type.frac, out_type.frac + SLOPE_GUARD_BITS
        f_p = f_s + f_in
        knots = [round(x * 2.0**f_in) for x in xs]  # half to even, on the input grid (may lie outside it)
        for k in range(1, len(knots)):
            if knots[k] <= knots[k - 1]:
                _fail(
                    f"the {function} breakpoints x={xs[k - 1]:g} and x={xs[k]:g} fall on the same point of the "
                    f"{in_type.cpp()} grid (lsb {in_type.lsb:g}): use fewer segments or spread them"
                )
        values = [round(ys[0] * 2.0**f_p)]
        slopes = []
        for k in range(len(knots) - 1):
            width = knots[k + 1] - knots[k]
            slope = max(0, round((ys[k + 1] * 2.0**f_p - values[k]) / width))
            slopes.append(slope)
            values.append(values[k] + slope * width)

        def segment(z: int):  # the knot segment holding z, None where the table is held
            inside = knots[0] <= z < knots[-1]
            return max(j for j in range(len(slopes)) if knots[j] <= z) if inside else None

        def value_at(z: int) -> int:  # the exact function
            z = min(max(z, knots[0]), knots[-1])
            k = segment(z)
            return values[-1] if k is None else values[k] + slopes[k] * (z - knots[k])

        lo, hi = in_type.min_raw, in_type.max_raw
        starts = [lo] + [x for x in knots if lo < x < hi]
        seg_slopes = [0 if segment(s) is None else slopes[segment(s)] for s in starts]
        bases = [value_at(s) for s in starts]
        largest = max(abs(value_at(lo)), abs(value_at(hi)), *(abs(b) for b in bases))
        if 2 * largest >= 2**EXACT_BITS:  # every value, and every product (a difference of two)
            _fail(
                f"the {function} segments over {in_type.cpp()} need more than {EXACT_BITS} bits to stay exact "
                f"(values on a grid of 2^-{f_p}): use fewer fractional bits in the input or activation quantizer"
            )
        return cls(
            function,
            in_type,
            out_type,
            np.array(starts, np.int64),
            int(hi),
            np.array(bases, np.int64),
            np.array(seg_slopes, np.int64),
            f_s,
        )

    # -- the three evaluations -----------------------------------------------------------------
    def evaluate_raw(self, raw) -> np.ndarray:
        """Raw inputs (any shape, int64 on the input grid) -> raw ``out_type`` values (NumPy reference)."""
        z = np.clip(np.asarray(raw, np.int64), self.starts[0], self.end)
        k = np.searchsorted(self.starts, z, side="right") - 1
        exact = self.bases[k] + self.slopes[k] * (z - self.starts[k])
        return requantize_raw(exact, self.value_frac, self.out_type)

    def float_segments(self) -> tuple:
        """``(starts, end, bases, slopes)`` as float64 values (exact: dyadic, at most 53 bits)."""
        if not self.quantized:
            return self.starts, self.end, self.bases, self.slopes
        f_in = self.in_type.frac
        return (
            self.starts * 2.0**-f_in,
            self.end * 2.0**-f_in,
            self.bases * 2.0**-self.value_frac,
            self.slopes * 2.0**-self.slope_frac,
        )

    def knots(self) -> tuple:
        """``(x, y)`` float64 of every segment end: the function is ``np.interp`` over them."""
        starts, end, bases, slopes = self.float_segments()
        last = bases[-1] + slopes[-1] * (end - starts[-1])
        return np.append(starts, end), np.append(bases, last)

    def evaluate_tf(self, z):
        """The function in TensorFlow (float64 ``z``, unrounded output, differentiable: slope
        inside, 0 where held). Exact on the input grid."""
        import tensorflow as tf

        starts, end, bases, slopes = (tf.constant(v, tf.float64) for v in self.float_segments())
        z = tf.clip_by_value(z, starts[0], end)
        k = tf.reduce_sum(tf.cast(z[..., None] >= starts[1:], tf.int32), axis=-1)
        return tf.gather(bases, k) + tf.gather(slopes, k) * (z - tf.gather(starts, k))

    # -- HLS types -------------------------------------------------------------------------------
    def slope_type(self) -> FixedType:
        return exact_sum_type(float(np.max(np.abs(self.slopes))) * 2.0**-self.slope_frac, self.slope_frac)

    def value_type(self) -> FixedType:
        return exact_sum_type(float(np.max(np.abs(self.bases))) * 2.0**-self.value_frac, self.value_frac)


def gate_block_activations(
    approximation: dict | None, activation: str, recurrent_activation: str, fixed_types: dict
) -> dict | None:
    """``{'gate', 'candidate', 'state'}`` -> ``PWLActivation`` (``USES``), validated (cover rule,
    grids), or ``None`` for the exact tables. ``fixed_types``: ``{'<name>_quantizer': FixedType}``
    (missing ones give float segments)."""
    if approximation is None:
        return None
    names = {"activation": activation, "recurrent_activation": recurrent_activation}
    out_type = fixed_types.get("activation_quantizer")
    result = {}
    for use, (which, quantizer) in USES.items():
        function = names[which]
        xs, ys = table_of(approximation, function)
        in_type = fixed_types.get(quantizer)
        check_cover(function, xs, ys, in_type, quantizer)
        result[use] = PWLActivation.build(function, xs, ys, in_type, out_type)
    return result
