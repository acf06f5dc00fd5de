"""Mock boards under the real pynq 3.1.2 (run in ``.venv-pynq``): devices at the lowest level
pynq's drivers touch (registers through ``REGISTER_RW``, buffers through ``allocate``), whose
accelerator runs the overlay's emulator library (the same C++ as the bitstream).

``derived_hwh``: the real ``resizer.hwh`` that pynqmetadata ships (a PYNQ-Z1/Z2 design with an
AXI DMA), with the smallest edit that puts our IP in it: the ``FULLNAME`` of ``axi_dma_0`` and
of ``resize_accel_0`` moved under ``/hier_0/`` (hls4ml's design.tcl groups the DMA and the
accelerator into ``hier_0``) and ``resize_accel_0``'s VLNV replaced by our top's. Nothing else
changes (``resize_accel_0`` keeps its AXI-Lite port, which our ``ap_ctrl_none`` top does not
have). It is a test fixture derived by string replacement, not a Vivado output.
"""

from __future__ import annotations

import ctypes
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pynq
from pynq.buffer import PynqBuffer

from host.manifest import Manifest
from host.pynq_driver import ACCELERATOR_VLNV, AP_CTRL, FIFO_IN, FIFO_OUT, LENGTH_IN, LENGTH_OUT

MM2S_CONTROL, MM2S_STATUS, MM2S_ADDRESS, MM2S_LENGTH = 0x00, 0x04, 0x18, 0x28
S2MM_CONTROL, S2MM_STATUS, S2MM_ADDRESS, S2MM_LENGTH = 0x30, 0x34, 0x48, 0x58
HALTED, IDLE, SOFT_RESET = 0x1, 0x2, 0x4
PLL_REGISTERS = (0xF8000100, 0xF8000104, 0xF8000108)  # ARM, DDR, IO PLL control
HWH_EDITS = [
    ('FULLNAME="/axi_dma_0"', 'FULLNAME="/hier_0/axi_dma_0"'),
    ('FULLNAME="/resize_accel_0"', 'FULLNAME="/hier_0/resize_accel_0"'),
    ('VLNV="xilinx.com:hls:resize_accel:1.0"', f'VLNV="{ACCELERATOR_VLNV}"'),
]


def real_hwh() -> Path:
    spec = importlib.util.find_spec("pynqmetadata")
    return Path(spec.submodule_search_locations[0]) / "tests" / "hwhs" / "resizer.hwh"


def derived_hwh(target: Path, more_edits=()) -> Path:
    """``real_hwh()`` with ``HWH_EDITS`` and ``more_edits`` applied (each exactly once), written
    to ``target``."""
    text = real_hwh().read_text()
    for old, new in [*HWH_EDITS, *more_edits]:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    Path(target).write_text(text)
    return Path(target)


class EmulatedTop:
    """The overlay's accelerator top (``accel_transfer`` of its emulator library)."""

    def __init__(self, emulator: Path, weights_dir: Path):
        self.lib = ctypes.CDLL(str(emulator))
        beats = ctypes.POINTER(ctypes.c_uint64)
        self.lib.accel_transfer.argtypes = [beats, ctypes.c_uint, beats, ctypes.c_uint]
        self.lib.accel_transfer.restype = ctypes.c_int
        self.lib.accel_set_weights_dir.argtypes = [ctypes.c_char_p]
        self.lib.accel_set_weights_dir(str(weights_dir).encode())
        self.controls = []  # the control beat of every transfer

    def run(self, beats_in: np.ndarray, n_out: int) -> tuple:
        beats_in = np.ascontiguousarray(beats_in, dtype=np.uint64)
        self.controls.append(int(beats_in[0]))
        out = np.zeros(n_out, np.uint64)
        pointer = ctypes.POINTER(ctypes.c_uint64)
        written = self.lib.accel_transfer(
            beats_in.ctypes.data_as(pointer), len(beats_in), out.ctypes.data_as(pointer), n_out
        )
        return out, written


class EventLog(list):
    """("send" | "recv" | "poll" | "start" | ..., details) in order; ``enabled`` False records
    nothing (a long benchmark run keeps its memory flat)."""

    enabled = True

    def append(self, event) -> None:
        if self.enabled:
            super().append(event)


