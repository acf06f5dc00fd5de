"""Tensor-train (TT) matrices in NumPy: shapes, the contraction schedule, TT-SVD and counts.

A TT matrix ``W`` of shape ``(prod(input_modes), prod(output_modes))`` is a list of cores;
core ``k`` has shape ``(r[k], n[k], m[k], r[k+1])`` with ``r[0] = r[d] = 1`` and

    W[(i1..id), (j1..jd)] = G1[:, i1, j1, :] @ G2[:, i2, j2, :] @ ... @ Gd[:, id, jd, :]

(row-major multi-indices). ``y = x @ W`` is computed core by core, **last core first**; that
order is the one the Keras layer, the NumPy reference and the HLS kernel all use, because every
step rounds its result to the accumulator type (see ``models.tt_lstm``).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

from models.decomposition import MatrixDecomposition, ModeContraction, check_modes


@dataclass(frozen=True)
class TTShape(MatrixDecomposition):
    """Modes and ranks of a TT matrix; everything else is derived."""

    input_modes: tuple
    output_modes: tuple
    ranks: tuple

    @classmethod
    def create(cls, input_modes, output_modes, ranks):
        n, m = check_modes(input_modes, output_modes)
        if ranks is None:
            ranks = cls.full_ranks(n, m)
        if isinstance(ranks, int):
            ranks = [1] + [ranks] * (len(n) - 1) + [1]
        r = [int(v) for v in ranks]
        if len(r) != len(n) + 1:
            raise ValueError(f"'tt_ranks' {r} must have len(input_modes) + 1 = {len(n) + 1} entries")
        if any(v < 1 for v in r):
            raise ValueError(f"'tt_ranks' {r} must all be >= 1")
        if r[0] != 1 or r[-1] != 1:
            raise ValueError(f"'tt_ranks' {r} must start and end with 1")
        return cls(tuple(n), tuple(m), tuple(r))

    @staticmethod
    def full_ranks(input_modes, output_modes) -> list:
        """The ranks of the unfoldings: with them TT-SVD is exact for any matrix."""
        sizes = [n * m for n, m in zip(input_modes, output_modes, strict=True)]
        return [min(prod(sizes[:k]), prod(sizes[k:])) for k in range(len(sizes) + 1)]

    @property
    def n_cores(self) -> int:
        return len(self.input_modes)

    @property
    def n_factors(self) -> int:
        return self.n_cores

    @property
    def paths(self) -> int:
        return prod(self.ranks[1:-1])

    def core_shape(self, k: int) -> tuple:
        return (self.ranks[k], self.input_modes[k], self.output_modes[k], self.ranks[k + 1])

    @property
    def n_params(self) -> int:
        return sum(prod(self.core_shape(k)) for k in range(self.n_cores))

    def schedule(self) -> list:
        """The contraction steps, last core first; see ``ContractionStep``."""
        n, m, r = self.input_modes, self.output_modes, self.ranks
        steps = []
        for k in reversed(range(self.n_cores)):
            steps.append(
                ContractionStep(
                    core=k,
                    rows=prod(n[:k]),
                    n_in=n[k],
                    n_out=m[k],
                    n_right=prod(m[k + 1 :]),
                    rank_in=r[k + 1],
                    rank_out=r[k],
                )
            )
        return steps


@dataclass(frozen=True, kw_only=True)
class ContractionStep(ModeContraction):
    """Contract core ``core`` (shape ``(rank_out, n_in, n_out, rank_in)``) into the buffer, a
    ``ModeContraction`` with ``rows = n_left`` (x's modes before the core's) and ``trail = 1``.

    Input buffer:  ``(n_left * n_in, n_right, rank_in)``  -- x's remaining modes, outputs done, rank
    Output buffer: ``(n_left, n_out * n_right, rank_out)``
    ``out[l, j*n_right + p, a] = sum_{i, b} core[a, i, j, b] * in[l*n_in + i, p, b]``
    """

    core: int

    @property
    def n_left(self) -> int:
        return self.rows


def contract_step(step: ContractionStep, buffer: np.ndarray, core: np.ndarray) -> np.ndarray:
    """One schedule step on a batch. buffer: (batch, in_size) -> (batch, out_size), exact."""
    batch = buffer.shape[0]
    # t: (batch, n_left, n_in, n_right, rank_in)
    t = buffer.reshape(batch, step.n_left, step.n_in, step.n_right, step.rank_in)
    # core: (rank_out, n_in, n_out, rank_in); out: (batch, n_left, n_out, n_right, rank_out)
    out = np.einsum("blipc,aijc->bljpa", t, core)
    return out.reshape(batch, step.out_size)


def tt_to_dense(cores, shape: TTShape) -> np.ndarray:
    """The full matrix, (n_in, n_out), float64. For tests and TT-SVD error reports only."""
    # res: (n1..nk, m1..mk, r_k), starting from k = 0 with r_0 = 1
    res = np.ones((1, 1, 1))
    for k, core in enumerate(cores):
        r0, nk, mk, r1 = shape.core_shape(k)
        res = np.einsum("ija,abcd->ibjcd", res, np.asarray(core, np.float64))
        res = res.reshape(res.shape[0] * nk, res.shape[2] * mk, r1)
    return res[:, :, 0]


def tt_svd(matrix: np.ndarray, shape: TTShape):
    """TT-SVD of a dense (n_in, n_out) matrix into cores with at most ``shape.ranks``.

    Returns ``(cores, relative_error)``, the error ``||W - W_tt||_F / ||W||_F`` in float64.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (shape.n_in, shape.n_out):
        raise ValueError(f"dense matrix has shape {matrix.shape}, the TT shape needs {(shape.n_in, shape.n_out)}")
    d = shape.n_cores
    n, m = shape.input_modes, shape.output_modes
    # interleave modes: (n1, m1, n2, m2, ..., nd, md)
    t = matrix.reshape(*n, *m)
    t = t.transpose([i for k in range(d) for i in (k, d + k)])
    cores, rank = [], 1
    rest = t.reshape(1, -1)
    for k in range(d - 1):
        rest = rest.reshape(rank * n[k] * m[k], -1)
        u, s, vt = np.linalg.svd(rest, full_matrices=False)
        new_rank = min(shape.ranks[k + 1], len(s))
        cores.append(u[:, :new_rank].reshape(rank, n[k], m[k], new_rank))
        rest = s[:new_rank, None] * vt[:new_rank]
        rank = new_rank
    cores.append(rest.reshape(rank, n[-1], m[-1], 1))
    cores = [_pad_core(c, shape.core_shape(k)) for k, c in enumerate(cores)]
    error = np.linalg.norm(matrix - tt_to_dense(cores, shape)) / max(np.linalg.norm(matrix), 1e-300)
    return cores, float(error)


def _pad_core(core, target_shape):
    """Zero-pad a core whose rank came out smaller than asked (small matrices)."""
    out = np.zeros(target_shape)
    out[tuple(slice(0, s) for s in core.shape)] = core
    return out
