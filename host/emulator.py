"""The emulated backend: the accelerator top compiled from the same C++ as the bitstream
(``emulator/libaccel.so``, built with the overlay), so its results equal the C-simulation exactly.

NumPy and the standard library only. ``host.open(folder, backend="emulated")`` opens it (or
``"auto"`` where there is no board); ``overlay.testbench`` records transfers through it.
"""

from __future__ import annotations

import ctypes
import shutil
import tempfile
from pathlib import Path

import numpy as np

from host.accelerator import DEFAULT_TIMEOUT_S
from host.manifest import Manifest


class EmulatedBackend:
    """The accelerator top in a shared library; one ``transfer`` is one DMA round trip.

    Each backend loads a private copy of the library, so each has its own LSTM state (the
    loader would hand two opens of one path the same statics). ``submit`` runs the transfer at
    once (sequential: there is nothing to overlap with on one host thread); ``collect`` hands
    its output back.
    """

    name = "emulated"

    def __init__(self, library: Path, manifest: Manifest, weights_dir: Path):
        self._copy = tempfile.TemporaryDirectory(prefix="accel-")
        private = Path(self._copy.name) / Path(library).name
        shutil.copyfile(library, private)
        self.lib = ctypes.CDLL(str(private))
        self.lib.accel_set_weights_dir.argtypes = [ctypes.c_char_p]
        self.lib.accel_set_weights_dir(str(Path(weights_dir).resolve()).encode())
        beats = ctypes.POINTER(ctypes.c_uint64)
        self.lib.accel_transfer.argtypes = [beats, ctypes.c_uint, beats, ctypes.c_uint]
        self.lib.accel_transfer.restype = ctypes.c_int
        for name, expected in (
            ("accel_in_beats_per_call", manifest.in_beats_per_call),
            ("accel_out_beats_per_call", manifest.out_beats_per_call),
        ):
            getattr(self.lib, name).restype = ctypes.c_uint
            actual = getattr(self.lib, name)()
            if actual != expected:
                raise ValueError(f"{library}: {name}() = {actual} but the manifest says {expected}")
        self.transfers = 0

    def transfer(self, beats: np.ndarray, beats_out: int, timeout: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
        """Send ``beats`` (TLAST on the last); return the ``beats_out`` output beats."""
        return self.collect(self.submit(beats, beats_out), timeout)

    def submit(self, beats: np.ndarray, beats_out: int) -> np.ndarray:
        beats = np.ascontiguousarray(beats, dtype=np.uint64)
        out = np.zeros(beats_out, dtype=np.uint64)
        pointer = ctypes.POINTER(ctypes.c_uint64)
        written = self.lib.accel_transfer(
            beats.ctypes.data_as(pointer), len(beats), out.ctypes.data_as(pointer), beats_out
        )
        self.transfers += 1
        if written != beats_out:
            raise RuntimeError(f"the accelerator wrote {written} beats (TLAST included), expected {beats_out}")
        return out

    def collect(self, ticket: np.ndarray, timeout: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
        return ticket

    def close(self):
        self.lib = None
        self._copy.cleanup()
