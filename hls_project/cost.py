"""Hardware cost estimates, computed from the same schedule objects that generate each kernel's config.

A kernel is a list of ``Stage``: one pipelined loop nest each (trip count, II, multipliers and
their operand widths, the memories it owns and how often an iteration reads them). From those:

- II: the pragma's, or higher where the memory ports cannot serve the iteration's reads (a bank
  has ``PORTS`` ports: k reads of one array per iteration over b banks need ceil(k / (2 b)) cycles);
- cycles = iterations x II, plus the pipeline's fill and drain (depth - II) every time the loop
  is entered (``entries``: a pipelined loop inside an outer loop refills on every outer iteration);
  the depth: memory read and write, the multiplier's latency, an adder tree over the products;
- DSPs = multipliers x DSP slices per product, by operand width (``Part.dsp_per_product``: a
  DSP48E1 multiplies 25 x 18 signed bits, a DSP48E2 27 x 18; products of two operands of at most
  ``LUT_PRODUCT_BITS`` bits go to LUTs, as HLS does for small products);
- memory per bank: flip-flops up to ``REGISTER_BITS`` bits, LUTRAM up to ``LUTRAM_BITS`` bits,
  else BRAM18 in the cheapest aspect ratio (16K x 1 ... 512 x 36); BRAM36 = BRAM18 / 2;
- LUT and FF: a rough figure (a LUT per product bit for LUT multipliers, an adder and a register
  per multiplier, the bank multiplexers, a fixed control overhead per stage).

Every figure here is an estimate from reading our own schedule, not a tool's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil, log2

REGISTER_BITS = 64  # a bank this small is registers
PORTS = 2  # ports of a block or distributed RAM bank (true dual port)
MEMORY_DEPTH = 2  # a pipelined iteration's read and write (cycles; rough)
DSP_PRODUCT_DEPTH = 3  # a DSP48's registered multiply (MREG, PREG)
LUT_PRODUCT_DEPTH = 1  # a LUT product, one register
LUTRAM_BITS = 2048  # a bank this small is distributed RAM (64 bits per LUT)
LUT_PRODUCT_BITS = 10  # both operands this narrow: the product is built from LUTs
FABRIC_PRODUCT_BITS = 12  # both this narrow: nnet::mode_contract binds its products to LUTs (multiplier<true>)
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
STAGE_CONTROL_LUTS = 40  # loop counters, FSM and handshakes of one pipelined loop (rough)


@dataclass(frozen=True)
class Part:
    """The resources of an FPGA part and its DSP slice's multiplier."""

    name: str
    dsp: int
    bram36: int
    lut: int
    ff: int
    dsp_a_bits: int  # signed operand widths of one DSP multiply
    dsp_b_bits: int

    def dsp_per_product(self, a_bits: int, b_bits: int) -> int:
        """DSP slices of one ``a_bits x b_bits`` product (0 when LUTs build it)."""
        if max(a_bits, b_bits) <= LUT_PRODUCT_BITS:
            return 0
        a_bits, b_bits = max(a_bits, b_bits), min(a_bits, b_bits)
        return min(
            ceil(a_bits / self.dsp_a_bits) * ceil(b_bits / self.dsp_b_bits),
            ceil(b_bits / self.dsp_a_bits) * ceil(a_bits / self.dsp_b_bits),
        )

    def available(self) -> dict:
        return {"dsp": self.dsp, "bram36": self.bram36, "lut": self.lut, "ff": self.ff}


