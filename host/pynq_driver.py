"""The board backends of ``host.Accelerator``: pynq drivers bound the PYNQ way (imports ``pynq``).

Importing this module registers, with pynq's driver registry:

* ``LSTMAcceleratorHierarchy`` (a ``DefaultHierarchy``): hls4ml's VivadoAccelerator block design
  groups the AXI DMA and our accelerator top (``overlay.axi_wrapper``, VLNV ``ACCELERATOR_VLNV``:
  AXI-Stream in/out, ``ap_ctrl_none``, so no registers of its own and no entry in ``ip_dict``)
  into one hierarchy (``hier_0``). ``pynq.Overlay("accelerator.bit").hier_0`` is then this class,
  with ``run_clip`` / ``stream`` (the manifest is read from the bitstream's folder);
* ``AlveoKernel`` (a ``DefaultIP`` bound to ``ALVEO_KERNEL_VLNV``): hls4ml's Alveo RTL kernel
  ``krnl_rtl``, arguments ``fifo_in`` / ``fifo_out`` (``m_axi`` pointers) and ``length_r_in`` /
  ``length_r_out`` (``s_axilite`` scalars, in bus words), started through its ``s_axilite``
  control register; buffers from ``pynq.allocate`` moved with ``sync_to_device`` /
  ``sync_from_device``.

Both are backends of ``host.Accelerator`` (``submit`` / ``collect``; ``host.open`` opens them with
``open_zynq`` / ``open_alveo``) and build one on themselves (``accelerator``): this module imports
the accelerator, never the other way round. Two input/output buffer pairs, two transfers in
flight (block t+1 moves while block t computes), a transfer that does not complete within
``timeout`` seconds raises ``TimeoutError`` after resetting the engine and freeing every buffer.
Beats are 64-bit words of ``host.protocol``.
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pynq
from pynq import DefaultHierarchy, DefaultIP

from host import boards
from host.accelerator import DEFAULT_TIMEOUT_S, Accelerator
from host.manifest import ACCELERATOR_VLNV, Manifest
from host.protocol import BEAT_BITS

DMA_VLNV = "xilinx.com:ip:axi_dma:"
# hls4ml 1.3.0's Alveo axi_stream_design.tcl: "ipx::package_project -vendor fastmachinelearning.org
# -library hls4ml" of module krnl_rtl, "package_xo -kernel_name krnl_rtl"
ALVEO_KERNEL_VLNV = "fastmachinelearning.org:hls4ml:krnl_rtl:1.0"
ALVEO_KERNEL_NAME = "krnl_rtl"
# The kernel's s_axilite registers (hls4ml's krnl_rtl_control_s_axi.v): control, the two
# 64-bit buffer addresses and the two lengths (in m_axi words).
AP_CTRL, FIFO_IN, FIFO_OUT, LENGTH_IN, LENGTH_OUT = 0x00, 0x10, 0x1C, 0x28, 0x30
AP_START, AP_DONE = 0x1, 0x2
DMA_CONTROL, DMA_SOFT_RESET = 0x00, 0x4  # MM2S_DMACR; a soft reset resets both channels
BEAT_BYTES = BEAT_BITS // 8  # the protocol's beat, the width the DMA moves


@dataclass
class _Ticket:
    """One transfer in flight: its buffer pair (index) and sizes in beats."""

    pair: int
    beats_in: int
    beats_out: int


class _DoubleBuffered:
    """Two input/output buffer pairs from ``pynq.allocate`` and at most two transfers in flight.

    Subclasses move the data: ``_load`` (input beats into the pair, on their way to the device),
    ``_start`` (the transfer computes), ``_done`` (it has completed), ``_read`` (its output
    beats, a copy), ``_reset_engine`` (after a timeout).
    """

    name = "pynq"
    timeout = DEFAULT_TIMEOUT_S

    def _init_buffers(self):
        self._pairs = None  # [(in_buffer, out_buffer)] * 2, allocated for the largest transfer yet
        self._in_flight = deque()
        self._next_pair = 0
        self.transfers = 0

    def transfer(self, beats: np.ndarray, beats_out: int, timeout: float | None = None) -> np.ndarray:
        return self.collect(self.submit(beats, beats_out), timeout)

    def submit(self, beats: np.ndarray, beats_out: int) -> _Ticket:
        if len(self._in_flight) >= 2:
            raise RuntimeError("two transfers are already in flight: collect the oldest first")
        pair = self._pair(len(beats), beats_out)
        ticket = _Ticket(pair, len(beats), beats_out)
        self._pairs[pair][0][: len(beats)] = beats
        self._in_flight.append(ticket)
        try:
            self._load(ticket)
            if len(self._in_flight) == 1:
                self._start(ticket)
        except BaseException:
            self._in_flight.clear()  # what was in flight is abandoned: the next transfer resets the state
            raise
        return ticket

    def collect(self, ticket: _Ticket, timeout: float | None = None) -> np.ndarray:
        if not self._in_flight or ticket is not self._in_flight[0]:
            raise RuntimeError("transfers must be collected in the order they were submitted")
        timeout = self.timeout if timeout is None else timeout
        try:
            self._wait(lambda: self._done(ticket), timeout, f"{self._what()} of {ticket.beats_in} beats in")
            self._complete(ticket)
            self._in_flight.popleft()
            if self._in_flight:
                self._start(self._in_flight[0])  # the next block computes while this one is read
        except BaseException:
            self._in_flight.clear()
            raise
        self.transfers += 1
        return self._read(ticket)

    def _wait(self, done, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                self._reset_engine()
                self._free()
                raise TimeoutError(
                    f"{what} did not complete within {timeout:g} s: the engine was reset and its buffers freed; "
                    "the next transfer resets the LSTM state (if it times out too, reload the overlay)"
                )

    def _pair(self, beats_in: int, beats_out: int) -> int:
        if self._pairs is None or self._pairs[0][0].shape[0] < beats_in or self._pairs[0][1].shape[0] < beats_out:
            if self._in_flight:
                raise RuntimeError("a larger transfer cannot start while others are in flight: collect them first")
            self._free()
            self._pairs = [
                (
                    pynq.allocate(shape=(beats_in,), dtype=np.uint64, **self._target("in")),
                    pynq.allocate(shape=(beats_out,), dtype=np.uint64, **self._target("out")),
                )
                for _ in range(2)
            ]
        pair, self._next_pair = self._next_pair, self._next_pair ^ 1
        return pair

    def _target(self, direction: str) -> dict:
        return {}

    def _complete(self, ticket: _Ticket) -> None:
        """Bookkeeping once ``ticket`` is done, before the next transfer starts."""

    def _free(self) -> None:
        for buffers in self._pairs or ():
            for buffer in buffers:
                buffer.freebuffer()
        self._pairs = None
        self._in_flight.clear()

    # -- the PYNQ-facing API: what host.Accelerator offers, on this driver ----------------------
    @property
    def accelerator(self):
        """A ``host.Accelerator`` on this driver (the manifest beside the bitstream / xclbin)."""
        if self._accelerator is None:
            self._accelerator = Accelerator(self._overlay_dir(), self, timeout=self.timeout)
        return self._accelerator

    def run_clip(self, clip) -> np.ndarray:
        """``host.Accelerator.run_clip``: (frames, features) from a zero state, one output per call."""
        return self.accelerator.run_clip(clip)

    def stream(self, frames, block: int = 64) -> np.ndarray:
        """``host.Accelerator.stream``: a long clip in blocks of ``block`` calls, double-buffered."""
        return self.accelerator.stream(frames, block=block)

    def buffers_held(self) -> int:
        """Buffers this backend holds (0 after ``close`` or a timeout)."""
        return 0 if self._pairs is None else 2 * len(self._pairs)


class LSTMAcceleratorHierarchy(DefaultHierarchy, _DoubleBuffered):
    """hls4ml's ``hier_0`` on a Zynq: the AXI DMA and our accelerator top (``ACCELERATOR_VLNV``).

    ``run_clip(clip)`` and ``stream(frames, block=...)`` as on ``host.Accelerator``. As a backend:
    block t+1's input is sent (MM2S) before waiting on block t's output (S2MM); the recv of
    t+1 starts as soon as t's has completed.
    """

    @staticmethod
    def checkhierarchy(description) -> bool:
        return bool(_dma_names(description)) and bool(_accelerator_cores(description))

    def __init__(self, description):
        DefaultHierarchy.__init__(self, description)
        self._init_buffers()
        self.dma_name = _dma_names(description)[0]
        self.dma = getattr(self, self.dma_name)
        self._send_busy = False
        self._accelerator = None

    # -- backend ------------------------------------------------------------------------------
    def _what(self) -> str:
        return f"AXI DMA {self.description['fullpath']}/{self.dma_name}"

    def _load(self, ticket: _Ticket) -> None:
        send = self.dma.sendchannel
        if self._send_busy:  # the previous block's input must have left before this one goes
            self._wait(lambda: send.idle, self.timeout, f"{self._what()} MM2S (input)")
            send.wait()
        send.transfer(self._pairs[ticket.pair][0], nbytes=ticket.beats_in * BEAT_BYTES)
        self._send_busy = True

    def _start(self, ticket: _Ticket) -> None:
        self.dma.recvchannel.transfer(self._pairs[ticket.pair][1], nbytes=ticket.beats_out * BEAT_BYTES)

    def _done(self, ticket: _Ticket) -> bool:
        recv = self.dma.recvchannel
        if recv.error:
            recv.wait()  # raises pynq's message for the DMA error
        return recv.idle

    def _complete(self, ticket: _Ticket) -> None:
        self.dma.recvchannel.wait()  # pynq's bookkeeping (cache invalidate); the channel is idle

    def _read(self, ticket: _Ticket) -> np.ndarray:
        return np.array(self._pairs[ticket.pair][1][: ticket.beats_out], dtype=np.uint64, copy=True)

    def _reset_engine(self) -> None:
        mmio = self.dma.mmio
        mmio.write(DMA_CONTROL, DMA_SOFT_RESET)
        deadline = time.monotonic() + 1.0
        while mmio.read(DMA_CONTROL) & DMA_SOFT_RESET and time.monotonic() < deadline:
            pass
        self.dma.sendchannel.start()
        self.dma.recvchannel.start()
        self._send_busy = False

    def close(self) -> None:
        self._free()
        _release(self)

    def _overlay_dir(self) -> Path:
        return Path(self._overlay.bitfile_name).parent


class AlveoKernel(DefaultIP, _DoubleBuffered):
    """hls4ml's Alveo RTL kernel ``krnl_rtl`` around our accelerator top, driven through XRT buffers.

    A transfer: the input beats into a ``pynq.allocate`` buffer, ``sync_to_device``; the kernel's
    arguments (both buffers' device addresses, both lengths in 64-bit words) written to its
    ``s_axilite`` registers and ``ap_start``; ``ap_done`` polled; ``sync_from_device`` of the
    output buffer. Block t+1 is synced to the card while block t computes.
    """

    bindto = [ALVEO_KERNEL_VLNV]
    name = "pynq-xrt"

    ARGUMENTS = {"fifo_in": FIFO_IN, "fifo_out": FIFO_OUT, "length_r_in": LENGTH_IN, "length_r_out": LENGTH_OUT}

    def __init__(self, description):
        DefaultIP.__init__(self, description)
        self._init_buffers()
        self._memory = description.get("memory")
        self._accelerator = None
        registers = description.get("registers") or {}
        if registers:  # the xclbin's own argument offsets win over hls4ml's RTL defaults
            missing = sorted(set(self.ARGUMENTS) - set(registers))
            if missing:
                raise RuntimeError(
                    f"kernel {description.get('fullpath')} has no argument {', '.join(missing)} "
                    f"(it has {sorted(registers)}): not hls4ml's {ALVEO_KERNEL_NAME}"
                )
        self.offsets = {
            name: registers[name]["address_offset"] if registers else offset for name, offset in self.ARGUMENTS.items()
        }

    def _what(self) -> str:
        return f"Alveo kernel {ALVEO_KERNEL_NAME}"

    def _overlay_dir(self) -> Path:
        if getattr(self, "_board_file", None) is None:
            raise RuntimeError("open the kernel with host.pynq_driver.open_alveo (it knows the overlay folder)")
        return Path(self._board_file).parent

    def _target(self, direction: str) -> dict:
        return {"target": self._memory} if self._memory is not None else {}

    def _load(self, ticket: _Ticket) -> None:
        self._pairs[ticket.pair][0].sync_to_device()

    def _start(self, ticket: _Ticket) -> None:
        source, target = self._pairs[ticket.pair]
        for name, address in (("fifo_in", source.device_address), ("fifo_out", target.device_address)):
            self.write(self.offsets[name], address & 0xFFFFFFFF)
            self.write(self.offsets[name] + 4, address >> 32)
        self.write(self.offsets["length_r_in"], ticket.beats_in)
        self.write(self.offsets["length_r_out"], ticket.beats_out)
        self.write(AP_CTRL, AP_START)

    def _done(self, ticket: _Ticket) -> bool:
        return bool(self.read(AP_CTRL) & AP_DONE)  # clears on read: read once per poll, stop when set

    def _read(self, ticket: _Ticket) -> np.ndarray:
        target = self._pairs[ticket.pair][1]
        target.sync_from_device()
        return np.array(target[: ticket.beats_out], dtype=np.uint64, copy=True)

    def _reset_engine(self) -> None:
        pass  # an RTL kernel has no software reset: the buffers are freed, the card keeps the run

    def close(self) -> None:
        self._free()
        _release(self)


def _dma_names(description) -> list:
    return sorted(name for name, ip in description.get("ip", {}).items() if ip.get("type", "").startswith(DMA_VLNV))


def _vlnv(block) -> str:
    v = getattr(block, "vlnv", None)
    if v is None:
        return ""
    return f"{v.vendor}:{v.library}:{v.name}:{'.'.join(str(part) for part in v.version)}"


def _accelerator_cores(description) -> list:
    """Our accelerator top inside the hierarchy: from the overlay's full metadata (it has no
    registers, so it is not in ``ip_dict``), or an addressable one in the hierarchy's IP."""
    found = [name for name, ip in description.get("ip", {}).items() if ip.get("type") == ACCELERATOR_VLNV]
    overlay = description.get("overlay")
    blocks = getattr(getattr(getattr(overlay, "parser", None), "md", None), "blocks", {}) or {}
    prefix = description.get("fullpath", "") + "/"
    found += [
        name
        for name, block in blocks.items()
        if _vlnv(block) == ACCELERATOR_VLNV and str(getattr(block, "hierarchy_name", "")).startswith(prefix)
    ]
    return found


