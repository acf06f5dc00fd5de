"""What the decomposed input maps (TT, HT, FDHT) share in C++: banked buffers and the step chain.

Every decomposed map is a chain of steps (``nnet_decomposed.h``):

- the first step contracts one mode of the frame as it streams in (``frame_mode_contract``:
  ``out[a, t, b] = sum_u x[a, u, b] * core[u, t]``), a pack of the input stream per iteration
  where the pack lies inside a row (``FrameMode.packed``), so the frame is never stored;
- each later step is the family's kernel, reading a buffer stored as ``[banks][depth]`` in the
  layout of that step (``BankView``): the writer of a buffer walks its addresses in the reader's
  layout with a ``bank_cursor``, so the reader's parallel reads hit different banks;
- the last step's buffer (one bank) is copied into ``zx``.

``Chain`` describes that chain once for every family (a family supplies its frame step and its
later steps as ``Link``); its C++, its configs and its cost ``stages`` are all read from it.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, replace

from hls_project.cost import Memory, Stage
from hls_project.lstm_cell import exact_cpp, map_input_type, multiplier_limit, product_sum_type


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
    """The first step of a chain: the frame read as (a, u, b), mode u contracted, ``t`` outputs per
    (a, b), ``pack`` frame values per iteration (along b, or along u when b = 1)."""

    a: int
    u: int
    t: int
    b: int
    pack: int = 1

    @property
    def out_size(self) -> int:
        return self.a * self.t * self.b

    @property
    def pack_along_u(self) -> int:
        return self.pack if self.b == 1 else 1

    @property
    def pack_along_b(self) -> int:
        return 1 if self.b == 1 else self.pack

    def packed(self, pack: int) -> FrameMode:
        """This step taking the input stream's ``pack`` values per iteration, when a pack lies
        inside one row (b a multiple of it, or b = 1 and u a multiple of it); else a value per
        iteration."""
        fits = self.b % pack == 0 if self.b > 1 else self.u % pack == 0
        return replace(self, pack=pack if fits else 1)


FRAME_MODE_TEMPLATE = """// step 0: the frame as (a, u, b) = ({a}, {u}, {b}), u -> {t}; {macs} MACs, {acc} accumulators
struct config{index}_frame : nnet::frame_mode_config {{
    static const unsigned a = {a}, u = {u}, t = {t}, b = {b};
    static const unsigned pack = {pack};
    static const unsigned reuse_factor = {reuse_factor};
    static const unsigned multiplier_limit = {multiplier_limit};
    typedef {core_t} core_t;
    typedef {mac_t} mac_t;
    typedef {out_view} out_view;
}};
"""


@dataclass(frozen=True)
class Link:
    """A later step of a chain: ``kernel<accum_t, accum_t, config, OUT_DEPTH>(in, out, core)``, one
    output of ``terms`` products per iteration."""

    kernel: str  # the family's C++ kernel, e.g. nnet::ht_node_contract
    config: str  # its step config struct
    core: str  # the C++ name of the step's core
    out_size: int  # words written (= iterations)
    terms: int  # products per output
    core_words: int


@dataclass(frozen=True)
class Chain:
    """A family's whole input map: the frame step, the later steps, the layout of every buffer.

    ``views[k]`` is the layout of ``buf{k + 1}`` (the reader's ``BankView``; ``BankView()`` for the
    last, copied into ``zx``). ``cpp``, the configs and ``stages`` all read this one description.
    """

    first: FrameMode
    first_core: str
    links: tuple
    views: tuple

    @property
    def buffer_sizes(self) -> list:
        """Words of ``buf1 .. bufN``: the frame step's output, then each link's."""
        return [self.first.out_size] + [link.out_size for link in self.links]

    def frame_config(self, index: int, reuse_factor: int, core_t: str, mac_t: str) -> str:
        """The ``nnet::frame_mode_config`` of layer ``index``'s first step."""
        mode = self.first
        return FRAME_MODE_TEMPLATE.format(
            index=index,
            a=mode.a,
            u=mode.u,
            t=mode.t,
            b=mode.b,
            macs=mode.a * mode.u * mode.t * mode.b,
            acc=mode.t * mode.b,
            pack=mode.pack,
            reuse_factor=reuse_factor,
            multiplier_limit=multiplier_limit(mode.t * mode.pack, reuse_factor),
            core_t=core_t,
            mac_t=mac_t,
            out_view=self.views[0].cpp(),
        )

    def cpp(self, comment: str, index: int) -> str:
        """The family's ``input_map`` member: the frame step into ``buf1``, then the links buffer
        to buffer, the last buffer copied into ``zx``."""
        sizes = self.buffer_sizes
        lines = [
            f"    // {comment}",
            "    template <class data_T>",
            "    static void input_map(hls::stream<data_T> &frame, const state_t h[n_state],",
            "                          accum_t zx[4 * n_state]) {",
        ]
        # static: these are on-chip memories in hardware, and large shapes would overflow the C-sim stack
        for number, (size, view) in enumerate(zip(sizes, self.views, strict=True), start=1):
            lines.append(f"        static accum_t buf{number}[{view.banks}][{size // view.banks}];")
            lines.append(f"        #pragma HLS ARRAY_PARTITION variable=buf{number} complete dim=1")
        depth = sizes[0] // self.views[0].banks
        call = f"nnet::frame_mode_contract<config{index}, config{index}_frame, data_T, accum_t, {depth}>"
        lines.append(f"        {call}(frame, h, buf1, {self.first_core});")
        for number, link in enumerate(self.links, start=1):
            depth = link.out_size // self.views[number].banks
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

    def stages(self, reuse_factors: list, in_bits: int, kernel_bits: int, acc_bits: int, mac_bits: list) -> list:
        """The chain's ``hls_project.cost.Stage`` per frame, loop by loop as ``cpp`` writes them.

        ``reuse_factors[k]`` and ``mac_bits[k]``: the reuse factor (folding stage ``step k``) and
        the exact sum's width of step k (0: the frame step)."""
        mode = self.first
        buffers = [
            Memory(f"buf{number}", size, acc_bits, view.banks)
            for number, (size, view) in enumerate(zip(self.buffer_sizes, self.views, strict=True), start=1)
        ]
        # the frame step is one pipeline of a + 1 passes (no refill per row): pass a accumulates
        # row a (its steps take `pack` frame values times t coefficients, t * pack along u, into
        # t sums, t * pack along b) and rounds row a - 1 (an output per iteration) from the other
        # half of acc
        core_reads, acc_reads = mode.t * mode.pack_along_u, mode.t * mode.pack_along_b
        steps, outputs = mode.u * mode.b // mode.pack, mode.t * mode.b
        stages = [
            Stage(
                "step 0 (frame)",
                (mode.a + 1) * max(steps, outputs),
                reuse_factors[0],
                multiplier_limit(mode.t * mode.pack, reuse_factors[0]),
                (in_bits, kernel_bits),
                mac_bits[0],
                (
                    Memory("core (step 0)", mode.u * mode.t, kernel_bits, core_reads),
                    Memory("acc", 2 * mode.t * mode.b, mac_bits[0], 2 * acc_reads),
                    Memory("frame values", mode.pack, in_bits, mode.pack),  # an iteration's pack: registers
                    buffers[0],
                ),
                products=mode.t * mode.pack,
                reads=(("core (step 0)", core_reads), ("acc", acc_reads + 1)),
                fold="step 0",
            ),
        ]
        for number, link in enumerate(self.links, start=1):
            core = Memory(f"core (step {number})", link.core_words, kernel_bits, link.terms)
            stages.append(
                Stage(
                    f"step {number}",
                    link.out_size,
                    reuse_factors[number],
                    multiplier_limit(link.terms, reuse_factors[number]),
                    (acc_bits, kernel_bits),
                    mac_bits[number],
                    (core, buffers[number]),
                    products=link.terms,
                    reads=((core.name, link.terms),),
                    fold=f"step {number}",
                )
            )
        stages.append(Stage("output copy", self.buffer_sizes[-1], 1))
        return stages


