"""Block-circulant matrices in NumPy: shapes, the mat-vec from the defining vectors, the projection.

A block-circulant map of an ``(n_in, gates * units)`` matrix ``W`` (Keras layout, ``y = x @ W``)
cuts each gate's ``(n_in, units)`` part into ``k x k`` blocks after zero-padding both sides to
multiples of ``k``: ``p = ceil(n_in / k)`` input blocks and ``q = ceil(units / k)`` output blocks
per gate. Block ``(g, i)`` (output block ``g = gate * q + j``, input block ``i``) is circulant and
stored as its defining vector ``c[g, i, :]`` (``k`` values)::

    W_pad[i * k + s, g * k + r] = c[g, i, (r - s) mod k]        (C-LSTM / E-RNN convention)

so ``y[g * k + r] = sum_i sum_s c[g, i, (r - s) mod k] * x[i * k + s]``: every product of the
padded matrix is done (``macs = gates * q * p * k * k``), none is stored twice. Padded inputs are
zero and padded outputs are dropped, so the padding changes nothing the layer computes.

``bc_matvec`` is the mat-vec by index rotation of the input (``x[(r - d) mod k]`` against
``c[d]``), exact on integers; ``bc_project`` is the Euclidean projection of a dense matrix onto
this set (the mean of each block's circulant diagonal over its real entries).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, sqrt

import numpy as np

GATES = 4


def check_block_size(block_size, parameter: str = "block_size") -> int:
    """``block_size`` as an int >= 1, else a ValueError naming ``parameter`` and the value."""
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"'{parameter}' must be an integer >= 1, got {block_size!r}")
    return int(block_size)


@dataclass(frozen=True)
class BCShape:
    """The block structure of one ``(n_in, gates * units)`` weight matrix."""

    n_in: int
    units: int
    block_size: int
    gates: int = GATES

    @classmethod
    def create(cls, n_in, units, block_size, parameter: str = "block_size", gates: int = GATES) -> BCShape:
        """A validated shape; ``parameter`` names the block size in errors."""
        n_in, units, k = int(n_in), int(units), check_block_size(block_size, parameter)
        if n_in < 1 or units < 1:
            raise ValueError(f"a {n_in} x {units} matrix has no blocks: 'input_dim' and 'units' must be >= 1")
        if k > max(n_in, units):
            raise ValueError(
                f"'{parameter}'={k} is larger than the {n_in} x {units} matrix it divides (at most {max(n_in, units)})"
            )
        return cls(n_in, units, k, gates)

    @property
    def p(self) -> int:
        """Input blocks."""
        return ceil(self.n_in / self.block_size)

    @property
    def q(self) -> int:
        """Output blocks per gate."""
        return ceil(self.units / self.block_size)

    @property
    def padded_in(self) -> int:
        return self.p * self.block_size

    @property
    def n_out(self) -> int:
        return self.gates * self.units

    @property
    def vector_shape(self) -> tuple:
        """``(gates * q, p, k)``: output block, input block, defining vector."""
        return (self.gates * self.q, self.p, self.block_size)

    @property
    def n_params(self) -> int:
        return int(np.prod(self.vector_shape))

    @property
    def macs(self) -> int:
        """Products of one mat-vec: ``k`` per stored value (the padded blocks included)."""
        return self.n_params * self.block_size

    @property
    def peak_buffer(self) -> int:
        """Words of the largest buffer: the ``gates * q * k`` accumulators (the input is one block at a time)."""
        return self.gates * self.q * self.block_size

    def describe(self) -> str:
        return f"the block-circulant map was made for {self.n_in} inputs"

    def glorot_stddev(self) -> float:
        """Each matrix entry is one stored value: the dense Glorot normal std."""
        return sqrt(2.0 / (self.n_in + self.n_out))

    def check_vectors(self, vectors, what: str) -> None:
        """A ValueError naming ``what`` when stored vectors do not have this shape."""
        if tuple(np.shape(vectors)) != self.vector_shape:
            raise ValueError(
                f"{what}: stored vectors have shape {tuple(np.shape(vectors))}, but block size "
                f"{self.block_size} on a {self.n_in} x {self.gates} * {self.units} matrix needs {self.vector_shape}"
            )


def rotation_index(k: int) -> np.ndarray:
    """``(k, k)`` indices ``[d, r] -> (r - d) mod k``: the input position each ``c[d]`` meets at output ``r``."""
    return (np.arange(k)[None, :] - np.arange(k)[:, None]) % k


def output_columns(shape: BCShape) -> np.ndarray:
    """Positions of the real outputs in the padded ``(gates * q * k)`` output, gate by gate."""
    padded_gate = shape.q * shape.block_size
    return (np.arange(shape.gates)[:, None] * padded_gate + np.arange(shape.units)[None, :]).reshape(-1)


def bc_matvec(x, vectors, shape: BCShape):
    """``x @ W`` from the defining vectors, never densified: exact on integer (or object) arrays.

    x: (batch, n_in); vectors: ``shape.vector_shape``. Returns (batch, gates * units).
    """
    k = shape.block_size
    x = np.asarray(x)
    padded = np.zeros((len(x), shape.padded_in), dtype=x.dtype)
    padded[:, : shape.n_in] = x
    blocks = padded.reshape(len(x), shape.p, k)  # (batch, p, k): input block i, position s
    rotated = blocks[:, :, rotation_index(k)]  # (batch, p, k, k): [b, i, d, r] = x[i, (r - d) mod k]
    out = np.einsum("bidr,gid->bgr", rotated, np.asarray(vectors))  # (batch, gates * q, k)
    return out.reshape(len(x), -1)[:, output_columns(shape)]  # (batch, gates * units)


def bc_to_dense(vectors, shape: BCShape) -> np.ndarray:
    """The ``(n_in, gates * units)`` matrix the vectors define (for tests and the projection's error)."""
    k = shape.block_size
    vectors = np.asarray(vectors)
    # blocks[g, i, s, r] = c[g, i, (r - s) mod k]
    blocks = vectors[:, :, rotation_index(k)]
    padded = blocks.transpose(1, 2, 0, 3).reshape(shape.padded_in, -1)  # (p * k, gates * q * k)
    return padded[: shape.n_in][:, output_columns(shape)]


def bc_project(matrix, shape: BCShape) -> tuple:
    """Euclidean projection of a dense ``(n_in, gates * units)`` matrix onto block-circulant ones.

    Each stored value is the mean of the real (unpadded) entries on its block's circulant
    diagonal; a diagonal with none gets 0. Returns ``(vectors, relative Frobenius error)``.
    """
    matrix = np.asarray(matrix, np.float64)
    if matrix.shape != (shape.n_in, shape.n_out):
        raise ValueError(f"expected a {shape.n_in} x {shape.n_out} matrix, got {matrix.shape}")
    k = shape.block_size
    padded = np.zeros((shape.padded_in, shape.gates * shape.q * k))
    real = np.zeros_like(padded)
    columns = output_columns(shape)
    padded[: shape.n_in, columns] = matrix
    real[: shape.n_in, columns] = 1.0
    # (p, k_s, gates * q, k_r) -> entries [i, s, g, (s + d) mod k] summed over s: diagonal d
    s_index = np.arange(k)[:, None]
    r_index = (s_index + np.arange(k)[None, :]) % k  # [s, d]

    def diagonal_sums(values):
        blocks = values.reshape(shape.p, k, -1, k).transpose(2, 0, 1, 3)  # (g, i, s, r)
        return blocks[:, :, s_index, r_index].sum(axis=2)  # (g, i, d)

    counts = diagonal_sums(real)
    vectors = diagonal_sums(padded) / np.maximum(counts, 1.0)
    norm = np.linalg.norm(matrix)
    error = np.linalg.norm(matrix - bc_to_dense(vectors, shape)) / norm if norm else 0.0
    return vectors, float(error)
