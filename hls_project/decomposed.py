"""What the decomposed input maps (TT, HT, FDHT) share in C++: banked buffers and the step chain.

Every decomposed map is a chain of steps (``nnet_decomposed.h``):

- the first step contracts one mode of the frame as it streams in (``frame_mode_contract``:
  ``out[a, t, b] = sum_u x[a, u, b] * core[u, t]``), so the frame is never stored;
- each later step is the family's kernel, reading a buffer stored as ``[banks][depth]`` in the
  layout of that step (``BankView``): the writer of a buffer walks its addresses in the reader's
  layout with a ``bank_cursor``, so the reader's parallel reads hit different banks;
- the last step's buffer (one bank) is copied into ``zx``.

``chain_cpp`` writes that chain once for every family; a family supplies its steps as ``Link``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hls_project.lstm_cell import multiplier_limit


@dataclass(frozen=True)
class BankView:
    """The banked layout of a buffer read as (a, p, u, q, v, b); mirrors ``nnet::bank_view``.

    bank = u * V + v, offset = ((a * P + p) * Q + q) * B + b. The default is one plain bank.
    """

    p: int = 1
    u: int = 1
    q: int = 1
    v: int = 1
    b: int = 1

    @classmethod
    def of(cls, step) -> BankView:
        """The layout a step with ``p, u, q, v, b`` attributes reads; one bank for None (``zx``)."""
        return cls() if step is None else cls(step.p, step.u, step.q, step.v, step.b)

    @property
    def banks(self) -> int:
        return self.u * self.v

    def bank(self, address):
        return ((address // (self.b * self.v * self.q)) % self.u) * self.v + (address // self.b) % self.v

    def offset(self, address):
        b = address % self.b
        q = (address // (self.b * self.v)) % self.q
        ap = address // (self.b * self.v * self.q * self.u)
        return (ap * self.q + q) * self.b + b

    def cpp(self) -> str:
        return f"nnet::bank_view<{self.p}, {self.u}, {self.q}, {self.v}, {self.b}>"


@dataclass(frozen=True)
class FrameMode:
    """The first step of a chain: the frame read as (a, u, b), mode u contracted, ``t`` outputs per (a, b)."""

    a: int
    u: int
    t: int
    b: int


FRAME_MODE_TEMPLATE = """// step 0: the frame as (a, u, b) = ({a}, {u}, {b}), u -> {t}; {macs} MACs, {acc} accumulators
struct config{index}_frame : nnet::frame_mode_config {{
    static const unsigned a = {a}, u = {u}, t = {t}, b = {b};
    static const unsigned reuse_factor = {reuse_factor};
    static const unsigned multiplier_limit = {multiplier_limit};
    typedef {core_t} core_t;
    typedef {mac_t} mac_t;
    typedef {out_view} out_view;
}};
"""


def frame_mode_config(index: int, mode: FrameMode, reuse_factor: int, core_t: str, mac_t: str, out_view) -> str:
    """The ``nnet::frame_mode_config`` of layer ``index``'s first step."""
    return FRAME_MODE_TEMPLATE.format(
        index=index,
        a=mode.a,
        u=mode.u,
        t=mode.t,
        b=mode.b,
        macs=mode.a * mode.u * mode.t * mode.b,
        acc=mode.t * mode.b,
        reuse_factor=reuse_factor,
        multiplier_limit=multiplier_limit(mode.t, reuse_factor),
        core_t=core_t,
        mac_t=mac_t,
        out_view=out_view.cpp(),
    )


@dataclass(frozen=True)
class Link:
    """A later step of a chain: ``kernel<accum_t, accum_t, config, OUT_DEPTH>(in, out, core)``."""

    kernel: str  # the family's C++ kernel, e.g. nnet::ht_node_contract
    config: str  # its step config struct
    core: str  # the C++ name of the step's core
    out_size: int  # words written


def chain_cpp(comment: str, index: int, first_core: str, first_out_size: int, links: list, views: list) -> str:
    """The family's ``input_map`` member: the frame step into ``buf1``, then ``links`` buffer to
    buffer, the last buffer copied into ``zx``. ``views[k]``: the layout of ``buf{k + 1}`` (the
    reader's ``BankView``; ``BankView()`` for the last)."""
    sizes = [first_out_size] + [link.out_size for link in links]
    lines = [
        f"    // {comment}",
        "    template <class data_T>",
        "    static void input_map(hls::stream<data_T> &frame, const state_t h[n_state], accum_t zx[4 * n_state]) {",
    ]
    # static: these are on-chip memories in hardware, and large shapes would overflow the C-sim stack
    for number, (size, view) in enumerate(zip(sizes, views, strict=True), start=1):
        lines.append(f"        static accum_t buf{number}[{view.banks}][{size // view.banks}];")
        lines.append(f"        #pragma HLS ARRAY_PARTITION variable=buf{number} complete dim=1")
    depth = sizes[0] // views[0].banks
    call = f"nnet::frame_mode_contract<config{index}, config{index}_frame, data_T, accum_t, {depth}>"
    lines.append(f"        {call}(frame, h, buf1, {first_core});")
    for number, link in enumerate(links, start=1):
        depth = link.out_size // views[number].banks
        call = f"{link.kernel}<accum_t, accum_t, {link.config}, {depth}>"
        lines.append(f"        {call}(buf{number}, buf{number + 1}, {link.core});")
    lines += [
        "    Output:",
        "        for (unsigned i = 0; i < 4 * n_state; i++) {",
        "            #pragma HLS PIPELINE",
        f"            zx[i] = buf{len(sizes)}[0][i];",
        "        }",
        "    }",
    ]
    return "\n".join(lines)
