"""The pynq side of ``benchmarks/stream_frames.py``: the long clip through ``host.Accelerator``
(backend ``pynq``) on the mock Zynq (``mock_board.MockZynq``: real pynq 3.1.2 Overlay, allocate
and AXI DMA driver; the DMA runs the overlay's emulator library).

    PYTHONPATH=. .venv-pynq/bin/python tests/pynq_mock/stream_board.py OVERLAY REFERENCE.npy FRAMES BLOCK

Prints one JSON line: the benchmark's row (``benchmarks.stream_frames.measure``).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from check_pynq_backend import zynq_device
from mock_board import board_copy

import host
from benchmarks.stream_frames import measure


def main(overlay: str, reference: str, n_frames: str, block: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        board = board_copy(Path(overlay), Path(tmp))
        device = zynq_device(board)
        device.events.enabled = False
        with host.open(board, backend="pynq") as accelerator:
            device.dma_base = accelerator.backend.dma.mmio.base_addr
            row = measure(accelerator, np.load(reference), int(n_frames), int(block))
    row["backend"] = "pynq mock-Zynq"
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