class _Memory(pynq.Device):
    """Buffers at device addresses; ``freed`` records every ``freebuffer``."""

    def __init__(self, tag: str, top: EmulatedTop):
        super().__init__(tag)
        self.capabilities = {"REGISTER_RW": True}
        self.top = top
        self.registers = {}
        self.memory = {}  # device address -> host-visible array
        self.next_address = 0x1000_0000
        self.freed = set()
        self.events = EventLog()  # what the driver caused, in order

    def _buffer(self, shape, dtype, coherent: bool, storage) -> PynqBuffer:
        address = self.next_address
        self.next_address += (storage.nbytes + 0xFFF) & ~0xFFF
        buffer = PynqBuffer(shape, dtype, buffer=storage, device=self, device_address=address, coherent=coherent)
        buffer.freebuffer = lambda: self.freed.add(address)
        self.memory[address] = buffer
        return buffer

    def allocated(self) -> set:
        return set(self.memory)


class MockZynq(_Memory):
    """A Zynq-7000 seen through registers: coherent memory and an AXI DMA whose S2MM start runs
    the top on the MM2S source buffer. ``hang``: the S2MM channel never reports idle."""

    def __init__(self, hwh: Path, top: EmulatedTop):
        super().__init__("mock_zynq", top)
        self.arch = "armv7l"
        self.hwh = hwh
        self.registers = {address: 0x1E000 for address in PLL_REGISTERS}  # non-zero PLL dividers
        self.dma_base = None
        self.beats_moved = []
        self.hang = False  # S2MM transfers started from now on never complete
        self.s2mm_stuck = False

    def get_bitfile_metadata(self, bitfile_name):
        from pynq.metadata.runtime_metadata_parser import RuntimeMetadataParser
        from pynqmetadata.frontends import Metadata

        return RuntimeMetadataParser(Metadata(input=str(self.hwh)))

    def download(self, bitstream, parser=None):
        self.post_download(bitstream, parser)

    def allocate(self, shape, dtype, **kwargs):
        return self._buffer(shape, dtype, True, np.zeros(shape, dtype))

    def read_registers(self, address, length):
        value = self.registers.get(address, 0)
        if self.dma_base is not None and address in (self.dma_base + MM2S_STATUS, self.dma_base + S2MM_STATUS):
            if address == self.dma_base + S2MM_STATUS:
                self.events.append(("poll",))
            value &= ~HALTED  # running
            if not (self.s2mm_stuck and address == self.dma_base + S2MM_STATUS):
                value |= IDLE
        return value.to_bytes(length, "little")

    def write_registers(self, address, data):
        value = int.from_bytes(data, "little")
        if self.dma_base is not None and address == self.dma_base + MM2S_CONTROL and value & SOFT_RESET:
            self.events.append(("dma reset",))
            value &= ~SOFT_RESET  # the reset completes at once and aborts the transfer
            self.s2mm_stuck = False
        self.registers[address] = value
        if self.dma_base is not None and address == self.dma_base + MM2S_LENGTH:
            self.events.append(("send", self.registers[self.dma_base + MM2S_ADDRESS]))
        if self.dma_base is not None and address == self.dma_base + S2MM_LENGTH:
            self.events.append(("recv", self.registers[self.dma_base + S2MM_ADDRESS]))
            self.s2mm_stuck = self.hang
            if not self.hang:
                self._run_accelerator()

    def _run_accelerator(self):
        base = self.dma_base
        source = self.memory[self.registers[base + MM2S_ADDRESS]]
        target = self.memory[self.registers[base + S2MM_ADDRESS]]
        beats_in = source.view(np.uint64)[: self.registers[base + MM2S_LENGTH] // 8]
        out, written = self.top.run(beats_in, self.registers[base + S2MM_LENGTH] // 8)
        target.view(np.uint64)[: max(written, 0)] = out[: max(written, 0)]
        self.beats_moved.append((len(beats_in), written))


class MockAlveo(_Memory):
    """An Alveo card behind XRT: buffers are host arrays mirrored in card memory (only
    ``sync_to_device`` / ``sync_from_device`` move data), and hls4ml's ``krnl_rtl`` kernel whose
    ``ap_start`` runs the top on the card copy of ``fifo_in``. ``hang``: ``ap_done`` never comes."""

    def __init__(self, top: EmulatedTop):
        super().__init__("mock_alveo", top)
        self.card = {}  # device address -> the card's copy
        self.kernel_base = 0x0180_0000
        self.hang = False
        self.runs = 0
        self.loaded = None

    def download(self, bitstream, parser=None):
        self.loaded = bitstream.bitfile_name

    def allocate(self, shape, dtype, **kwargs):
        buffer = self._buffer(shape, dtype, False, np.zeros(shape, dtype))
        buffer.bo = buffer.device_address
        self.card[buffer.device_address] = np.zeros(shape, dtype)
        return buffer

    def flush(self, bo, offset, ptr, size):  # sync_to_device
        self.card[bo][...] = self.memory[bo]
        self.events.append(("sync to card", bo))

    def invalidate(self, bo, offset, ptr, size):  # sync_from_device
        self.memory[bo][...] = self.card[bo]
        self.events.append(("sync from card", bo))

    def read_registers(self, address, length):
        value = self.registers.get(address, 0)
        if address == self.kernel_base + AP_CTRL:
            self.registers[address] = value & ~0x2  # ap_done clears on read
        return value.to_bytes(length, "little")

    def write_registers(self, address, data):
        value = int.from_bytes(data, "little")
        self.registers[address] = value
        if address == self.kernel_base + AP_CTRL and value & 1:
            self.events.append(("start",))
            self.registers[address] = 0  # busy
            if not self.hang:
                self._run_kernel()

    def _argument(self, offset: int) -> int:
        return self.registers.get(self.kernel_base + offset, 0)

    def _run_kernel(self):
        source = self.card[self._argument(FIFO_IN) | self._argument(FIFO_IN + 4) << 32]
        target = self.card[self._argument(FIFO_OUT) | self._argument(FIFO_OUT + 4) << 32]
        out, written = self.top.run(source[: self._argument(LENGTH_IN)], self._argument(LENGTH_OUT))
        target[: max(written, 0)] = out[: max(written, 0)]
        self.runs += 1
        self.registers[self.kernel_base + AP_CTRL] = 0x6  # ap_done | ap_idle

    def kernel_description(self) -> dict:
        """What pynq's ``XclBin`` parser gives for a kernel (base address, VLNV, instance name;
        no registers: the driver then uses hls4ml's offsets). Hand-written for the mock: no v++
        was run here, so no xclbin with our kernel exists."""
        from host.pynq_driver import ALVEO_KERNEL_NAME, ALVEO_KERNEL_VLNV

        return dict(
            phys_addr=self.kernel_base,
            addr_range=0x10000,
            type=ALVEO_KERNEL_VLNV,
            fullpath=f"{ALVEO_KERNEL_NAME}_1",
            device=self,
        )


def board_copy(overlay_dir: Path, workdir: Path, hwh=None, board: str | None = None) -> Path:
    """The overlay with a stand-in bitstream and ``hwh`` (a path; default: ``derived_hwh``, or a
    tuple of more edits for it) beside it, in the manifest; ``board`` rewrites the manifest's
    board (a bitstream built for another board)."""
    target = workdir / "overlay"
    shutil.copytree(overlay_dir, target)
    bit = target / "accelerator.bit"
    bit.write_bytes(b"stand-in bitstream")
    if hwh is None or isinstance(hwh, tuple):  # a tuple: more edits of the derived .hwh
        derived_hwh(target / "accelerator.hwh", hwh or ())
    else:
        shutil.copyfile(hwh, target / "accelerator.hwh")
    manifest = Manifest.load(target)
    manifest.add_file("bitstream", target, bit)
    manifest.add_file("hwh", target, target / "accelerator.hwh")
    if board is not None:
        manifest.board = board
    manifest.save(target)
    return target


def alveo_copy(overlay_dir: Path, workdir: Path, xclbin: Path) -> Path:
    """The overlay as an Alveo build: ``xclbin`` as ``accelerator.xclbin`` in the manifest."""
    target = workdir / "alveo"
    shutil.copytree(overlay_dir, target)
    shutil.copyfile(xclbin, target / "accelerator.xclbin")
    manifest = Manifest.load(target)
    manifest.board = "alveo-u250"
    manifest.add_file("xclbin", target, target / "accelerator.xclbin")
    manifest.save(target)
    return target