_open = set()  # bitstreams / xclbins driven by a live backend in this process: one state each, one owner


def _release(backend) -> None:
    _open.discard(getattr(backend, "_board_file", None))


def _claim(path: Path) -> str:
    key = str(Path(path).resolve())
    if key in _open:
        raise RuntimeError(f"{path} is already open in this process: close that Accelerator first")
    return key


def check_hwh_board(hwh: Path, board: str) -> None:
    """Refuse a .hwh whose FPGA part is not the manifest's board's (``host.boards``: as a .hwh names it)."""
    record = boards.board(board)
    if record.hwh_device is None:
        raise ValueError(f"the manifest's board {board} takes an xclbin, not a bitstream and {hwh}")
    text = Path(hwh).read_text(errors="replace")[:20000]
    match = re.search(r'<SYSTEMINFO[^>]*DEVICE="([^"]+)"[^>]*PACKAGE="([^"]+)"', text)
    if match is None:
        raise ValueError(f"{hwh} has no <SYSTEMINFO DEVICE=... PACKAGE=...>: not a Vivado hardware handoff")
    device, package = record.hwh_device, record.hwh_package
    if device not in match.group(1) or package != match.group(2):
        raise ValueError(
            f"{hwh} is for part {match.group(1)} {match.group(2)}, but the manifest's board {board} is "
            f"{device} {package}: this bitstream was built for another board"
        )


