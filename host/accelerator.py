"""``host.Accelerator``: run an overlay from Python, on the board (PYNQ) or emulated here.

Imports only NumPy (and ``pynq`` lazily, on the board). Both backends move the same int32 words
(``host.protocol``); the emulated one calls the accelerator top compiled from the same C++ as
the bitstream (``emulator/libaccel.so``), so its results equal the C-simulation exactly.
"""

from __future__ import annotations

import ctypes
import shutil
import tempfile
from pathlib import Path

import numpy as np

from host.manifest import Manifest
from host.protocol import decode_output, encode_input


class EmulatedBackend:
    """The accelerator top in a shared library; one ``transfer`` is one DMA round trip.

    Each backend loads a private copy of the library, so each has its own LSTM state (the
    loader would hand two opens of one path the same statics).
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

    def transfer(self, beats: np.ndarray, beats_out: int) -> np.ndarray:
        """Send ``beats`` (TLAST on the last); return the ``beats_out`` output beats."""
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

    def close(self):
        self.lib = None
        self._copy.cleanup()


class PynqBackend:
    """The bitstream on a Zynq board: one AXI DMA, buffers from ``pynq.allocate`` (kept while
    transfers fit them)."""

    name = "pynq"
    _open = set()  # bitstreams driven by a live backend in this process: one state each, one owner

    def __init__(self, bitstream: Path, manifest: Manifest):
        try:
            import pynq
        except ImportError as err:
            raise RuntimeError(
                f"the pynq backend needs the 'pynq' package (it ships with PYNQ images): {err}"
            ) from None
        self.bitstream = str(Path(bitstream).resolve())
        if self.bitstream in PynqBackend._open:
            raise RuntimeError(f"{bitstream} is already open in this process: close that Accelerator first")
        self.pynq = pynq
        self.overlay = pynq.Overlay(str(bitstream))
        self.dma = self._find_dma(self.overlay)
        self.in_buffer = self.out_buffer = None
        self.transfers = 0
        PynqBackend._open.add(self.bitstream)

    @staticmethod
    def _find_dma(overlay):
        names = [name for name, ip in overlay.ip_dict.items() if "axi_dma" in ip.get("type", "")]
        if not names:
            raise RuntimeError(f"no AXI DMA in the overlay (IPs: {sorted(overlay.ip_dict)})")
        dma = overlay
        for part in names[0].split("/"):
            dma = getattr(dma, part)
        return dma

    def _buffers(self, beats_in: int, beats_out: int):
        if self.in_buffer is None or self.in_buffer.shape[0] != beats_in or self.out_buffer.shape[0] != beats_out:
            self._free()
            self.in_buffer = self.pynq.allocate(shape=(beats_in,), dtype=np.uint64)
            self.out_buffer = self.pynq.allocate(shape=(beats_out,), dtype=np.uint64)
        return self.in_buffer, self.out_buffer

    def transfer(self, beats: np.ndarray, beats_out: int) -> np.ndarray:
        in_buffer, out_buffer = self._buffers(len(beats), beats_out)
        in_buffer[:] = beats
        self.dma.sendchannel.transfer(in_buffer)
        self.dma.recvchannel.transfer(out_buffer)
        self.dma.sendchannel.wait()
        self.dma.recvchannel.wait()
        self.transfers += 1
        return np.array(out_buffer, dtype=np.uint64, copy=True)  # never the live DMA buffer

    def _free(self):
        for buffer in (self.in_buffer, self.out_buffer):
            if buffer is not None:
                buffer.freebuffer()
        self.in_buffer = self.out_buffer = None  # XRT buffers are released when unreferenced

    def close(self):
        self._free()
        PynqBackend._open.discard(self.bitstream)


class Accelerator:
    """One overlay directory (``manifest.json`` + bitstream and/or emulator library).

    ``backend``: ``"pynq"`` (the board), ``"emulated"`` (the C++ here), or ``"auto"`` (the board
    when pynq and a bitstream are there, else the emulator).
    """

    def __init__(self, overlay_dir, backend: str = "auto"):
        self.directory = Path(overlay_dir)
        self.manifest = Manifest.load(self.directory)
        self.backend = self._open_backend(backend)
        self._reset_pending = True

    def _open_backend(self, backend: str):
        m = self.manifest
        if backend not in ("auto", "pynq", "emulated"):
            raise ValueError(f"backend must be 'auto', 'pynq' or 'emulated', got {backend!r}")
        if backend == "auto":
            backend = "pynq" if "bitstream" in m.files and _pynq_available() else "emulated"
        if backend == "pynq":
            return PynqBackend(m.verified_path("bitstream", self.directory), m)
        library = m.verified_path("emulator", self.directory)
        return EmulatedBackend(library, m, m.verified_weights_dir(self.directory))

    @property
    def frames_per_call(self) -> int:
        return self.manifest.frames_per_call

    def reset(self) -> None:
        """Zero the LSTM state before the next call (a new clip)."""
        self._reset_pending = True

    def _transfer(self, features) -> np.ndarray:
        """One DMA transfer of (calls * frames_per_call, n_features) floats: (calls, *output_shape)."""
        m = self.manifest
        beats = encode_input(features, m.input_type, m.frames_per_call, m.n_features, self._reset_pending)
        calls = len(features) // m.frames_per_call
        self._reset_pending = True  # until the transfer is known to be good
        out = decode_output(self.backend.transfer(beats, m.beats_out(calls)), m.output_type, calls, m.n_outputs)
        self._reset_pending = False
        return out.reshape(calls, *m.output_shape)

    def run(self, features) -> np.ndarray:
        """One call: (frames_per_call, n_features) floats -> the model output (a new array)."""
        features = np.asarray(features, dtype=np.float64)
        expected = (self.frames_per_call, self.manifest.n_features)
        if features.shape != expected:
            raise ValueError(f"expected features of shape {expected}, got {features.shape}")
        return self._transfer(features)[0]

    def run_clip(self, clip) -> np.ndarray:
        """A whole clip (frames, n_features) from a zero state, in one DMA transfer: one output per call.

        A frame-by-frame (stateful) overlay makes one call per frame; a whole-clip overlay one call.
        """
        clip = np.asarray(clip)
        per_call = self.frames_per_call
        if clip.ndim == 2 and not clip.shape[0]:
            raise ValueError(f"a clip needs at least one frame (a multiple of {per_call}), got {clip.shape}")
        if clip.ndim != 2 or clip.shape[0] % per_call:
            raise ValueError(
                f"a clip must be (frames, features) with frames a multiple of {per_call}, got {clip.shape}"
            )
        if clip.shape[0] != per_call and not self.manifest.stateful:
            raise ValueError(f"this overlay is not stateful: a clip must have exactly {per_call} frames")
        self.reset()
        return self._transfer(clip)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _pynq_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("pynq") is not None
