"""Hardware cost estimates, computed from the same schedule objects that generate each kernel's config.

A kernel is a list of ``Stage``: one pipelined loop nest each (trip count, II, multipliers and
their operand widths, the memories it owns). From those:

- cycles = iterations x II (pipeline fill is not counted: a few cycles per loop);
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
from math import ceil

REGISTER_BITS = 64  # a bank this small is registers
LUTRAM_BITS = 2048  # a bank this small is distributed RAM (64 bits per LUT)
LUT_PRODUCT_BITS = 10  # both operands this narrow: the product is built from LUTs
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


@dataclass(frozen=True)
class Stage:
    """One pipelined loop nest: ``iterations`` at ``ii`` cycles each, ``multipliers`` products of
    ``product_bits`` operands (summed into ``sum_bits``-wide adders), owning ``memories``."""

    name: str
    iterations: int
    ii: int = 1
    multipliers: int = 0
    product_bits: tuple = (0, 0)
    sum_bits: int = 0
    memories: tuple = field(default_factory=tuple)

    @property
    def cycles(self) -> int:
        return self.iterations * self.ii

    def resources(self, part: Part) -> dict:
        dsp_each = part.dsp_per_product(*self.product_bits) if self.multipliers else 0
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
    then a call starts every ``call_interval`` = max(ahead, rest) cycles instead of their sum.
    """

    name: str
    kind: str
    stages: tuple
    calls: int = 1  # per model call: frames for an LSTM layer, 1 for a layer after it
    macs: int = 0  # multiply-accumulates per model call
    dense_macs: int = 0  # those of the uncompressed layer (0: the same as macs)
    ahead_stages: int = 0  # leading stages that run one call ahead of the others (0: none)

    def _halves(self) -> tuple:
        """Cycles of one call of the ahead process and of the rest."""
        cycles = [stage.cycles for stage in self.stages]
        return sum(cycles[: self.ahead_stages]), sum(cycles[self.ahead_stages :])

    @property
    def call_interval(self) -> int:
        """Cycles from one call (an LSTM's frame) to the next, in steady state."""
        ahead, rest = self._halves()
        return max(ahead, rest) if self.ahead_stages else ahead + rest

    @property
    def cycles_per_call(self) -> int:
        """All ``calls``: one every ``call_interval``, plus the faster half of the first (the fill)."""
        ahead, rest = self._halves()
        return self.calls * self.call_interval + (min(ahead, rest) if self.ahead_stages else 0)

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


def dense_stages(name: str, n_in: int, n_out: int, reuse_factor: int, in_bits: int, weight_bits: int, acc_bits: int):
    """hls4ml's Dense (Resource strategy, reuse factor R; Latency when R = 1): ``n_in * n_out / R``
    multipliers, one call every R cycles, the weights split into ``n_in * n_out / R`` banks."""
    multipliers = ceil(n_in * n_out / reuse_factor)
    weights = Memory(f"{name}.weights", n_in * n_out, weight_bits, multipliers)
    return (Stage(name, 1, reuse_factor, multipliers, (in_bits, weight_bits), acc_bits, (weights,)),)