@dataclass(frozen=True)
class Memory:
    """An on-chip array: ``words`` of ``width`` bits in ``banks`` equal banks."""

    name: str
    words: int
    width: int
    banks: int = 1

    @property
    def bank_words(self) -> int:
        return ceil(self.words / self.banks)

    @property
    def kind(self) -> str:
        bits = self.bank_words * self.width
        return "registers" if bits <= REGISTER_BITS else "lutram" if bits <= LUTRAM_BITS else "bram"

    @property
    def bram18(self) -> int:
        if self.kind != "bram":
            return 0
        per_bank = min(ceil(self.bank_words / depth) * ceil(self.width / width) for depth, width in BRAM18_SHAPES)
        return per_bank * self.banks

    @property
    def luts(self) -> int:
        """LUTs of distributed RAM (64 x 1 bit per LUT) plus the bank multiplexer."""
        ram = ceil(self.bank_words / 64) * self.width * self.banks if self.kind == "lutram" else 0
        return ram + (self.width * self.banks // 2 if self.banks > 1 else 0)

    @property
    def ffs(self) -> int:
        return self.words * self.width if self.kind == "registers" else 0

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "words": self.words,
            "width": self.width,
            "banks": self.banks,
            "kind": self.kind,
            "bram18": self.bram18,
        }


@dataclass(frozen=True)
class Stage:
    """One pipelined loop nest: ``iterations`` at ``ii`` cycles each (the pragma's; ``achieved_ii``
    is what the ports allow), ``multipliers`` products of ``product_bits`` operands (summed into
    ``sum_bits``-wide adders), owning ``memories``; ``products``: products per iteration (0: one per
    multiplier and cycle); ``reads``: ``(memory name, reads per iteration)`` of the arrays the
    iteration reads more than once; ``entries``: times the pipeline is entered per call; ``fold``:
    the layer's folding stage whose reuse factor sets ``ii`` and ``multipliers`` ("": none);
    ``fill``: of a ``nnet::mode_contract``, its first pass (its first row's outputs leave after it);
    ``tail``: its last row's rounding, a loop of its own at II 1, after its last input
    (``pipeline_latency``); ``fabric``: its products in LUTs."""

    name: str
    iterations: int
    ii: int = 1
    multipliers: int = 0
    product_bits: tuple = (0, 0)
    sum_bits: int = 0
    memories: tuple = field(default_factory=tuple)
    products: int = 0
    reads: tuple = field(default_factory=tuple)
    entries: int = 1
    fold: str = ""
    fill: int = 0  # a process streaming to the next: iterations before its first output
    tail: int = 0  # iterations of a loop at II 1 after this one (a mode_contract's last rounding)
    fabric: bool = False  # its products bound to LUTs whatever their width (FABRIC_PRODUCT_BITS)

    def memory(self, name: str) -> Memory:
        return next(memory for memory in self.memories if memory.name == name)

    @property
    def port_ii(self) -> int:
        """The II the memory ports allow: every bank serves ``PORTS`` reads per cycle."""
        return max((ceil(count / (PORTS * self.memory(name).banks)) for name, count in self.reads), default=1)

    @property
    def achieved_ii(self) -> int:
        return max(self.ii, self.port_ii)

    @property
    def products_per_iteration(self) -> int:
        return self.products or self.multipliers * self.ii

    @property
    def depth(self) -> int:
        """Cycles from an iteration's start to its result (an estimate: read, multiply, adder tree, write)."""
        if not self.multipliers:
            return MEMORY_DEPTH
        product = LUT_PRODUCT_DEPTH if self.narrow_products() else DSP_PRODUCT_DEPTH
        return MEMORY_DEPTH + product + ceil(log2(self.multipliers + 1))

    @property
    def cycles(self) -> int:
        """Iterations at the achieved II and the tail at II 1, plus fill and drain on every entry."""
        ii = self.achieved_ii
        return self.iterations * ii + self.tail + self.entries * max(self.depth - ii, 0)

    def narrow_products(self) -> bool:
        """Products of two operands of at most ``LUT_PRODUCT_BITS`` (or bound to the fabric): built from LUTs."""
        return self.fabric or max(self.product_bits) <= LUT_PRODUCT_BITS

    def as_dict(self, part: Part) -> dict:
        return {
            "name": self.name,
            "trips": self.iterations,
            "ii": self.achieved_ii,
            "pragma_ii": self.ii,
            "depth": self.depth,
            "entries": self.entries,
            "tail": self.tail,
            "cycles": self.cycles,
            "fold": self.fold,
            "multipliers": self.multipliers,
            "products_per_iteration": self.products_per_iteration if self.multipliers else 0,
            "product_bits": list(self.product_bits),
            "reads": [list(read) for read in self.reads],
            "memories": [memory.as_dict() for memory in self.memories],
            **self.resources(part),
        }

    def resources(self, part: Part) -> dict:
        dsp_each = part.dsp_per_product(*self.product_bits) if self.multipliers and not self.fabric else 0
        lut_products = 0 if dsp_each else self.multipliers * self.product_bits[0] * self.product_bits[1]
        adders = self.multipliers * self.sum_bits
        return {
            "dsp": self.multipliers * dsp_each,
            "bram18": sum(memory.bram18 for memory in self.memories),
            "lut": STAGE_CONTROL_LUTS + lut_products + adders + sum(memory.luts for memory in self.memories),
            "ff": 2 * adders + 32 + sum(memory.ffs for memory in self.memories),
        }


