"""Row-balanced sparse matrices in NumPy (BRDS): shapes, magnitude pruning, the sparse mat-vec.

A row-balanced sparse map of an ``(n_in, n_out)`` matrix ``W`` (Keras layout, ``y = x @ W``) keeps
the same number ``nnz`` of non-zeros in every row of ``W^T`` (every output: a gate unit), so
processing elements that each own a group of rows all take ``nnz`` cycles per row and none waits
for another. Row ``o`` is stored as ``nnz`` values and their column indices, ascending::

    y[o] = sum_j values[o, j] * x[indices[o, j]]

``nnz = n_in - floor(sparsity * n_in)`` for a sparsity ratio in ``[0, 1)`` (at least one value per
row; ratio 0 is the dense matrix). The input and the recurrent matrix of an LSTM each have their
own ratio (dual-ratio).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, floor, log2

import numpy as np


def check_sparsity(ratio, parameter: str) -> float:
    """``ratio`` as a float in ``[0, 1)``, else a ValueError naming ``parameter`` and the value."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.floating, np.integer)) or not 0 <= ratio < 1:
        raise ValueError(f"'{parameter}' must be a sparsity ratio in [0, 1), got {ratio!r}")
    return float(ratio)


@dataclass(frozen=True)
class RBShape:
    """A row-balanced ``(n_in, n_out)`` matrix with ``nnz`` non-zeros per output row."""

    n_in: int
    n_out: int
    nnz: int

    @classmethod
    def create(cls, n_in: int, n_out: int, sparsity, parameter: str = "input_sparsity") -> RBShape:
        n_in, n_out = int(n_in), int(n_out)
        ratio = check_sparsity(sparsity, parameter)
        if n_in < 1 or n_out < 1:
            raise ValueError(f"a {n_in} x {n_out} matrix has no rows to prune")
        return cls(n_in, n_out, n_in - floor(ratio * n_in))

    @property
    def sparsity(self) -> float:
        return 1 - self.nnz / self.n_in

    @property
    def stored_shape(self) -> tuple:
        """``(n_out, nnz)``: the values and the indices."""
        return (self.n_out, self.nnz)

    @property
    def n_params(self) -> int:
        return self.n_out * self.nnz

    @property
    def macs(self) -> int:
        return self.n_params

    @property
    def peak_buffer(self) -> int:
        """Words of the largest buffer: the input, held whole (rows read it out of order)."""
        return self.n_in

    def describe(self) -> str:
        return f"the sparse map was made for {self.n_in} inputs"

    def spread_indices(self) -> np.ndarray:
        """Initial indices: ``nnz`` evenly spaced columns per row, shifted by the row (all distinct, ascending)."""
        columns = (np.arange(self.nnz) * self.n_in) // self.nnz
        return np.sort((columns[None, :] + np.arange(self.n_out)[:, None]) % self.n_in, axis=1)

    @property
    def index_bits(self) -> int:
        """Bits of one column index (unsigned)."""
        return max(1, ceil(log2(self.n_in)))

    def memory_bits(self, value_bits: int) -> int:
        """Bits of the stored matrix: values at ``value_bits`` plus indices at ``index_bits``."""
        return self.n_params * (value_bits + self.index_bits)

    def check_indices(self, indices, what: str) -> None:
        """A ValueError naming ``what``, the row and the value for indices a kernel cannot take:
        a shape other than ``(n_out, nnz)`` (rows of different nnz), a column out of range, a
        column repeated in a row."""
        indices = np.asarray(indices)
        if indices.shape != self.stored_shape:
            raise ValueError(
                f"{what}: indices of shape {indices.shape}, but every one of the {self.n_out} rows must have "
                f"exactly nnz = {self.nnz} (sparsity {self.sparsity:.4g} of {self.n_in} columns)"
            )
        bad = np.argwhere((indices < 0) | (indices >= self.n_in) | (indices != np.round(indices)))
        if len(bad):
            row, slot = bad[0]
            raise ValueError(f"{what}: row {row} has column index {indices[row, slot]!r}, outside 0..{self.n_in - 1}")
        ordered = np.sort(indices, axis=1)
        repeated = np.argwhere(ordered[:, 1:] == ordered[:, :-1])
        if len(repeated):
            row, slot = repeated[0]
            raise ValueError(f"{what}: row {row} repeats column index {int(ordered[row, slot])}")


def rb_prune(matrix, shape: RBShape) -> tuple:
    """Keep the ``nnz`` largest magnitudes of each output row of a dense ``(n_in, n_out)`` matrix.

    Returns ``(values (n_out, nnz), indices (n_out, nnz) ascending, relative Frobenius error)``;
    ties go to the lower column.
    """
    matrix = np.asarray(matrix, np.float64)
    if matrix.shape != (shape.n_in, shape.n_out):
        raise ValueError(f"expected a {shape.n_in} x {shape.n_out} matrix, got {matrix.shape}")
    rows = matrix.T  # (n_out, n_in)
    order = np.argsort(-np.abs(rows), axis=1, kind="stable")[:, : shape.nnz]
    indices = np.sort(order, axis=1)
    values = np.take_along_axis(rows, indices, axis=1)
    norm = np.linalg.norm(matrix)
    error = np.linalg.norm(matrix - rb_to_dense(values, indices, shape)) / norm if norm else 0.0
    return values, indices, float(error)


def rb_to_dense(values, indices, shape: RBShape) -> np.ndarray:
    """The ``(n_in, n_out)`` matrix of the stored rows (for tests and the pruning error)."""
    dense = np.zeros((shape.n_out, shape.n_in), dtype=np.asarray(values).dtype)
    np.put_along_axis(dense, np.asarray(indices, np.int64), values, axis=1)
    return dense.T


def rb_matvec(x, values, indices) -> np.ndarray:
    """``x @ W`` from the stored rows, exact on integer arrays: x (batch, n_in) -> (batch, n_out)."""
    gathered = np.asarray(x)[:, np.asarray(indices, np.int64)]  # (batch, n_out, nnz)
    return np.einsum("bon,on->bo", gathered, np.asarray(values))
