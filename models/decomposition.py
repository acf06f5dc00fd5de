"""What every decomposed weight matrix shares (TT, HT, ...): modes, sizes, initial scale, factoring.

A decomposition of an ``(n_in, n_out)`` matrix is a set of factors (cores) over input modes
``n_1..n_d`` and output modes ``m_1..m_d``; each entry of the matrix is a sum over ``paths``
products of ``n_factors`` core entries. ``models.tt.TTShape`` and ``models.ht.HTShape`` are the two
we have.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod


def positive_ints(values, parameter: str) -> list:
    """``values`` as a non-empty list of positive ints, else a ValueError naming ``parameter``."""
    values = [int(v) for v in values]
    if not values or any(v < 1 for v in values):
        raise ValueError(f"'{parameter}' must be a non-empty list of positive integers, got {values}")
    return values


def check_modes(input_modes, output_modes) -> tuple:
    """Validated ``(input_modes, output_modes)`` lists of the same length."""
    n = positive_ints(input_modes, "input_modes")
    m = positive_ints(output_modes, "output_modes")
    if len(n) != len(m):
        raise ValueError(f"'input_modes' {n} and 'output_modes' {m} must have the same number of modes")
    return n, m


@dataclass(frozen=True)
class ModeContraction:
    """One step of a decomposed mat-vec that contracts a mode as its input streams in:
    ``out[l, j, p, a, e] = sum_{i, b} in[l, i, p, b, e] * core[i, b, a, j]``, the input read as
    ``(rows, n_in, n_right, rank_in, trail)``, the output ``(rows, n_out, n_right, rank_out,
    trail)``, the core in read order ``(n_in, rank_in, rank_out, n_out)`` (``core_shape``).
    A row's sums (``out_row``) are all such a step keeps while the row streams in."""

    rows: int
    n_in: int
    n_right: int = 1
    rank_in: int = 1
    n_out: int = 1
    rank_out: int = 1
    trail: int = 1

    @property
    def in_row(self) -> int:
        return self.n_in * self.n_right * self.rank_in * self.trail

    @property
    def out_row(self) -> int:
        """Exact sums of one row: the output row."""
        return self.n_out * self.n_right * self.rank_out * self.trail

    @property
    def in_size(self) -> int:
        return self.rows * self.in_row

    @property
    def out_size(self) -> int:
        return self.rows * self.out_row

    @property
    def terms(self) -> int:
        """Products summed into one output."""
        return self.n_in * self.rank_in

    @property
    def macs(self) -> int:
        return self.out_size * self.terms

    @property
    def core_shape(self) -> tuple:
        return (self.n_in, self.rank_in, self.rank_out, self.n_out)

    @property
    def core_words(self) -> int:
        return prod(self.core_shape)


class MatrixDecomposition:
    """Mixin for a frozen dataclass with ``input_modes``, ``output_modes`` and ``ranks``.

    Subclasses supply ``n_factors`` (cores per entry product), ``paths`` (products summed per
    entry), ``n_params``, and ``schedule()``: the mat-vec's steps, each with ``macs``,
    ``in_size`` and ``out_size`` (words of the buffers it reads and writes).
    """

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one mat-vec, following the schedule."""
        return sum(step.macs for step in self.schedule())

    @property
    def peak_buffer(self) -> int:
        """Words of the largest buffer the schedule reads or writes (the frame included)."""
        return max(max(step.in_size, step.out_size) for step in self.schedule())

    @property
    def n_in(self) -> int:
        return prod(self.input_modes)

    @property
    def n_out(self) -> int:
        return prod(self.output_modes)

    def describe(self) -> str:
        return f"'input_modes' {list(self.input_modes)} multiply to {self.n_in}"

    def glorot_stddev(self) -> float:
        """Per-core normal std so the implied dense matrix has Glorot variance ``2 / (n_in + n_out)``."""
        target = 2.0 / (self.n_in + self.n_out)
        return float((target / self.paths) ** (1.0 / (2 * self.n_factors)))


def factor_modes(size: int, n_modes: int) -> list:
    """Split ``size`` into ``n_modes`` factors as equal as possible (largest first)."""
    modes = []
    for remaining in range(n_modes, 0, -1):
        target = round(size ** (1.0 / remaining))
        factor = next(f for f in sorted(range(1, size + 1), key=lambda f: (abs(f - target), -f)) if size % f == 0)
        modes.append(factor)
        size //= factor
    if size != 1:
        raise ValueError(f"cannot factor into {n_modes} modes")
    return sorted(modes, reverse=True)


def padded_modes(size: int, n_modes: int) -> list:
    """Modes for at least ``size`` values (zero-padded): the first size whose factors are near-equal."""
    for padded in range(size, 2 * size):
        modes = factor_modes(padded, n_modes)
        if max(modes) <= 2 * min(modes):
            return modes
    return factor_modes(size, n_modes)
