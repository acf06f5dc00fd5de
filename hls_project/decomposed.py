"""What the decomposed input maps (TT, HT, FDHT) share in C++: contraction steps chained as a
frame pipeline.

Every step is one ``nnet::mode_contract`` (``ModeStep``, a ``models.decomposition.ModeContraction``):
``out[l, j, p, a, e] = sum_{i, b} in[l, i, p, b, e] * core[i, b, a, j]``, its input consumed as it
arrives (a pack of values per iteration), each row's sums rounded while the next row accumulates,
so no frame and no intermediate tensor is ever stored. A ``StreamChain`` makes every step a
DATAFLOW process joined to the next by a FIFO of packs, so a frame takes the slowest step, not
their sum:

- TT and HT: over a whole call's frames (``input_maps``, ``call_input_map``), the last step
  writing ``nnet::lstm_call``'s zx FIFO, a call ahead of the recurrent half;
- FDHT (fused): one frame of ``[x_t; h_t-1]`` per ``input_map`` call, read a pack at a time by a
  ``join_reader``, the last step writing the frame's ``zx`` for the cell, which then gives h_t.

Each chain is described once (a family supplies its steps); its C++, its configs and its cost
``stages`` are all read from that description.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, fields, replace
from math import ceil, lcm

from hls_project.cost import Memory, Stage, fabric_products
from hls_project.sizing import exact_cpp, map_input_type, multiplier_limit, product_sum_type
from models.decomposition import ModeContraction

MAX_ITERATION_PRODUCTS = 512  # a StreamChain step's products per iteration: the stream packs stop there
# a stream's pack: up to this many times the values per cycle its consumer needs; the folding
# option STREAM_PACKS, narrowed by the folding pass when even the most folded design does not fit
RATE_HEADROOMS = (4, 2, 1)
STREAM_PACKS = "stream packs"


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

    def sums(self, name: str, mac_bits: int, shared: tuple) -> Memory:
        """acc (two rows of sums, ``mac_bits`` wide) banked along j and a by ``shared = (j_banks,
        a_banks)`` (cyclic), along p and e by ``acc_banks`` and ``trail_banks``."""
        j_banks, a_banks = shared
        banks = 2 * j_banks * a_banks * self.acc_banks * self.trail_banks
        return Memory(name, 2 * self.out_row, mac_bits, banks)

    def sum_banks(self, reuse_factor: int, mac_bits: int) -> tuple:
        """acc's banks along j and a, ``(j_banks, a_banks)``: an iteration adds into all n_out x
        rank_out of them for each of its (p, e), so each bank takes ``(n_out / j_banks) x (rank_out
        / a_banks)`` of its sums, at most ``reuse_factor`` (a bank's ports serve a read and a write
        every cycle of the II); an output pack's consecutive j and a stay in banks of their own (the
        last row's rounding at II 1). Of those, the banking whose acc takes the fewest LUTs, then
        flip-flops (a few deep banks of distributed RAM rather than many registers and their
        multiplexers, where the II leaves the ports time)."""
        out_j, _, out_a, _ = self.out_split
        shares = [
            (j_banks, a_banks)
            for j_banks in range(out_j, self.n_out + 1)
            for a_banks in range(out_a, self.rank_out + 1)
            if self.n_out % j_banks == 0
            and self.rank_out % a_banks == 0
            and (self.n_out // j_banks) * (self.rank_out // a_banks) <= reuse_factor
        ]

        def cost(shared):
            acc = self.sums("acc", mac_bits, shared)
            return acc.luts, acc.ffs

        return min(shares, key=cost)

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

    def config(self, name: str, comment: str, reuse_factor: int, types: tuple, fabric: bool, base: str = "") -> str:
        """The config struct ``name`` of this step: a ``nnet::mode_contract_config``, or ``base``
        (a family's struct derived from it); ``types``: ``(core_t, mac_t)``, the C++ name of the
        first and the FixedType of the second; ``fabric``: its products in LUTs (``fabric_products``)."""
        core_t, mac_t = types
        j_banks, a_banks = self.sum_banks(reuse_factor, mac_t.width)
        return MODE_STEP_TEMPLATE.format(
            name=name,
            base=base or "nnet::mode_contract_config",
            comment=comment,
            macs=self.macs,
            acc=2 * self.out_row,
            step=self,
            acc_banks=self.acc_banks,
            trail_banks=self.trail_banks,
            j_banks=j_banks,
            a_banks=a_banks,
            reuse_factor=reuse_factor,
            multiplier_limit=multiplier_limit(self.products, reuse_factor),
            core_t=core_t,
            mac_t=exact_cpp(mac_t),
            fabric=str(fabric).lower(),
        )

    def stage(self, number: int, reuse_factor: int, bits: tuple, mac_bits: int, memories: tuple, frames: int = 1):
        """The step's ``Stage`` per frame (``rows`` over ``frames`` frames): one pipeline of rows
        passes at II ``reuse_factor``, then the last row's rounding at II 1, its products in LUTs when narrow
        (``fabric_products``); ``bits``: (input, coefficient, output) widths; ``memories``: what it
        writes (a FIFO)."""
        in_bits, kernel_bits, out_bits = bits
        core = Memory(f"core (step {number})", self.core_words, kernel_bits, self.core_reads)
        acc = self.sums(f"acc (step {number})", mac_bits, self.sum_banks(reuse_factor, mac_bits))
        values = (  # an iteration's packs: registers
            Memory(f"input values (step {number})", self.pack_in, in_bits, self.pack_in),
            Memory(f"output values (step {number})", self.pack_out, out_bits, self.pack_out),
        )
        return Stage(
            f"step {number}" + (" (frame)" if number == 0 else ""),
            -(-self.rows * self.pass_iterations // frames),
            reuse_factor,
            multiplier_limit(self.products, reuse_factor),
            (in_bits, kernel_bits),
            mac_bits,
            (core, acc, *values, *memories),
            products=self.products,
            reads=((core.name, self.core_reads), (acc.name, self.acc_reads)),
            fold=f"step {number}",
            fill=self.pass_iterations,
            tail=-(-self.outputs // frames),
            fabric=fabric_products(in_bits, kernel_bits),
        )


def stream_steps(steps: list, frame_pack: int, headroom: int = RATE_HEADROOMS[0]) -> tuple:
    """A ``StreamChain``'s steps with their packs: the first takes the frame's (``frame_pack``)
    where it tiles its rows; each stream between two steps the widest pack of at most
    ``headroom`` times the values per cycle its consumer must take when the frame arrives a pack
    per cycle (so the folding pass finds a reuse factor near that rate, P / RF; a smaller headroom
    banks the consumer's sums less wide) and of ``MAX_ITERATION_PRODUCTS`` products per iteration
    (``ModeStep.stream_pack``); the last step writes a value at a time (zx)."""
    chosen = [steps[0].packed(frame_pack)]
    frame_values = steps[0].rows * steps[0].in_row
    for step in steps[1:]:
        rate = step.rows * step.in_row / frame_values * chosen[0].pack_in
        most = min(MAX_ITERATION_PRODUCTS // (step.n_out * step.rank_out), ceil(headroom * rate))
        pack = chosen[-1].stream_pack(step, max(1, most))
        chosen[-1] = replace(chosen[-1], pack_out=pack)
        chosen.append(replace(step, pack_in=pack))
    return tuple(chosen)


def over_frames(step, frames: int) -> ModeStep:
    """The ``ModeStep`` of a family's schedule step (a ``ModeContraction``: TT's and the HT
    streaming order's) over ``frames`` frames: its rows those of every frame."""
    shape = {field.name: getattr(step, field.name) for field in fields(ModeContraction)}
    return ModeStep(**{**shape, "rows": step.rows * frames})


MODE_STEP_TEMPLATE = """// {comment}: ({step.rows}, {step.n_in}, {step.n_right}, {step.rank_in}, {step.trail}) -> \
({step.rows}, {step.n_out}, {step.n_right}, {step.rank_out}, {step.trail}), {macs} MACs, {acc} accumulators
struct {name} : {base} {{
    static const unsigned rows = {step.rows}, n_in = {step.n_in}, n_right = {step.n_right}, rank_in = {step.rank_in};
    static const unsigned n_out = {step.n_out}, rank_out = {step.rank_out}, trail = {step.trail};
    static const unsigned pack_in = {step.pack_in}, pack_out = {step.pack_out};
    static const unsigned acc_banks = {acc_banks}, trail_banks = {trail_banks};
    static const unsigned j_banks = {j_banks}, a_banks = {a_banks};
    static const unsigned reuse_factor = {reuse_factor};
    static const unsigned multiplier_limit = {multiplier_limit};
    static const bool fabric_products = {fabric};
    typedef {core_t} core_t;
    typedef {mac_t} mac_t;
}};
"""


def frame_reader(step: ModeStep, index: int, io_stream: bool, fused: bool) -> str:
    """The reader of a chain's frame: a fused family's ``[x; h; 0...]``, ``pack_in`` values per
    read (``join_reader``); else the input stream's packs (``input_t``, the input quantizer) where
    one tiles a row of the step, or value by value (``join_reader``; an io_parallel call's array
    through ``array_reader``)."""
    if fused:
        return f"nnet::join_reader<data_T, config{index}, {step.pack_in}>"
    if not io_stream:
        return "nnet::array_reader<input_t>"
    return (
        f"nnet::pack_reader<input_t, {step.pack_in}>"
        if step.pack_in > 1
        else f"nnet::join_reader<data_T, config{index}>"
    )


@dataclass(frozen=True)
class StreamChain:
    """A family's whole input map as a frame pipeline: every step a ``ModeStep`` and a DATAFLOW
    process of its own, joined to the next by a FIFO of its output packs (``pack_out``, a whole
    row deep, so a row's rounding never waits). A frame takes the slowest step, not their sum, and
    nothing is stored but each step's two rows of sums. Step k's config is
    ``config<index>_<prefix><k>``, a ``base`` (the family's ``nnet::mode_contract_config``).

    Over a call's ``frames`` (``rows`` = a step's rows per frame x ``frames``; TT, HT) the first step
    reads the call's ``data`` and the last writes the zx FIFO a value at a time (``input_maps``);
    ``fused`` (FDHT), one frame per ``input_map`` call: the first reads ``[x; h; 0...]`` and the
    last writes the frame's ``zx`` array."""

    steps: tuple
    cores: tuple
    frames: int
    prefix: str
    base: str
    fused: bool = False

    @property
    def terms(self) -> list:
        """Products per output of every step."""
        return [step.terms for step in self.steps]

    def fifo_depth(self, number: int) -> int:
        """Packs of the FIFO after step ``number``: one row of its outputs (at least 2)."""
        return max(2, self.steps[number].outputs)

    def configs(self, index: int, reuse_factors: list, core_t: str, mac_types: list, bits: tuple) -> str:
        """The steps' config structs; ``mac_types``: every step's exact sum (FixedType); ``bits``: the
        (frame's input, kernel, accumulator) widths."""
        in_bits, kernel_bits, acc_bits = bits
        return "".join(
            step.config(
                f"config{index}_{self.prefix}{number}",
                f"step {number}",
                reuse_factor,
                (core_t, mac_t),
                fabric_products(in_bits if number == 0 else acc_bits, kernel_bits),
                self.base,
            )
            for number, (step, reuse_factor, mac_t) in enumerate(zip(self.steps, reuse_factors, mac_types, strict=True))
        )

    def body(self, comment: str, index: int, reader: str) -> str:
        """The body of the family's ``input_maps`` (or, ``fused``, its ``input_map``): the steps as
        one DATAFLOW, the first reading the call's input ``data`` (the frame's ``[x; h]``) with
        ``reader``, the last writing ``zx``."""
        lines = [
            f"        // {comment}",
            "        #pragma HLS DATAFLOW",
            "        static const state_t no_state[n_state] = {}; // the steps that read no h",
        ]
        streams = [f"s{number}" for number in range(1, len(self.steps))]
        for number, name in enumerate(streams):
            lines.append(f'        hls::stream<nnet::array<accum_t, {self.steps[number].pack_out}>> {name}("{name}");')
            lines.append(f"        NNET_STREAM_DEPTH({name}, {self.fifo_depth(number)});")
        calls = []
        for number, (step, core) in enumerate(zip(self.steps, self.cores, strict=True)):
            first, last = number == 0, number == len(self.steps) - 1
            source = ("frame, h" if self.fused else "data, no_state") if first else f"{streams[number - 1]}, no_state"
            step_reader = reader if first else f"nnet::pack_reader<accum_t, {step.pack_in}>"
            if not last:
                writer = f"nnet::pack_writer<nnet::array<accum_t, {step.pack_out}>>"
            else:
                writer = f"nnet::{'array' if self.fused else 'value'}_writer<accum_t>"
            sink = "zx" if last else streams[number]
            kernel = f"nnet::mode_contract<config{index}_{self.prefix}{number}, config{index}, {step_reader}, {writer}>"
            calls.append(f"            ({kernel}({source}, {sink}, {core}))")
        lines += ["        NNET_DATAFLOW(", ",\n".join(calls) + ");"]
        return "\n".join(lines)

    def stages(self, reuse_factors: list, bits: tuple, mac_bits: list) -> list:
        """One ``Stage`` per step (per frame), each writing its FIFO (the last: the zx FIFO of
        ``4 * n_state`` values, ``nnet::lstm_call``'s; ``fused``: the frame's zx, which the cell's
        stages count); ``bits``: as ``configs``."""
        in_bits, kernel_bits, acc_bits = bits
        stages = []
        for number, step in enumerate(self.steps):
            last = number == len(self.steps) - 1
            depth = step.out_row if last else self.fifo_depth(number)
            name = "pre-activation FIFO" if last else f"FIFO {number + 1}"
            fifo = () if last and self.fused else (Memory(name, depth, acc_bits * step.pack_out),)
            bits = (in_bits if number == 0 else acc_bits, kernel_bits, acc_bits)
            stages.append(step.stage(number, reuse_factors[number], bits, mac_bits[number], fifo, self.frames))
        return stages


class StreamedInputMap:
    """Mixin of an ``LSTMFamilyLayer`` whose input map is a ``StreamChain`` (``stream_chain()``): a
    folding stage per step (``step k``; 0: the frame step), each step's exact sum type, and the
    map's configs, C++ (``input_maps``, a whole call, or a fused family's ``input_map``) and cost
    stages, all following from the chain."""

    chain_comment = ""
    pipelined_input_map = True

    @property
    def call_input_map(self) -> bool:
        return not self.fused_recurrent

    @abstractmethod
    def schedule_steps(self) -> list:
        """The family's contraction schedule, a ``ModeContraction`` per step."""

    chain_prefix = ""  # step k's config is config<index>_<chain_prefix><k>
    chain_base = "nnet::mode_contract_config"  # the family's config struct of a step

    @staticmethod
    @abstractmethod
    def step_core(step) -> int:
        """The index of the core a schedule step contracts."""

    def input_map_folding_stages(self) -> list:
        return [f"step {number}" for number in range(len(self.schedule_steps()))]

    def folding_options(self) -> dict:
        return {STREAM_PACKS: RATE_HEADROOMS}

    def step_reuse_factors(self) -> list:
        folding = self.folding()
        return [folding[stage] for stage in self.input_map_folding_stages()]

    def mac_types(self, chain: StreamChain) -> list:
        """The exact sum type of every step of ``chain``: the frame step's (products of the map's
        input), then the later steps' (of the accumulator)."""
        types, (first, *later) = self.lstm_types, chain.terms
        frame = product_sum_type(first, map_input_type(types, self.fused_recurrent), types.kernel)
        return [frame] + [product_sum_type(terms, types.accumulator, types.kernel) for terms in later]

    def first_core_t(self) -> str:
        return self.get_weights("core_0").type.name

    def join_pack(self) -> int:
        """Values of ``[x; h; 0...]`` a fused map reads at once: the most, up to the input stream's
        pack, that tile the first step's rows and divide both x and the join (1 when not fused)."""
        if not self.fused_recurrent:
            return 1
        first, n_in, n_join = self.schedule_steps()[0], self.get_attr("n_in"), self.n_join()
        fits = [
            pack
            for pack in range(1, self.input_pack() + 1)
            if n_in % pack == 0 and n_join % pack == 0 and over_frames(first, 1).input_split(pack)
        ]
        return max(fits)

    def stream_chain(self) -> StreamChain:
        """The schedule over a call's frames (one when fused), packs chosen (``stream_steps``)."""
        schedule, cores = self.schedule_steps(), self.weight_vars("input_map")
        frames = 1 if self.fused_recurrent else self.get_attr("n_timesteps")
        frame_pack = self.join_pack() if self.fused_recurrent else self.input_pack()
        headroom = self.folding_option(STREAM_PACKS)
        steps = stream_steps([over_frames(step, frames) for step in schedule], frame_pack, headroom)
        step_cores = tuple(cores[self.step_core(step)] for step in schedule)
        return StreamChain(steps, step_cores, frames, self.chain_prefix, self.chain_base, self.fused_recurrent)

    def chain_bits(self) -> tuple:
        """The widths of the map's input (the frame, or [x; h]), its kernel and its accumulator."""
        types = self.lstm_types
        return map_input_type(types, self.fused_recurrent).width, types.kernel.width, types.accumulator.width

    def input_map_configs(self):
        chain = self.stream_chain()
        return chain.configs(
            self.index, self.step_reuse_factors(), self.first_core_t(), self.mac_types(chain), self.chain_bits()
        )

    def input_map_body(self):
        chain = self.stream_chain()
        reader = frame_reader(chain.steps[0], self.index, self.io_stream(), self.fused_recurrent)
        return chain.body(self.chain_comment, self.index, reader)

    def input_map_stages(self):
        chain = self.stream_chain()
        return chain.stages(self.step_reuse_factors(), self.chain_bits(), [mac.width for mac in self.mac_types(chain)])
