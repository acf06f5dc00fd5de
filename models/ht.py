"""Hierarchical-Tucker (HT) matrices in NumPy: the dimension tree, schedule, HT-SVD and counts.

A matrix ``W`` of shape ``(prod(input_modes), prod(output_modes))`` is stored over a balanced
binary tree of its ``d`` leaf modes ``(n_k, m_k)``:

* leaf ``k``: a frame ``U_k`` of shape ``(n_k, m_k, r_k)``;
* internal node ``t`` with children ``l, r``: a transfer tensor ``B_t`` of shape
  ``(r_l, r_r, r_t)``; the root has ``r_t = 1``.

Nodes are numbered in post-order (left subtree, right subtree, node), the root last, and
``ranks`` lists one rank per node in that order. ``y = x @ W`` is computed core by core as the
input streams in (``HTShape.stream_order``): each core is contracted into the buffer where it
shares one or two axes with it (``StreamStep``, a ``ModeContraction``), so a transfer tensor may
come before its children and the buffer is never stored whole, only each step's sums of a row.
The order is the cheapest one with at most ``LIVE_WORDS`` such sums, found by a search over the
cores contracted and the buffer's layout. The Keras layer, the NumPy reference and the HLS
kernel all run ``HTShape.schedule()``, so they follow it together.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from math import prod

import numpy as np

from models.decomposition import MatrixDecomposition, ModeContraction, check_modes

LIVE_WORDS = 4096  # a streaming step's sums per row: the most a stream order may keep (StreamStep.out_row)


@dataclass(frozen=True)
class HTNode:
    index: int  # post-order position
    lo: int  # first leaf (mode) of the subtree
    hi: int  # one past the last leaf
    children: tuple  # (left, right) node indices, () for a leaf

    @property
    def is_leaf(self) -> bool:
        return not self.children


def balanced_tree(d: int) -> list:
    """The nodes of a balanced binary tree over ``d`` leaves, in post-order."""
    nodes = []

    def build(lo, hi):
        if hi - lo == 1:
            nodes.append(HTNode(len(nodes), lo, hi, ()))
            return nodes[-1].index
        mid = (lo + hi + 1) // 2
        left, right = build(lo, mid), build(mid, hi)
        nodes.append(HTNode(len(nodes), lo, hi, (left, right)))
        return nodes[-1].index

    build(0, d)
    return nodes


@dataclass(frozen=True, kw_only=True)
class StreamStep(ModeContraction):
    """One core contracted into the buffer as the buffer streams in, a ``ModeContraction``: the
    core's axes taken in the order ``axes`` (the one or two it shares with the buffer, then the
    ranks it adds, then the output modes it adds) and reshaped to ``core_shape``; the output modes
    take the first shared axis's place, the ranks the second's."""

    node: int
    axes: tuple  # the core's axes in read order


@dataclass(frozen=True)
class HTShape(MatrixDecomposition):
    """Modes, tree and ranks of an HT matrix; everything else is derived."""

    input_modes: tuple
    output_modes: tuple
    ranks: tuple

    @classmethod
    def create(cls, input_modes, output_modes, ranks):
        n, m = check_modes(input_modes, output_modes)
        nodes = balanced_tree(len(n))
        if ranks is None:
            ranks = cls.full_ranks(n, m)
        if isinstance(ranks, int):
            ranks = [ranks] * (len(nodes) - 1) + [1]
        r = [int(v) for v in ranks]
        if len(r) != len(nodes):
            raise ValueError(
                f"'ht_ranks' {r} must have one rank per tree node, {len(nodes)} for {len(n)} modes "
                "(post-order: left subtree, right subtree, node; the root last)"
            )
        if any(v < 1 for v in r):
            raise ValueError(f"'ht_ranks' {r} must all be >= 1")
        if r[-1] != 1:
            raise ValueError(f"'ht_ranks' {r}: the root rank (last) must be 1")
        shape = cls(tuple(n), tuple(m), tuple(r))
        shape.check_ranks()
        return shape

    @cached_property
    def nodes(self) -> list:
        return balanced_tree(len(self.input_modes))

    @cached_property
    def parents(self) -> dict:
        """node index -> its parent's index (the root has none)."""
        return {child: node.index for node in self.nodes for child in node.children}

    @cached_property
    def leaves(self) -> list:
        """The leaf node of each mode position."""
        return sorted((node for node in self.nodes if node.is_leaf), key=lambda node: node.lo)

    @property
    def n_factors(self) -> int:
        return len(self.nodes)

    @property
    def paths(self) -> int:
        return prod(self.ranks[:-1])

    @staticmethod
    def rank_limit(node: HTNode, input_modes, output_modes, ranks) -> int:
        """The largest useful rank of ``node``: its matricization's, and its children's product."""
        sizes = [n * m for n, m in zip(input_modes, output_modes, strict=True)]
        inside = prod(sizes[node.lo : node.hi])
        limit = min(inside, prod(sizes) // inside)
        return limit if node.is_leaf else min(limit, ranks[node.children[0]] * ranks[node.children[1]])

    @classmethod
    def full_ranks(cls, input_modes, output_modes) -> list:
        """Every rank at its limit: with them HT-SVD is exact for any matrix."""
        ranks = []
        for node in balanced_tree(len(input_modes))[:-1]:
            ranks.append(cls.rank_limit(node, input_modes, output_modes, ranks))
        return [*ranks, 1]

    def check_ranks(self) -> None:
        """A rank may not exceed what its matricization or its children allow."""
        for node in self.nodes[:-1]:
            limit = self.rank_limit(node, self.input_modes, self.output_modes, self.ranks)
            if self.ranks[node.index] > limit:
                raise ValueError(
                    f"'ht_ranks'[{node.index}] = {self.ranks[node.index]} exceeds what tree node "
                    f"{node.index} (modes {node.lo}..{node.hi - 1}) allows: {limit}"
                )

    def core_shape(self, index: int) -> tuple:
        node = self.nodes[index]
        if node.is_leaf:
            return (self.input_modes[node.lo], self.output_modes[node.lo], self.ranks[index])
        left, right = node.children
        return (self.ranks[left], self.ranks[right], self.ranks[index])

    @property
    def n_params(self) -> int:
        return sum(prod(self.core_shape(node.index)) for node in self.nodes)

    def core_axes(self, index: int) -> tuple:
        """The axes of core ``index`` as stored, ``((label, size), ...)``: a leaf's
        ``(in k, out k, rank)``, a transfer tensor's ``(rank left, rank right, rank)``."""
        node = self.nodes[index]
        if node.is_leaf:
            k = node.lo
            return (
                (("in", k), self.input_modes[k]),
                (("out", k), self.output_modes[k]),
                (("rank", index), self.ranks[index]),
            )
        left, right = node.children
        return (
            (("rank", left), self.ranks[left]),
            (("rank", right), self.ranks[right]),
            (("rank", index), self.ranks[index]),
        )

    def stream_step(self, index: int, layout: tuple) -> tuple:
        """``(StreamStep, layout after it)`` of core ``index`` on a buffer whose axes are ``layout``
        (``((label, size), ...)`` in address order). The core contracts the one or two axes it
        shares with the buffer; it adds its other axes, output modes at the first shared axis's
        place and ranks at the second's (an added axis of extent 1 is left out of the buffer). A
        ValueError when it shares more than two, or an input mode it does not find."""
        axes = self.core_axes(index)
        labels = [label for label, _ in layout]
        shared = sorted((labels.index(label), axis) for axis, (label, _) in enumerate(axes) if label in labels)
        added = [axis for axis, (label, _) in enumerate(axes) if label not in labels]
        if len(shared) > 2 or any(axes[axis][0][0] == "in" for axis in added):
            raise ValueError(f"node {index} cannot be contracted into a buffer of axes {labels}")
        modes = [axis for axis in added if axes[axis][0][0] == "out"]
        ranks = [axis for axis in added if axes[axis][0][0] == "rank"]
        # a core that shares no axis (every rank 1: a scalar) scales the buffer: one term per row
        first, last = (shared[0][0], shared[-1][0]) if shared else (len(layout), len(layout))
        before, between, after = layout[:first], layout[first + 1 : last], layout[last + 1 :]
        size = lambda part: prod(extent for _, extent in part)  # noqa: E731
        step = StreamStep(
            node=index,
            rows=size(before),
            n_in=axes[shared[0][1]][1] if shared else 1,
            n_right=size(between),
            rank_in=axes[shared[1][1]][1] if len(shared) == 2 else 1,
            n_out=prod(axes[axis][1] for axis in modes),
            rank_out=prod(axes[axis][1] for axis in ranks),
            trail=size(after),
            axes=tuple(axis for _, axis in shared) + tuple(ranks) + tuple(modes),
        )
        kept = lambda group: tuple(axes[axis] for axis in group if axes[axis][1] > 1)  # noqa: E731
        return step, before + kept(modes) + between + kept(ranks) + after

    def outputs_in_order(self, layout: tuple) -> bool:
        """Whether a buffer's axes of extent > 1 are the output modes in order (the map's result)."""
        modes = [("out", k) for k, m in enumerate(self.output_modes) if m > 1]
        return [label for label, extent in layout if extent > 1] == modes

    def stream_steps(self, order) -> list:
        """The ``StreamStep`` of every core in ``order``; a ValueError when a core cannot meet the
        buffer (``stream_step``) or the outputs do not end in order."""
        layout = tuple((("in", k), n) for k, n in enumerate(self.input_modes))
        steps = []
        if sorted(order) != list(range(len(self.nodes))):
            raise ValueError(f"order {list(order)} must name every node once")
        for index in order:
            step, layout = self.stream_step(index, layout)
            steps.append(step)
        if not self.outputs_in_order(layout):
            raise ValueError(f"order {list(order)} leaves the outputs as {[label for label, _ in layout]}")
        return steps

    @cached_property
    def stream_order(self) -> tuple:
        """The cheapest order for streaming: among the orders whose every step keeps at most
        ``LIVE_WORDS`` sums per row (or, when none does, the smallest such peak), the fewest MACs,
        then the smaller peak, then the smaller tuple. Found by a search over the cores contracted
        and the buffer's layout."""

        @cache
        def best(done: frozenset, layout: tuple) -> tuple | None:  # (over, MACs, peak, order) of the rest
            if len(done) == len(self.nodes):
                return (0, 0, 0, ()) if self.outputs_in_order(layout) else None
            options = []
            for index in range(len(self.nodes)):
                if index in done:
                    continue
                try:
                    step, after = self.stream_step(index, layout)
                except ValueError:
                    continue
                rest = best(done | {index}, after)
                if rest is not None:
                    peak = max(step.out_row, rest[2])
                    options.append((max(peak - LIVE_WORDS, 0), step.macs + rest[1], peak, (index, *rest[3])))
            return min(options) if options else None

        found = best(frozenset(), tuple((("in", k), n) for k, n in enumerate(self.input_modes)))
        return found[3]

    def schedule(self) -> list:
        """One ``StreamStep`` per core, in ``stream_order``."""
        return self.stream_steps(self.stream_order)


def contract_step(step: StreamStep, buffer: np.ndarray, core: np.ndarray) -> np.ndarray:
    """One schedule step on a batch, exact: buffer (batch, in_size) -> (batch, out_size)."""
    batch = buffer.shape[0]
    view = buffer.reshape(batch, step.rows, step.n_in, step.n_right, step.rank_in, step.trail)
    matrix = np.transpose(np.asarray(core), step.axes).reshape(step.core_shape)
    out = np.einsum("zlipbe,ibaj->zljpae", view, matrix)  # (batch, l, j, p, a, e)
    return out.reshape(batch, step.out_size)


def ht_matvec(x: np.ndarray, cores, shape: HTShape) -> np.ndarray:
    buffer = x
    for step in shape.schedule():
        buffer = contract_step(step, buffer, cores[step.node])
    return buffer


def ht_to_dense(cores, shape: HTShape) -> np.ndarray:
    """The full matrix (n_in, n_out), float64: the schedule applied to the identity."""
    return ht_matvec(np.eye(shape.n_in), [np.asarray(c, np.float64) for c in cores], shape)


def ht_svd(matrix: np.ndarray, shape: HTShape):
    """HT-SVD of a dense (n_in, n_out) matrix: truncated SVDs of every node's matricization.

    Returns ``(cores, relative_error)``: leaves are leading left singular vectors, transfer
    tensors project the children's bases onto the node's basis, from the root down.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (shape.n_in, shape.n_out):
        raise ValueError(f"dense matrix has shape {matrix.shape}, the HT shape needs {(shape.n_in, shape.n_out)}")
    d = len(shape.input_modes)
    n, m = shape.input_modes, shape.output_modes
    # tensor with one combined mode (n_k, m_k) per leaf: (n0 m0, n1 m1, ...)
    tensor = matrix.reshape(*n, *m).transpose([i for k in range(d) for i in (k, d + k)])
    tensor = tensor.reshape([n[k] * m[k] for k in range(d)])
    bases = {}
    for node in shape.nodes[:-1]:
        modes = list(range(node.lo, node.hi))
        rest = [k for k in range(d) if k not in modes]
        unfolding = tensor.transpose(modes + rest).reshape(prod(tensor.shape[k] for k in modes), -1)
        u, _, _ = np.linalg.svd(unfolding, full_matrices=False)
        basis = np.zeros((unfolding.shape[0], shape.ranks[node.index]))
        keep = min(basis.shape[1], u.shape[1])
        basis[:, :keep] = u[:, :keep]
        bases[node.index] = basis
    cores = []
    for node in shape.nodes:
        if node.is_leaf:
            cores.append(bases[node.index].reshape(shape.core_shape(node.index)))
            continue
        left, right = node.children
        pair = np.kron(bases[left], bases[right])  # (rows_l * rows_r, r_l * r_r)
        if node.index == shape.nodes[-1].index:
            target = tensor.reshape(-1, 1)
        else:
            target = bases[node.index]
        cores.append((pair.T @ target).reshape(shape.core_shape(node.index)))
    error = np.linalg.norm(matrix - ht_to_dense(cores, shape)) / max(np.linalg.norm(matrix), 1e-300)
    return cores, float(error)
