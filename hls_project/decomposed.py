"""What the decomposed input maps (TT, HT, FDHT) share in C++: contraction steps, banked buffers,
and the two ways steps are chained.

Every step that contracts a mode of a stream is one ``nnet::mode_contract`` (``ModeStep``, a
``models.decomposition.ModeContraction``): ``out[l, j, p, a, e] = sum_{i, b} in[l, i, p, b, e] *
core[i, b, a, j]``, its input consumed as it arrives (a pack of values per iteration), each row's
sums rounded while the next row accumulates, so the frame is never stored. Chained:

- ``StreamChain`` (TT, HT): every step is a ``ModeStep`` and a DATAFLOW process over the call's
  frames, joined by FIFOs of packs (``input_maps``): a frame takes the slowest step, not their sum;
- ``Chain`` (FDHT): the frame step (a ``ModeStep`` with ``rank_in = n_out = 1``) writes a buffer
  stored as ``[banks][depth]`` in the layout of the step that reads it (``BankView``, with a
  ``bank_cursor``), each later step is the family's kernel from buffer to buffer, frame by frame
  (``input_map``), and the last buffer is copied into ``zx``.

Each chain is described once (a family supplies its steps); its C++, its configs and its cost
``stages`` are all read from that description.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, fields, replace
from math import ceil, lcm

from hls_project.cost import Memory, Stage
from hls_project.lstm_cell import exact_cpp, map_input_type, multiplier_limit, product_sum_type
from models.decomposition import ModeContraction


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


MAX_ITERATION_PRODUCTS = 512  # a StreamChain step's products per iteration: the stream packs stop there
RATE_HEADROOM = 4  # a stream's pack: up to this many times the values per cycle its consumer needs


def pack_split(pack: int, outer: int, middle: int, inner: int, trail: int = 1) -> tuple | None:
    """A pack of ``pack`` consecutive addresses of a row (outer, middle, inner, trail) as counts
    along each, ``(outer, middle, inner, trail)``, as ``nnet::pack_counts`` splits it (the trail
    first); None when the pack does not tile the row that way."""
    e = min(pack, trail)
    k = min(pack // e, inner)
    m = min(pack // e // k, middle)
    o = pack // e // k // m
    tiles = o * m * k * e == pack and trail % e == 0 and inner % k == 0 and middle % m == 0 and outer % o == 0
    return (o, m, k, e) if tiles else None


@dataclass(frozen=True)
class ModeStep(ModeContraction):
    """One ``nnet::mode_contract``: a ``ModeContraction`` (``out[l, j, p, a, e] = sum_{i, b}
    in[l, i, p, b, e] * core[i, b, a, j]``) whose input is consumed as it arrives (``pack_in``
    values per iteration) and whose rows' sums are rounded while the next row accumulates
    (``pack_out`` outputs per iteration). A TT core is one such step (``trail = 1``), an HT core
    of the streaming order too; a frame step (a mode of the frame) has ``rank_in = 1``."""

    pack_in: int = 1
    pack_out: int = 1

    def __post_init__(self):
        if self.in_split is None or self.out_split is None:
            raise ValueError(f"packs {self.pack_in} / {self.pack_out} do not tile the rows of {self}")

    @property
    def in_split(self):
        return self.input_split(self.pack_in)

    def input_split(self, pack: int):
        return pack_split(pack, self.n_in, self.n_right, self.rank_in, self.trail)

    @property
    def out_split(self):
        return self.output_split(self.pack_out)

    def output_split(self, pack: int):
        return pack_split(pack, self.n_out, self.n_right, self.rank_out, self.trail)

    @property
    def steps(self) -> int:
        """Accumulate iterations of a row."""
        return self.in_row // self.pack_in

    @property
    def outputs(self) -> int:
        """Rounding iterations of a row."""
        return self.out_row // self.pack_out

    @property
    def pass_iterations(self) -> int:
        return max(self.steps, self.outputs)

    @property
    def products(self) -> int:
        """Products per iteration."""
        return self.pack_in * self.n_out * self.rank_out

    @property
    def core_reads(self) -> int:
        """Coefficients an iteration reads: those of its pack's (i, b) terms."""
        outer, _, inner, _ = self.in_split
        return outer * inner * self.rank_out * self.n_out

    @staticmethod
    def banks(a: int, b: int, size: int) -> int:
        """Banks of acc along a dimension of ``size`` that the input pack walks ``a`` of and the
        output pack ``b`` of: both in different banks (all of them when no common cycle divides)."""
        banks = lcm(a, b)
        return banks if size % banks == 0 else size

    @property
    def acc_banks(self) -> int:
        return self.banks(self.in_split[1], self.out_split[1], self.n_right)

    @property
    def trail_banks(self) -> int:
        return self.banks(self.in_split[3], self.out_split[3], self.trail)

    @property
    def acc_reads(self) -> int:
        """acc words an iteration touches: the pack's sums, and the previous row's outputs."""
        return self.in_split[1] * self.in_split[3] * self.n_out * self.rank_out + self.pack_out

    def packed(self, pack: int) -> ModeStep:
        """This step taking ``pack`` input values per iteration where the pack tiles a row, else one."""
        return replace(self, pack_in=pack if self.input_split(pack) else 1)

    def stream_pack(self, consumer: ModeStep, most: int) -> int:
        """The pack of the stream to ``consumer`` (outputs per iteration, a pack that tiles the rows
        of both): the largest of at most ``most`` values (the consumer's products per iteration
        grow with it: the same multipliers at a reuse factor as much larger, so its rate P / RF
        comes in finer steps), and never fewer than a row's rounding needs to keep up with its
        accumulation."""
        fits = [pack for pack in range(1, self.out_row + 1) if self.output_split(pack) and consumer.input_split(pack)]
        keeps_up = [pack for pack in fits if self.out_row // pack <= self.steps] or fits[-1:]
        return max([pack for pack in fits if keeps_up[0] <= pack <= most] or keeps_up[:1])

    def config(self, name: str, comment: str, reuse_factor: int, core_t: str, mac_t: str, base: str = "") -> str:
        """The config struct ``name`` of this step: a ``nnet::mode_contract_config``, or ``base``
        (a family's struct derived from it)."""
        return MODE_STEP_TEMPLATE.format(
            name=name,
            base=base or "nnet::mode_contract_config",
            comment=comment,
            macs=self.macs,
            acc=2 * self.out_row,
            step=self,
            acc_banks=self.acc_banks,
            trail_banks=self.trail_banks,
            reuse_factor=reuse_factor,
            multiplier_limit=multiplier_limit(self.products, reuse_factor),
            core_t=core_t,
            mac_t=mac_t,
        )

    def stage(self, number: int, reuse_factor: int, bits: tuple, mac_bits: int, memories: tuple, frames: int = 1):
        """The step's ``Stage`` per frame (``rows`` over ``frames`` frames): one pipeline of rows + 1
        passes at II ``reuse_factor``; ``bits``: (input, coefficient, output) widths; ``memories``:
        what it writes (a buffer, a FIFO)."""
        in_bits, kernel_bits, out_bits = bits
        core = Memory(f"core (step {number})", self.core_words, kernel_bits, self.core_reads)
        banks = 2 * self.n_out * self.rank_out * self.acc_banks * self.trail_banks
        acc = Memory(f"acc (step {number})", 2 * self.out_row, mac_bits, banks)
        values = (  # an iteration's packs: registers
            Memory(f"input values (step {number})", self.pack_in, in_bits, self.pack_in),
            Memory(f"output values (step {number})", self.pack_out, out_bits, self.pack_out),
        )
        return Stage(
            f"step {number}" + (" (frame)" if number == 0 else ""),
            -(-(self.rows + 1) * self.pass_iterations // frames),
            reuse_factor,
            multiplier_limit(self.products, reuse_factor),
            (in_bits, kernel_bits),
            mac_bits,
            (core, acc, *values, *memories),
            products=self.products,
            reads=((core.name, self.core_reads), (acc.name, self.acc_reads)),
            fold=f"step {number}",
        )


def stream_steps(steps: list, frame_pack: int) -> tuple:
    """A ``StreamChain``'s steps with their packs: the first takes the frame's (``frame_pack``)
    where it tiles its rows; each stream between two steps the widest pack of at most
    ``RATE_HEADROOM`` times the values per cycle its consumer must take when the frame arrives a
    pack per cycle (so the folding pass finds a reuse factor near that rate, P / RF, without
    banking the consumer's sums wider than it needs) and of ``MAX_ITERATION_PRODUCTS`` products
    per iteration (``ModeStep.stream_pack``); the last step writes a value at a time (the zx FIFO)."""
    chosen = [steps[0].packed(frame_pack)]
    frame_values = steps[0].rows * steps[0].in_row
    for step in steps[1:]:
        rate = step.rows * step.in_row / frame_values * chosen[0].pack_in
        most = min(MAX_ITERATION_PRODUCTS // (step.n_out * step.rank_out), ceil(RATE_HEADROOM * rate))
        pack = chosen[-1].stream_pack(step, max(1, most))
        chosen[-1] = replace(chosen[-1], pack_out=pack)
        chosen.append(replace(step, pack_in=pack))
    return tuple(chosen)


def over_frames(step, frames: int) -> ModeStep:
    """The ``ModeStep`` of a family's schedule step (a ``ModeContraction``: TT's and the HT
    streaming order's) over ``frames`` frames: its rows those of every frame."""
    shape = {field.name: getattr(step, field.name) for field in fields(ModeContraction)}
    return ModeStep(**{**shape, "rows": step.rows * frames})


def frame_step(a: int, u: int, t: int, b: int) -> ModeStep:
    """The frame read as (a, u, b), mode u contracted into ``t`` outputs per (a, b): out (a, t, b)
    (rank_in = n_out = 1, ``b`` trailing)."""
    return ModeStep(rows=a, n_in=u, rank_out=t, trail=b)


MODE_STEP_TEMPLATE = """// {comment}: ({step.rows}, {step.n_in}, {step.n_right}, {step.rank_in}, {step.trail}) -> \
({step.rows}, {step.n_out}, {step.n_right}, {step.rank_out}, {step.trail}), {macs} MACs, {acc} accumulators
struct {name} : {base} {{
    static const unsigned rows = {step.rows}, n_in = {step.n_in}, n_right = {step.n_right}, rank_in = {step.rank_in};
    static const unsigned n_out = {step.n_out}, rank_out = {step.rank_out}, trail = {step.trail};
    static const unsigned pack_in = {step.pack_in}, pack_out = {step.pack_out};
    static const unsigned acc_banks = {acc_banks}, trail_banks = {trail_banks};
    static const unsigned reuse_factor = {reuse_factor};
    static const unsigned multiplier_limit = {multiplier_limit};
    typedef {core_t} core_t;
    typedef {mac_t} mac_t;
}};
"""


def frame_reader(step: ModeStep, index: int, io_stream: bool) -> str:
    """The reader of a chain's frame: the input stream's packs (``input_t``, the input quantizer)
    where one tiles a row of the step, else value by value (``join_reader``; an io_parallel call's
    array through ``array_reader``)."""
    if not io_stream:
        return "nnet::array_reader<input_t>"
    return (
        f"nnet::pack_reader<input_t, {step.pack_in}>"
        if step.pack_in > 1
        else f"nnet::join_reader<data_T, config{index}>"
    )


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
    """A family's whole input map on buffers (FDHT): the frame step, the later steps, the
    layout of every buffer, run frame by frame (``input_map``).

    ``views[k]`` is the layout of ``buf{k + 1}`` (the reader's ``BankView``; ``BankView()`` for the
    last, copied into ``zx``). ``cpp``, the configs and ``stages`` all read this one description.
    """

    first: ModeStep
    first_core: str
    links: tuple
    views: tuple

    @property
    def terms(self) -> list:
        """Products per output of every step: the frame step's, then each link's."""
        return [self.first.terms] + [link.terms for link in self.links]

    @property
    def buffer_sizes(self) -> list:
        """Words of ``buf1 .. bufN``: the frame step's output, then each link's."""
        return [self.first.out_size] + [link.out_size for link in self.links]

    def body(self, comment: str, index: int, reader: str) -> str:
        """The body of the family's ``input_map``: the frame step (``reader``) into ``buf1``, then
        the links buffer to buffer, the last buffer copied into ``zx``."""
        sizes = self.buffer_sizes
        lines = [f"        // {comment}"]
        # static: these are on-chip memories in hardware, and large shapes would overflow the C-sim stack
        for number, (size, view) in enumerate(zip(sizes, self.views, strict=True), start=1):
            lines.append(f"        static accum_t buf{number}[{view.banks}][{size // view.banks}];")
            lines.append(f"        #pragma HLS ARRAY_PARTITION variable=buf{number} complete dim=1")
        writer = f"nnet::bank_writer<{self.views[0].cpp()}, accum_t>"
        call = f"nnet::mode_contract<config{index}_frame, config{index}, {reader}, {writer}>"
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
        ]
        return "\n".join(lines)

    def stages(self, reuse_factors: list, in_bits: int, kernel_bits: int, acc_bits: int, mac_bits: list) -> list:
        """The chain's ``hls_project.cost.Stage`` per frame, loop by loop as ``cpp`` writes them.

        ``reuse_factors[k]`` and ``mac_bits[k]``: the reuse factor (folding stage ``step k``) and
        the exact sum's width of step k (0: the frame step)."""
        buffers = [
            Memory(f"buf{number}", size, acc_bits, view.banks)
            for number, (size, view) in enumerate(zip(self.buffer_sizes, self.views, strict=True), start=1)
        ]
        bits = (in_bits, kernel_bits, acc_bits)
        stages = [self.first.stage(0, reuse_factors[0], bits, mac_bits[0], (buffers[0],))]
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


@dataclass(frozen=True)
class StreamChain:
    """A family's whole input map as a frame pipeline (TT, HT): every step a ``ModeStep`` over the
    call's frames (``rows`` = its rows per frame x ``frames``) and a DATAFLOW process of its own,
    joined to the next by a FIFO of its output packs (``pack_out``, a whole row deep, so a row's
    rounding never waits), the last writing the zx FIFO a value at a time. A frame takes the
    slowest step, not their sum, and nothing is stored but each step's two rows of sums. Step k's
    config is ``config<index>_<prefix><k>``, a ``base`` (the family's ``nnet::mode_contract_config``)."""

    steps: tuple
    cores: tuple
    frames: int
    prefix: str
    base: str

    @property
    def terms(self) -> list:
        """Products per output of every step."""
        return [step.terms for step in self.steps]

    def fifo_depth(self, number: int) -> int:
        """Packs of the FIFO after step ``number``: one row of its outputs (at least 2)."""
        return max(2, self.steps[number].outputs)

    def configs(self, index: int, reuse_factors: list, core_t: str, mac_types: list) -> str:
        return "".join(
            step.config(
                f"config{index}_{self.prefix}{number}", f"step {number}", reuse_factor, core_t, mac_t, self.base
            )
            for number, (step, reuse_factor, mac_t) in enumerate(zip(self.steps, reuse_factors, mac_types, strict=True))
        )

    def body(self, comment: str, index: int, reader: str) -> str:
        """The body of the family's ``input_maps``: the steps as one DATAFLOW over the call's
        frames, the first reading the call's input ``data`` with ``reader``, the last writing ``zx``."""
        lines = [
            f"        // {comment}",
            "        #pragma HLS DATAFLOW",
            "        static const state_t no_state[n_state] = {}; // the maps read no h",
        ]
        streams = [f"s{number}" for number in range(1, len(self.steps))]
        for number, name in enumerate(streams):
            lines.append(f'        hls::stream<nnet::array<accum_t, {self.steps[number].pack_out}>> {name}("{name}");')
            lines.append(f"        NNET_STREAM_DEPTH({name}, {self.fifo_depth(number)});")
        calls = []
        for number, (step, core) in enumerate(zip(self.steps, self.cores, strict=True)):
            source_name = "data" if number == 0 else streams[number - 1]
            step_reader = reader if number == 0 else f"nnet::pack_reader<accum_t, {step.pack_in}>"
            last = number == len(self.steps) - 1
            writer = (
                "nnet::value_writer<accum_t>" if last else f"nnet::pack_writer<nnet::array<accum_t, {step.pack_out}>>"
            )
            sink = "zx" if last else streams[number]
            kernel = f"nnet::mode_contract<config{index}_{self.prefix}{number}, config{index}, {step_reader}, {writer}>"
            calls.append(f"            ({kernel}({source_name}, no_state, {sink}, {core}))")
        lines += ["        NNET_DATAFLOW(", ",\n".join(calls) + ");"]
        return "\n".join(lines)

    def stages(self, reuse_factors: list, in_bits: int, kernel_bits: int, acc_bits: int, mac_bits: list) -> list:
        """One ``Stage`` per step (per frame), each writing its FIFO (the last: the zx FIFO of
        ``4 * n_state`` values, ``nnet::lstm_call``'s)."""
        stages = []
        for number, step in enumerate(self.steps):
            last = number == len(self.steps) - 1
            depth = step.out_row if last else self.fifo_depth(number)
            name = "pre-activation FIFO" if last else f"FIFO {number + 1}"
            fifo = Memory(name, depth, acc_bits * step.pack_out)
            bits = (in_bits if number == 0 else acc_bits, kernel_bits, acc_bits)
            stages.append(step.stage(number, reuse_factors[number], bits, mac_bits[number], (fifo,), self.frames))
        return stages


class DecomposedInputMap:
    """What the mixins of decomposed input maps share: a folding stage per step (``step k``; 0:
    the frame step), and each step's exact sum type."""

    chain_comment = ""

    def input_map_folding_stages(self) -> list:
        return [f"step {number}" for number in range(len(self.schedule_steps()))]

    def step_reuse_factors(self) -> list:
        folding = self.folding()
        return [folding[stage] for stage in self.input_map_folding_stages()]

    def mac_types(self, chain) -> list:
        """The exact sum type of every step of ``chain``: the frame step's (products of the map's
        input), then the later steps' (of the accumulator)."""
        types, (first, *later) = self.lstm_types, chain.terms
        frame = product_sum_type(first, map_input_type(types, self.fused_recurrent), types.kernel)
        return [frame] + [product_sum_type(terms, types.accumulator, types.kernel) for terms in later]

    def first_core_t(self) -> str:
        return self.get_weights("core_0").type.name

    @abstractmethod
    def schedule_steps(self) -> list:
        """The family's contraction schedule: the frame step, then the later steps."""

    @abstractmethod
    def built_chain(self):
        """The chain the C++ is written from (a ``Chain`` or a ``StreamChain``)."""

    def input_map_stages(self):
        chain, types = self.built_chain(), self.lstm_types
        return chain.stages(
            self.step_reuse_factors(),
            map_input_type(types, self.fused_recurrent).width,
            types.kernel.width,
            types.accumulator.width,
            [mac.width for mac in self.mac_types(chain)],
        )


class StreamedInputMap(DecomposedInputMap):
    """Mixin of an ``LSTMFamilyLayer`` whose input map is a ``StreamChain`` (``stream_chain()``):
    its configs, its C++ (``input_maps``, a whole call) and its cost stages follow from it here."""

    call_input_map = True

    @abstractmethod
    def stream_chain(self) -> StreamChain:
        """The family's steps over a call's frames, packs chosen, the cores' C++ names."""

    def input_map_configs(self):
        chain = self.stream_chain()
        types = [exact_cpp(mac) for mac in self.mac_types(chain)]
        return chain.configs(self.index, self.step_reuse_factors(), self.first_core_t(), types)

    def input_map_body(self):
        chain = self.stream_chain()
        return chain.body(self.chain_comment, self.index, frame_reader(chain.steps[0], self.index, self.io_stream()))

    def built_chain(self) -> StreamChain:
        return self.stream_chain()


class ChainedInputMap(DecomposedInputMap):
    """Mixin of an ``LSTMFamilyLayer`` whose input map is a ``Chain``: the family supplies
    ``chain()``, ``schedule_steps()`` and its later steps' config struct (``step_template``,
    ``step_fields``); the configs, the C++ and the cost stages of the whole map follow from them
    here."""

    step_template = ""  # the config struct of a later step: str.format of step_fields and link_configs' own

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
                core_t=self.first_core_t(),
                mac_t=exact_cpp(mac),
                out_view=chain.views[number].cpp(),
                **self.step_fields(step),
            )
        return text

    def frame_chain(self) -> Chain:
        """``chain()`` with its frame step taking the input stream's packs (``input_pack``) where
        they fit; a fused family's join ([x; h]) is read value by value."""
        chain = self.chain()
        pack = 1 if self.fused_recurrent else self.input_pack()
        return replace(chain, first=chain.first.packed(pack))

    def input_map_configs(self):
        chain = self.frame_chain()
        frame_mac, *link_macs = self.mac_types(chain)
        first = chain.first.config(
            f"config{self.index}_frame", "step 0", self.fold("step 0"), self.first_core_t(), exact_cpp(frame_mac)
        )
        return first + self.link_configs(chain, link_macs)

    def input_map_body(self):
        chain = self.frame_chain()
        reader = frame_reader(chain.first, self.index, io_stream=True)  # input_map's frame is a stream
        return chain.body(self.chain_comment, self.index, reader)

    def built_chain(self) -> Chain:
        return self.frame_chain()