class ChainedInputMap:
    """Mixin of an ``LSTMFamilyLayer`` whose input map is a ``Chain``: the family supplies
    ``chain()``, ``schedule_steps()`` and its later steps' config struct (``step_template``,
    ``step_fields``); the configs, the C++ and the cost stages of the whole map follow from them
    here."""

    chain_comment = ""
    step_template = ""  # the config struct of a later step: str.format of step_fields and link_configs' own

    @abstractmethod
    def schedule_steps(self) -> list:
        """The family's contraction schedule: the frame step, then the later steps."""

    @abstractmethod
    def step_fields(self, step) -> dict:
        """The family's own fields of a later step's ``step_template``."""

    def link_configs(self, chain: Chain, mac_types: list) -> str:
        """The config structs of the chain's later steps (``mac_types``: their exact sums)."""
        folding, text = self.folding(), ""
        for number, (step, mac) in enumerate(zip(self.schedule_steps()[1:], mac_types, strict=True), start=1):
            text += self.step_template.format(
                index=self.index,
                step=number,
                macs=step.macs,
                words=step.in_size,
                reuse_factor=folding[f"step {number}"],
                multiplier_limit=multiplier_limit(step.terms, folding[f"step {number}"]),
                core_t=self.get_weights("core_0").type.name,
                mac_t=exact_cpp(mac),
                out_view=chain.views[number].cpp(),
                **self.step_fields(step),
            )
        return text

    def input_map_folding_stages(self) -> list:
        """``step 0`` (the frame step) and one per later step of the chain."""
        return [f"step {number}" for number in range(len(self.chain().links) + 1)]

    def frame_chain(self) -> Chain:
        """``chain()`` with its frame step taking the input stream's packs (``input_pack``) where
        they fit; a fused family's join ([x; h]) is read value by value."""
        chain = self.chain()
        pack = 1 if self.fused_recurrent else self.input_pack()
        return replace(chain, first=chain.first.packed(pack))

    def mac_types(self, chain: Chain) -> list:
        """The exact sum type of every step: the frame step's, then each link's."""
        types = self.lstm_types
        first = product_sum_type(chain.first.u, map_input_type(types, self.fused_recurrent), types.kernel)
        return [first] + [product_sum_type(link.terms, types.accumulator, types.kernel) for link in chain.links]

    def input_map_configs(self):
        chain = self.frame_chain()
        macs = self.mac_types(chain)
        core_t = self.get_weights("core_0").type.name
        text = chain.frame_config(self.index, self.fold("step 0"), core_t, exact_cpp(macs[0]))
        return text + self.link_configs(chain, macs[1:])

    def input_map_cpp(self):
        return self.frame_chain().cpp(self.chain_comment, self.index)

    def input_map_stages(self):
        chain, types, folding = self.frame_chain(), self.lstm_types, self.folding()
        return chain.stages(
            [folding[f"step {number}"] for number in range(len(chain.links) + 1)],
            map_input_type(types, self.fused_recurrent).width,
            types.kernel.width,
            types.accumulator.width,
            [mac.width for mac in self.mac_types(chain)],
        )