@dataclass(frozen=True)
class LayerEstimate:
    """A layer (or the accelerator top): its stages, ``calls`` times per model call.

    The stages run one after another, unless the first ``ahead_stages`` of them are a DATAFLOW
    process of their own, one call ahead of the rest (an LSTM's input half, ``nnet::lstm_call``):
    then a call starts every ``call_interval`` = max(ahead, rest) cycles instead of their sum, and
    the first ``independent_stages`` of the rest (an LSTM's recurrent map, which reads h, not the
    ahead process's output) run while the ahead process works on the same call. With
    ``ahead_pipeline`` the ahead stages are processes of their own too, each streaming to the next
    (a decomposed map's frame pipeline): the ahead half takes the slowest of them per call. The
    first ``pipeline_stages`` of the stages after the ahead ones are such a pipeline within one
    call (a fused family's map, then its cell): they take the pipeline's latency
    (``pipeline_latency``).
    """

    name: str
    kind: str
    stages: tuple
    calls: int = 1  # per model call: frames for an LSTM layer, 1 for a layer after it
    macs: int = 0  # multiply-accumulates per model call
    dense_macs: int = 0  # those of the uncompressed layer (0: the same as macs)
    ahead_stages: int = 0  # leading stages that run one call ahead of the others (0: none)
    independent_stages: int = 0  # stages after those that do not wait for them (the recurrent map)
    recurrent: bool = False  # a call needs the previous call's state (an LSTM's frame needs h_t-1)
    ahead_pipeline: bool = False  # the ahead stages are a pipeline of processes (the slowest sets their pace)
    pipeline_stages: int = 0  # leading stages of the rest that are a pipeline of processes within a call
    fastest_recurrence: int = 0  # cycles of the recurrence with every stage on it at reuse factor 1 (0: this one's)
    folding: dict = field(default_factory=dict)  # folding stage -> reuse factor (Stage.fold)

    @property
    def recurrence_floor(self) -> int:
        """Cycles of the recurrence no folding of this layer goes below (its stages at reuse factor 1)."""
        return self.fastest_recurrence or self.recurrence_cycles

    @property
    def recurrence_cycles(self) -> int:
        """Cycles of one call's path from h_t-1 to h_t: the stages after the ahead process (an LSTM's
        recurrent half; every stage when nothing runs ahead, as in a fused family). 0 for a layer
        without a recurrence."""
        return self._halves()[1] if self.recurrent else 0

    def critical_stages(self) -> tuple:
        """The stages of the half that sets ``call_interval`` (all of them when nothing runs ahead)."""
        if not self.ahead_stages:
            return self.stages
        ahead, rest = self._halves()
        return self.stages[: self.ahead_stages] if ahead >= rest else self.stages[self.ahead_stages :]

    def _halves(self) -> tuple:
        """Cycles of one call of the ahead process (or pipeline) and of the rest."""
        cycles = [stage.cycles for stage in self.stages]
        ahead = cycles[: self.ahead_stages]
        rest = self.pipeline_cycles + sum(cycles[self.ahead_stages + self.pipeline_stages :])
        return (max(ahead) if self.ahead_pipeline else sum(ahead)) if ahead else 0, rest

    @property
    def pipeline_cycles(self) -> int:
        """Cycles of one call through the ``pipeline_stages`` (their ``pipeline_latency``; 0: none)."""
        return pipeline_latency(self.stages[self.ahead_stages : self.ahead_stages + self.pipeline_stages])

    @property
    def call_interval(self) -> int:
        """Cycles from one call (an LSTM's frame) to the next, in steady state."""
        ahead, rest = self._halves()
        return max(ahead, rest) if self.ahead_stages else ahead + rest

    @property
    def interval_per_call(self) -> int:
        """Cycles from one model call to the next in steady state, when calls follow each other
        without a handshake (the free-running accelerator top): ``calls`` frames, one every
        ``call_interval``, the ahead process already on the next call while the rest finishes."""
        return self.calls * self.call_interval

    @property
    def cycles_per_call(self) -> int:
        """All ``calls`` through the two processes: the ahead one's last stage streams each call's
        results into the FIFO as the rest reads them (the send and the preactivation run in step),
        so the rest runs its independent stages, then the others from when that stage starts."""
        ahead, rest = self._halves()
        if not self.ahead_stages:
            return self.calls * (ahead + rest)
        first = self.ahead_stages + self.independent_stages
        independent = sum(stage.cycles for stage in self.stages[self.ahead_stages : first])
        streamed = self.stages[self.ahead_stages - 1].cycles
        sent = done = 0
        for _ in range(self.calls):
            sent += ahead
            done = max(done + independent, sent - streamed) + rest - independent
        return done

    @property
    def effective_macs_per_cycle(self) -> float:
        """Dense-equivalent multiply-accumulates per cycle: the uncompressed layer's work over our cycles."""
        return (self.dense_macs or self.macs) / max(self.cycles_per_call, 1)

    def resources(self, part: Part) -> dict:
        total = {"dsp": 0, "bram18": 0, "lut": 0, "ff": 0}
        for stage in self.stages:
            for key, value in stage.resources(part).items():
                total[key] += value
        total["bram36"] = total.pop("bram18") / 2
        return total


