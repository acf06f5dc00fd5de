"""Run ``host.open(folder, backend="pynq")`` and our pynq drivers through the real pynq 3.1.2 stack
on mock boards (``mock_board.py``).

Run with the pynq environment (``.venv-pynq``, see requirements.txt here), never TensorFlow's:

    PYTHONPATH=. .venv-pynq/bin/python tests/pynq_mock/check_pynq_backend.py OVERLAY_DIR

Real: ``pynq.Overlay`` (metadata from pynqmetadata's real ``resizer.hwh``, minimally edited to hold
our IP, see ``mock_board.derived_hwh``), its driver assignment (our ``DefaultHierarchy``),
``pynq.allocate`` / ``PynqBuffer`` (``sync_to_device`` / ``sync_from_device`` on Alveo), the
``pynq.lib.dma.DMA`` driver's register sequence, ``pynq.MMIO``, and pynq's ``XclBin`` parser on
pynq's own ``default.xclbin``. Mocked: the devices (``REGISTER_RW``), their memory, the DMA's and
the kernel's data movement (the overlay's emulator library computes). Every result is compared
with ``backend="emulated"`` (equal to the C-simulation) by exact equality. Prints one JSON line;
exits 1 on any problem.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pynq
from mock_board import EmulatedTop, MockAlveo, MockZynq, alveo_copy, board_copy, real_hwh
from pynq.buffer import PynqBuffer
from pynq.pl_server import xclbin_parser
from pynq.pl_server.xclbin_parser import XclBin

import host
from host.manifest import Manifest
from host.protocol import CONTROL_RESET
from host.pynq_driver import AlveoKernel, LSTMAcceleratorHierarchy


class Checks:
    def __init__(self):
        self.problems, self.passed = [], []

    def expect(self, name: str, ok: bool, detail: str = "") -> None:
        (self.passed if ok else self.problems).append(name if ok else f"{name}: {detail}")

    def raises(self, name: str, kind, text: str, action) -> None:
        try:
            action()
        except kind as err:
            self.expect(name, text in str(err), f"message {str(err)!r} lacks {text!r}")
            return
        except Exception as err:  # noqa: BLE001 - reported as a problem
            self.expect(name, False, f"{type(err).__name__}: {err}")
            return
        self.expect(name, False, f"no {kind.__name__}")


def activate(device) -> None:
    pynq.Device.active_device = device


def zynq_device(board: Path, hwh: Path | None = None) -> MockZynq:
    manifest = Manifest.load(board)
    top = EmulatedTop(manifest.verified_path("emulator", board), manifest.verified_weights_dir(board))
    device = MockZynq(hwh or board / "accelerator.hwh", top)
    activate(device)
    return device


def check_zynq(check: Checks, overlay_dir: Path, tmp: Path, clips, long_clip, emulated, report) -> None:
    board = board_copy(overlay_dir, tmp / "zynq")
    manifest = Manifest.load(board)
    device = zynq_device(board)
    with host.open(board, backend="pynq") as on_board:
        hierarchy = on_board.backend
        check.expect("Overlay hands back our DefaultHierarchy", isinstance(hierarchy, LSTMAcceleratorHierarchy))
        device.dma_base = hierarchy.dma.mmio.base_addr
        board_out = [on_board.run_clip(clip) for clip in clips]
        check.raises("a second open is refused", RuntimeError, "already open", lambda: host.open(board, "pynq"))
        calls = clips.shape[1] // manifest.frames_per_call
        expected_moves = [(manifest.beats_in(calls), manifest.beats_out(calls))] * len(clips)
        check.expect("one DMA transfer per clip", device.beats_moved == expected_moves, str(device.beats_moved[:3]))
        report["transfers"] = len(device.beats_moved)
        check.expect("run_clip equals the emulator", all(map(np.array_equal, board_out, emulated["clips"])))
        check.expect("outputs are copies", not any(isinstance(out, PynqBuffer) for out in board_out))

        device.events.clear()
        streamed = on_board.stream(long_clip, block=2)
        check.expect("stream equals the emulator", np.array_equal(streamed, emulated["stream"]))
        resets = [bool(c & CONTROL_RESET) for c in device.top.controls[-len(on_board.stats.frames) :]]
        check.expect("only the first block of a clip resets", resets == [True] + [False] * (len(resets) - 1), resets)
        order = [event[0] for event in device.events if event[0] in ("send", "recv", "poll")]
        overlapped = all(
            "poll" not in order[order.index("recv", i) : order.index("send", order.index("recv", i))]
            for i in range(len(order))
            if order[i] == "send" and "send" in order[order.index("recv", i) :]
        )
        check.expect("block t+1 is sent before block t's output is waited on", overlapped, " ".join(order[:12]))
        report["stream"] = on_board.stats.summary()

        blocks = on_board.stream_blocks(
            long_clip[i : i + manifest.frames_per_call] for i in range(0, len(long_clip), manifest.frames_per_call)
        )
        next(blocks)
        blocks.close()  # the consumer stops with a transfer still in flight: it is drained
        after_stop = on_board.run_clip(clips[2])
        check.expect("a stream stopped early leaves the DMA ready", np.array_equal(after_stop, emulated["clips"][2]))

        via_overlay = hierarchy.run_clip(clips[0])  # the PYNQ-facing API of the hierarchy itself
        check.expect("hier_0.run_clip equals the emulator", np.array_equal(via_overlay, emulated["clips"][0]))

        device.hang = True
        on_board.timeout = 0.2
        check.raises(
            "a DMA that never completes times out",
            TimeoutError,
            "did not complete",
            lambda: on_board.run_clip(clips[1]),
        )
        check.expect(
            "the timeout freed every buffer", hierarchy.buffers_held() == 0 and device.freed == device.allocated()
        )
        check.expect("the timeout reset the DMA", ("dma reset",) in device.events)
        device.hang = False
        again = on_board.run_clip(clips[1])
        check.expect("after a timeout the next clip is right", np.array_equal(again, emulated["clips"][1]))
        check.expect("after a timeout the next transfer resets", bool(device.top.controls[-1] & CONTROL_RESET))

    plain = board_copy(overlay_dir, tmp / "no_ip", hwh=real_hwh())
    zynq_device(plain)
    check.raises(
        "a .hwh without our IP is refused",
        RuntimeError,
        "no hierarchy holding our accelerator top",
        lambda: host.open(plain, "pynq"),
    )
    no_dma = board_copy(
        overlay_dir,
        tmp / "no_dma",
        hwh=(
            (
                'MODTYPE="axi_dma" VLNV="xilinx.com:ip:axi_dma:7.1"',
                'MODTYPE="axi_fifo_mm_s" VLNV="xilinx.com:ip:axi_fifo_mm_s:4.2"',
            ),
        ),
    )
    zynq_device(no_dma)
    check.raises(
        "a .hwh without the AXI DMA is refused", RuntimeError, "AXI DMAs: none", lambda: host.open(no_dma, "pynq")
    )
    other = board_copy(overlay_dir, tmp / "zcu102", board="zcu102")
    zynq_device(other)
    check.raises(
        "a bitstream for another board is refused",
        ValueError,
        "built for another board",
        lambda: host.open(other, "pynq"),
    )


def check_alveo(check: Checks, overlay_dir: Path, tmp: Path, clips, long_clip, emulated) -> None:
    default_xclbin = Path(pynq.__file__).parent / "pl_server" / "default.xclbin"  # a real xclbin, no kernel
    board = alveo_copy(overlay_dir, tmp, default_xclbin)
    manifest = Manifest.load(board)
    top = EmulatedTop(manifest.verified_path("emulator", board), manifest.verified_weights_dir(board))
    device = MockAlveo(top)
    activate(device)
    check.raises(
        "an xclbin without our kernel is refused",
        RuntimeError,
        "has no krnl_rtl kernel",
        lambda: host.open(board, "pynq"),
    )
    xclbin_parser.XclBin = lambda path: SimpleNamespace(ip_dict={"krnl_rtl_1": device.kernel_description()})
    try:  # the mock's kernel stands in for the xclbin's metadata
        accelerator = host.open(board, backend="pynq", timeout=1.0)
    finally:
        xclbin_parser.XclBin = XclBin
    kernel = accelerator.backend
    check.expect("the xclbin's kernel gets our DefaultIP", isinstance(kernel, AlveoKernel), type(kernel).__name__)
    check.expect("the xclbin was loaded", device.loaded == str(board / "accelerator.xclbin"), str(device.loaded))
    via_kernel = kernel.run_clip(clips[0])  # the PYNQ-facing API of the kernel driver itself
    check.expect("krnl_rtl_1.run_clip equals the emulator", np.array_equal(via_kernel, emulated["clips"][0]))
    outputs = [accelerator.run_clip(clip) for clip in clips]
    check.expect("Alveo run_clip equals the emulator", all(map(np.array_equal, outputs, emulated["clips"])))
    device.events.clear()
    streamed = accelerator.stream(long_clip, block=2)
    check.expect("Alveo stream equals the emulator", np.array_equal(streamed, emulated["stream"]))
    order = [event[0] for event in device.events]
    check.expect(
        "Alveo: block t+1 is on the card before block t is read back",
        order[:4] == ["sync to card", "start", "sync to card", "start"]
        or order[:3] == ["sync to card", "start", "sync to card"],
        " | ".join(order[:6]),
    )
    device.hang = True
    accelerator.timeout = 0.2
    check.raises(
        "a kernel that never completes times out",
        TimeoutError,
        "did not complete",
        lambda: accelerator.run_clip(clips[0]),
    )
    check.expect(
        "the kernel timeout freed every buffer", kernel.buffers_held() == 0 and device.freed == device.allocated()
    )
    device.hang = False
    accelerator.timeout = 1.0
    check.expect(
        "Alveo: after a timeout the next clip is right",
        np.array_equal(accelerator.run_clip(clips[0]), emulated["clips"][0]),
    )
    accelerator.close()


def main(overlay_dir: str) -> int:
    rng = np.random.default_rng(0)
    check, report = Checks(), {}
    overlay_dir = Path(overlay_dir)
    manifest = Manifest.load(overlay_dir)
    frames = manifest.frames_per_call * (3 if manifest.stateful else 1)
    clips = rng.uniform(-2, 2, (4, frames, manifest.n_features))
    long_clip = rng.uniform(-2, 2, (manifest.frames_per_call * 7, manifest.n_features))
    with host.open(overlay_dir, backend="emulated") as emulated:
        expected = {"clips": [emulated.run_clip(clip) for clip in clips], "stream": emulated.stream(long_clip, block=3)}
        if manifest.stateful:  # state runs on across blocks: the blocked stream equals one transfer
            check.expect(
                "emulated stream equals one transfer", np.array_equal(expected["stream"], emulated.run_clip(long_clip))
            )
    with tempfile.TemporaryDirectory() as tmp:
        check_zynq(check, overlay_dir, Path(tmp), clips, long_clip, expected, report)
        check_alveo(check, overlay_dir, Path(tmp), clips, long_clip, expected)
    report.update(
        ok=not check.problems, problems=check.problems, passed=len(check.passed), pynq_version=pynq.__version__
    )
    print(json.dumps(report))
    return 1 if check.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
