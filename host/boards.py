"""The boards the flow builds for: one record each (standard library only; the board package ships it).

Everything the flow knows about a board is here: the part hls4ml builds for, what the ``.hwh``
calls it, its resources and DSP multiplier (``overlay.estimate``), the HLS clock, the width of the
accelerator top's AXI stream and of the memory side the stream is moved to and from (the Zynq's AXI
DMA and PS port, the Alveo kernel's ``m_axi``), the Vitis platform and the name PYNQ reports.
``overlay build`` writes these widths into hls4ml's project (``overlay.board_widths``) and
``tests/test_boards.py`` reads them back from the generated files.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("zynq", "alveo")


@dataclass(frozen=True)
class Board:
    """One board.

    ``part``: the full part string, as hls4ml's ``supported_boards.json`` has it. ``hwh_device`` /
    ``hwh_package``: the part as a Vivado ``.hwh`` names it (``<SYSTEMINFO DEVICE=... PACKAGE=...>``;
    None on Alveo, which has no ``.hwh``). Resources are the part's totals. ``beat_bits``: the
    accelerator top's stream (``ap_axiu`` data, the DMA's stream ports), which must be
    ``host.protocol.BEAT_BITS``. ``memory_bits``: Zynq, the AXI DMA's memory-map data width and the
    PS high-performance port it writes through; Alveo, the RTL kernel's ``m_axi`` data width.
    ``pynq_board``: the name PYNQ reports on the board (``$BOARD`` on PYNQ images), None on Alveo
    (PYNQ reports the installed shell there).
    """

    name: str
    kind: str
    part: str
    hwh_device: str | None
    hwh_package: str | None
    # the part's resources: overlay.estimate builds hls_project.cost.Part from these fields (the
    # same names there; this module stays free of hls_project, which the board does not have)
    dsp: int
    bram36: int
    lut: int
    ff: int
    dsp_a_bits: int  # signed operand widths of one DSP multiply
    dsp_b_bits: int
    clock_mhz: float
    beat_bits: int
    memory_bits: int
    platform: str | None = None  # the Vitis platform an Alveo kernel is linked for
    pynq_board: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"board {self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        # the AXI DMA's memory-map side is at least as wide as its stream; hls4ml's Alveo kernel
        # connects its m_axi data straight to the top's stream (no width converter)
        if self.memory_bits < self.beat_bits or (self.kind == "alveo" and self.memory_bits != self.beat_bits):
            raise ValueError(
                f"board {self.name}: memory_bits {self.memory_bits} cannot carry {self.beat_bits}-bit beats "
                f"({'equal widths on Alveo' if self.kind == 'alveo' else 'at least the beat width on a Zynq'})"
            )


PYNQ_Z2 = Board(
    name="pynq-z2",
    kind="zynq",
    part="xc7z020clg400-1",
    hwh_device="7z020",
    hwh_package="clg400",
    dsp=220,
    bram36=140,
    lut=53_200,
    ff=106_400,
    dsp_a_bits=25,  # DSP48E1
    dsp_b_bits=18,
    clock_mhz=100,  # the block design clocks the IP from the PS's FCLK_CLK0
    beat_bits=64,
    memory_bits=64,  # S_AXI_HP0: 32 or 64 bits
    pynq_board="Pynq-Z2",
)
ZCU102 = Board(
    name="zcu102",
    kind="zynq",
    part="xczu9eg-ffvb1156-2-e",
    hwh_device="xczu9eg",
    hwh_package="ffvb1156",
    dsp=2_520,
    bram36=912,
    lut=274_080,
    ff=548_160,
    dsp_a_bits=27,  # DSP48E2
    dsp_b_bits=18,
    clock_mhz=100,  # the PS's pl_clk0 (~100 MHz)
    beat_bits=64,
    memory_bits=64,  # S_AXI_HPC0_FPD: 32, 64 or 128 bits
    pynq_board="ZCU102",
)
ALVEO_U250 = Board(
    name="alveo-u250",
    kind="alveo",
    part="xcu250-figd2104-2L-e",
    hwh_device=None,
    hwh_package=None,
    dsp=12_288,
    bram36=2_688,
    lut=1_728_000,
    ff=3_456_000,
    dsp_a_bits=27,
    dsp_b_bits=18,
    clock_mhz=300,  # the Vitis platform's default kernel clock
    beat_bits=64,
    # the card's memory takes 512-bit m_axi words; hls4ml's kernel feeds its m_axi data straight
    # into the top's stream, so it stays at the beat width until the kernel converts widths
    memory_bits=64,
    platform="xilinx_u250_xdma_201830_2",
)

BOARD_RECORDS = (PYNQ_Z2, ZCU102, ALVEO_U250)
BOARDS = tuple(record.name for record in BOARD_RECORDS)  # the names the command lines take


def board(name: str) -> Board:
    """The record of the board called ``name``; a ``ValueError`` naming the known boards otherwise."""
    for record in BOARD_RECORDS:
        if record.name == name:
            return record
    raise ValueError(f"unknown board {name!r} (known: {', '.join(BOARDS)})")
