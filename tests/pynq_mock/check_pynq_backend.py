"""Run ``host.Accelerator(backend="pynq")`` through the real pynq 3.1.2 stack on a mock board.

Run with the pynq environment (``.venv-pynq``, see requirements.txt here), never TensorFlow's:

    PYTHONPATH=. .venv-pynq/bin/python tests/pynq_mock/check_pynq_backend.py OVERLAY_DIR

Real: ``pynq.Overlay`` (metadata from a real ``.hwh`` with an AXI DMA, shipped in pynqmetadata's
tests, beside a stand-in ``.bit``; download and PL clock setup through PS registers),
``pynq.allocate`` returning ``PynqBuffer``, and the ``pynq.lib.dma.DMA`` driver's register
sequence. Mocked: the device (``REGISTER_RW``), its memory, and the DMA's data movement: when
the driver writes the S2MM length register, the mock reads the MM2S source buffer, runs the
overlay's accelerator top (the emulator library, the same C++ as the bitstream) and writes the
S2MM destination buffer. Prints one JSON line; exits 1 on any mismatch.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pynq
from pynq.buffer import PynqBuffer

from host import Accelerator
from host.manifest import Manifest

MM2S_ADDRESS, MM2S_LENGTH, S2MM_ADDRESS, S2MM_LENGTH = 0x18, 0x28, 0x48, 0x58
MM2S_STATUS, S2MM_STATUS = 0x04, 0x34
IDLE = 0x2
PLL_REGISTERS = (0xF8000100, 0xF8000104, 0xF8000108)  # ARM, DDR, IO PLL control


def real_hwh() -> Path:
    spec = importlib.util.find_spec("pynqmetadata")
    return Path(spec.submodule_search_locations[0]) / "tests" / "hwhs" / "resizer.hwh"


class MockZynq(pynq.Device):
    """A Zynq-7000 seen through registers: memory for buffers, an AXI DMA that runs the emulator."""

    def __init__(self, hwh: Path, emulator: Path, weights_dir: Path):
        super().__init__("mock_zynq")
        self.capabilities = {"REGISTER_RW": True}
        self.arch = "armv7l"
        self.hwh = hwh
        self.registers = {address: 0x1E000 for address in PLL_REGISTERS}  # non-zero PLL dividers
        self.memory = {}  # device address -> buffer
        self.next_address = 0x1000_0000
        self.dma_base = None
        self.beats_moved = []
        self.accelerator = ctypes.CDLL(str(emulator))
        beats = ctypes.POINTER(ctypes.c_uint64)
        self.accelerator.accel_transfer.argtypes = [beats, ctypes.c_uint, beats, ctypes.c_uint]
        self.accelerator.accel_transfer.restype = ctypes.c_int
        self.accelerator.accel_set_weights_dir.argtypes = [ctypes.c_char_p]
        self.accelerator.accel_set_weights_dir(str(weights_dir).encode())

    def get_bitfile_metadata(self, bitfile_name):
        from pynq.metadata.runtime_metadata_parser import RuntimeMetadataParser
        from pynqmetadata.frontends import Metadata

        return RuntimeMetadataParser(Metadata(input=str(self.hwh)))

    def download(self, bitstream, parser=None):
        self.post_download(bitstream, parser)

    def allocate(self, shape, dtype, **kwargs):
        storage = np.zeros(shape, dtype)
        address = self.next_address
        self.next_address += (storage.nbytes + 0xFFF) & ~0xFFF
        buffer = PynqBuffer(shape, dtype, buffer=storage, device=self, device_address=address, coherent=True)
        self.memory[address] = buffer
        return buffer

    def read_registers(self, address, length):
        if self.dma_base is not None and address in (self.dma_base + MM2S_STATUS, self.dma_base + S2MM_STATUS):
            return (self.registers.get(address, 0) | IDLE).to_bytes(length, "little")
        return self.registers.get(address, 0).to_bytes(length, "little")

    def write_registers(self, address, data):
        self.registers[address] = int.from_bytes(data, "little")
        if self.dma_base is not None and address == self.dma_base + S2MM_LENGTH:
            self._run_accelerator()

    def _run_accelerator(self):
        base = self.dma_base
        source = self.memory[self.registers[base + MM2S_ADDRESS]]
        target = self.memory[self.registers[base + S2MM_ADDRESS]]
        beats_in = np.ascontiguousarray(source.view(np.uint64)[: self.registers[base + MM2S_LENGTH] // 8])
        beats_out = np.zeros(self.registers[base + S2MM_LENGTH] // 8, np.uint64)
        pointer = ctypes.POINTER(ctypes.c_uint64)
        written = self.accelerator.accel_transfer(
            beats_in.ctypes.data_as(pointer), len(beats_in), beats_out.ctypes.data_as(pointer), len(beats_out)
        )
        target.view(np.uint64)[: max(written, 0)] = beats_out[: max(written, 0)]
        self.beats_moved.append((len(beats_in), written))


def board_copy(overlay_dir: Path, workdir: Path) -> Path:
    """The overlay with a stand-in bitstream and the real .hwh beside it, in the manifest."""
    board = workdir / "overlay"
    shutil.copytree(overlay_dir, board)
    bit = board / "accelerator.bit"
    bit.write_bytes(b"stand-in bitstream")
    shutil.copyfile(real_hwh(), board / "accelerator.hwh")
    manifest = Manifest.load(board)
    manifest.add_file("bitstream", board, bit)
    manifest.add_file("hwh", board, board / "accelerator.hwh")
    manifest.save(board)
    return board


def main(overlay_dir: str) -> int:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        board = board_copy(Path(overlay_dir), Path(tmp))
        manifest = Manifest.load(board)
        library, weights = manifest.verified_path("emulator", board), manifest.verified_weights_dir(board)
        device = MockZynq(board / "accelerator.hwh", library, weights)
        pynq.Device.active_device = device
        frames = manifest.frames_per_call * (3 if manifest.stateful else 1)
        clips = rng.uniform(-2, 2, (4, frames, manifest.n_features))
        with Accelerator(board, backend="pynq") as on_board:
            dma_name = next(n for n, ip in on_board.backend.overlay.ip_dict.items() if "axi_dma" in ip["type"])
            device.dma_base = on_board.backend.overlay.ip_dict[dma_name]["phys_addr"]
            board_out = [on_board.run_clip(clip) for clip in clips]
            try:
                Accelerator(board, backend="pynq")
                second_open_refused = False
            except RuntimeError:
                second_open_refused = True
        with Accelerator(board, backend="emulated") as emulated:
            emulated_out = [emulated.run_clip(clip) for clip in clips]
    problems = [] if second_open_refused else ["a second open of the same bitstream was not refused"]
    if not all(np.array_equal(a, b) for a, b in zip(board_out, emulated_out, strict=True)):
        problems.append("pynq backend and emulator disagree")
    if any(isinstance(out, PynqBuffer) for out in board_out):
        problems.append("a live DMA buffer was returned")
    calls = frames // manifest.frames_per_call  # a whole clip in one transfer
    if device.beats_moved != [(manifest.beats_in(calls), manifest.beats_out(calls))] * len(clips):
        problems.append(f"unexpected DMA transfers {device.beats_moved[:3]}...")
    print(
        json.dumps(
            {
                "ok": not problems,
                "problems": problems,
                "transfers": len(device.beats_moved),
                "beats_in": manifest.beats_in(calls),
                "beats_out": manifest.beats_out(calls),
                "pynq_version": pynq.__version__,
            }
        )
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