def fabric_products(a_bits: int, b_bits: int) -> bool:
    """Whether ``nnet::mode_contract`` binds its ``a_bits x b_bits`` products to LUTs."""
    return max(a_bits, b_bits) <= FABRIC_PRODUCT_BITS


def pipeline_latency(stages) -> int:
    """Cycles of one call through a pipeline of processes, each streaming to the next (0 for
    none): a process starts when its producer's first outputs are out (``Stage.fill``), and ends
    neither before its own cycles have run from then, nor before its ``tail`` after its producer
    ends. The slowest process's cycles plus the others' fill and tail."""
    start = end = fill = 0
    for stage in stages:
        start += fill
        end = max(start + stage.cycles, end + stage.tail)
        fill = stage.fill * stage.achieved_ii
    return end


def dense_stages(name: str, n_in: int, n_out: int, reuse_factor: int, in_bits: int, weight_bits: int, acc_bits: int):
    """hls4ml's Dense (Resource strategy, reuse factor R; Latency when R = 1): ``n_in * n_out / R``
    multipliers, one call every R cycles, the weights split into ``n_in * n_out / R`` banks."""
    multipliers = ceil(n_in * n_out / reuse_factor)
    weights = Memory(f"{name}.weights", n_in * n_out, weight_bits, multipliers)
    return (Stage(name, 1, reuse_factor, multipliers, (in_bits, weight_bits), acc_bits, (weights,), n_in * n_out),)
