"""Hierarchical-Tucker (HT) matrices in NumPy: the dimension tree, schedule, HT-SVD and counts.

A matrix ``W`` of shape ``(prod(input_modes), prod(output_modes))`` is stored over a balanced
binary tree of its ``d`` leaf modes ``(n_k, m_k)``:

* leaf ``k``: a frame ``U_k`` of shape ``(n_k, m_k, r_k)``;
* internal node ``t`` with children ``l, r``: a transfer tensor ``B_t`` of shape
  ``(r_l, r_r, r_t)``; the root has ``r_t = 1``.

Nodes are numbered in post-order (left subtree, right subtree, node), the root last, and
``ranks`` lists one rank per node in that order. ``y = x @ W`` is computed node by node: each leaf
replaces the mode ``n_k`` of the input tensor by ``(m_k, r_k)``; each transfer tensor merges its
children's rank axes into its own. Every step has the same form,
``out[a, p, q, t, b] = sum_{u, v} in[a, p, u, q, v, b] * core[u, v, t]``, so one kernel runs all of
them by address arithmetic, with no transposed copy of the buffer.

Any order in which a node comes after both its children computes the same map; the cost is not
the same (post-order contracts the small leaf first and multiplies the buffer by ``m_k r_k /
n_k`` before the big leaves shrink it). ``HTShape.order`` is the cheapest: fewest MACs, ties
broken by the smaller peak buffer, then by the smaller order. It is found exactly by dynamic
programming over the sets of contracted nodes (the buffer's layout depends only on that set):
instant for the 4-leaf trees we build, about a second for 12 leaves. The Keras layer, the NumPy
reference and the HLS kernel all run ``HTShape.schedule()``, so they follow it together.
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


@dataclass(frozen=True)
class HTStep:
    """``out[a, p, q, t, b] = sum_{u, v} in[a, p, u, q, v, b] * core[u, v, t]`` for one node.

    A leaf is the case ``p = q = v = 1``, ``u = n_k``, ``t = m_k * r_k``.
    """

    node: int
    a: int
    p: int
    u: int
    q: int
    v: int
    t: int
    b: int

    @property
    def in_size(self) -> int:
        return self.a * self.p * self.u * self.q * self.v * self.b

    @property
    def buffer(self) -> int:
        """Words of the larger of the step's two buffers."""
        return max(self.in_size, self.out_size)

    @property
    def out_size(self) -> int:
        return self.a * self.p * self.q * self.t * self.b

    @property
    def terms(self) -> int:
        return self.u * self.v

    @property
    def macs(self) -> int:
        return self.out_size * self.terms

    def read_addresses(self, a, p, q, b) -> np.ndarray:
        """Buffer addresses read (in one cycle, all ``u * v`` terms) for one output element."""
        u, v = np.meshgrid(np.arange(self.u), np.arange(self.v), indexing="ij")
        return ((((a * self.p + p) * self.u + u) * self.q + q) * self.v + v) * self.b + b


@dataclass(frozen=True, kw_only=True)
class StreamStep(ModeContraction):
    """One core contracted into the buffer as the buffer streams in (``HTShape(streaming=True)``),
    a ``ModeContraction``: the core's axes taken in the order ``axes`` (the one or two it shares
    with the buffer, then the ranks it adds, then the output modes it adds) and reshaped to
    ``core_shape``; the output modes take the first shared axis's place, the ranks the second's."""

    node: int
    axes: tuple  # the core's axes in read order


@dataclass(frozen=True)
class HTShape(MatrixDecomposition):
    """Modes, tree and ranks of an HT matrix; everything else is derived."""

    input_modes: tuple
    output_modes: tuple
    ranks: tuple
    streaming: bool = False  # schedule(): stream_schedule() (a frame pipeline), else the post-order steps

    @classmethod
    def create(cls, input_modes, output_modes, ranks, streaming: bool = False):
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
        shape = cls(tuple(n), tuple(m), tuple(r), streaming)
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

    def step(self, node: HTNode, done: frozenset) -> HTStep:
        """The step of ``node`` once the nodes in ``done`` are contracted (its children among them).

        The buffer holds, by leaf position: ``n_k`` for a leaf not yet contracted, and for each
        contracted subtree whose parent is not, its output modes times its rank.
        """
        n, m, r = self.input_modes, self.output_modes, self.ranks
        roots = [other for other in self.nodes if other.index in done and self.parents.get(other.index) not in done]

        def size(lo, hi):  # the buffer axes of leaf positions lo..hi-1, outside the node
            pending = prod(n[k] for k in range(lo, hi) if self.leaves[k].index not in done)
            return pending * prod(prod(m[x.lo : x.hi]) * r[x.index] for x in roots if lo <= x.lo and x.hi <= hi)

        before, after = size(0, node.lo), size(node.hi, len(n))
        if node.is_leaf:
            k = node.lo
            return HTStep(node.index, before, 1, n[k], 1, 1, m[k] * r[node.index], after)
        left, right = (self.nodes[c] for c in node.children)
        p, q = prod(m[left.lo : left.hi]), prod(m[right.lo : right.hi])
        return HTStep(node.index, before, p, r[left.index], q, r[right.index], r[node.index], after)

    def steps(self, order) -> list:
        """The ``HTStep`` of every node in ``order`` (each node after its children)."""
        done, steps = frozenset(), []
        for index in order:
            node = self.nodes[index]
            if index in done or any(c not in done for c in node.children):
                raise ValueError(f"order {list(order)}: node {index} must come once, after its children")
            steps.append(self.step(node, done))
            done |= {index}
        if len(done) != len(self.nodes):
            raise ValueError(f"order {list(order)} leaves nodes out")
        return steps

    @cached_property
    def order(self) -> tuple:
        """The cheapest valid order: fewest MACs, then the smaller peak buffer, then the smaller tuple."""

        @cache
        def best(done: frozenset) -> tuple:  # (MACs, peak buffer, order) of the rest
            if len(done) == len(self.nodes):
                return 0, 0, ()
            options = []
            for node in self.nodes:
                if node.index not in done and all(c in done for c in node.children):
                    step = self.step(node, done)
                    macs, peak, rest = best(done | {node.index})
                    options.append((step.macs + macs, max(step.buffer, peak), (node.index, *rest)))
            return min(options)

        return best(frozenset())[2]

    def schedule(self) -> list:
        """One step per node: ``stream_schedule()`` for a streaming shape, else the ``HTStep`` of
        every node in the cheapest order (``order``)."""
        return self.stream_schedule() if self.streaming else self.steps(self.order)

    # -- streaming: any order in which each core meets the buffer ------------------------------
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

    def stream_schedule(self) -> list:
        """One ``StreamStep`` per core, in ``stream_order``."""
        return self.stream_steps(self.stream_order)


def contract_step(step, buffer: np.ndarray, core: np.ndarray) -> np.ndarray:
    """One schedule step (``HTStep`` or ``StreamStep``) on a batch, exact: buffer (batch, in_size)
    -> (batch, out_size)."""
    batch = buffer.shape[0]
    if isinstance(step, StreamStep):
        view = buffer.reshape(batch, step.rows, step.n_in, step.n_right, step.rank_in, step.trail)
        matrix = np.transpose(np.asarray(core), step.axes).reshape(step.core_shape)
        out = np.einsum("zlipbe,ibaj->zljpae", view, matrix)
        return out.reshape(batch, step.out_size)
    view = buffer.reshape(batch, step.a, step.p, step.u, step.q, step.v, step.b)
    out = np.einsum("bapuqvc,uvt->bapqtc", view, np.asarray(core).reshape(step.u, step.v, step.t))
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