def open_zynq(directory: Path, manifest: Manifest, timeout: float) -> LSTMAcceleratorHierarchy:
    """``pynq.Overlay`` on the manifest's bitstream; our hierarchy from it, as a backend."""
    bitstream = manifest.verified_path("bitstream", directory)
    hwh = manifest.verified_path("hwh", directory)
    check_hwh_board(hwh, manifest.board)
    key = _claim(bitstream)
    overlay = pynq.Overlay(str(bitstream))
    ours = [name for name, h in overlay.hierarchy_dict.items() if h.get("driver") is LSTMAcceleratorHierarchy]
    if not ours:
        dmas = [name for name, ip in overlay.ip_dict.items() if ip.get("type", "").startswith(DMA_VLNV)]
        raise RuntimeError(
            f"{hwh} has no hierarchy holding our accelerator top ({ACCELERATOR_VLNV}) and an AXI DMA "
            f"(AXI DMAs: {dmas or 'none'}; IPs: {sorted(overlay.ip_dict)}): is this the bitstream 'overlay build' made?"
        )
    backend = getattr(overlay, ours[0])
    backend.timeout, backend._board_file = timeout, key
    _open.add(key)
    return backend


def open_alveo(directory: Path, manifest: Manifest, timeout: float, device=None) -> AlveoKernel:
    """The xclbin's ``krnl_rtl`` kernel on the active (XRT) device, as a backend.

    The kernel's base address comes from the xclbin's own metadata (pynq's ``XclBin`` parser).
    """
    from pynq.pl_server.xclbin_parser import XclBin

    xclbin = manifest.verified_path("xclbin", directory)
    key = _claim(xclbin)
    ip_dict = XclBin(str(xclbin)).ip_dict
    kernels = [
        name
        for name, ip in ip_dict.items()
        if ip.get("type") == ALVEO_KERNEL_VLNV or name.startswith(ALVEO_KERNEL_NAME)
    ]
    if not kernels:
        raise RuntimeError(
            f"{xclbin} has no {ALVEO_KERNEL_NAME} kernel ({ALVEO_KERNEL_VLNV}; kernels: {sorted(ip_dict) or 'none'}): "
            "is this the xclbin 'overlay build --board alveo-u250' made?"
        )
    if device is None:
        try:
            device = pynq.Device.active_device
        except RuntimeError as err:
            raise RuntimeError(
                f"no XRT device to load {xclbin} on ({err}): pynq {pynq.__version__} finds none on an Alveo host "
                "(its XrtDevice probe is disabled); make an XRT-capable pynq.Device active first"
            ) from None
    pynq.Bitstream(str(xclbin), device=device).download()
    # no "index": pynq 3.1.2's XRT device has no CU contexts; the kernel is driven by its registers
    description = {key: value for key, value in ip_dict[kernels[0]].items() if key != "index"}
    kernel = AlveoKernel({**description, "device": device})
    kernel.timeout, kernel._board_file = timeout, key
    _open.add(key)
    return kernel
