"""``host.Accelerator``: run an overlay from Python, on the board (PYNQ) or emulated here.

Imports only NumPy (and ``pynq`` lazily, on the board). Both backends move the same int32 words
(``host.protocol``); the emulated one calls the accelerator top compiled from the same C++ as
the bitstream (``emulator/libaccel.so``), so its results equal the C-simulation exactly.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from host.manifest import Manifest
from host.protocol import decode_output, encode_input


class EmulatedBackend:
    """The accelerator top in a shared library; one ``transfer`` is one DMA round trip."""

    name = "emulated"

    def __init__(self, library: Path, words_in: int, words_out: int):
        self.lib = ctypes.CDLL(str(Path(library).resolve()))
        self.lib.accel_transfer.argtypes = [ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_int32)]
        for name, expected in (("accel_words_in", words_in), ("accel_words_out", words_out)):
            getattr(self.lib, name).restype = ctypes.c_uint
            actual = getattr(self.lib, name)()
            if actual != expected:
                raise ValueError(f"{library}: {name}() = {actual} but the manifest says {expected}")
        self.words_out = words_out

    def transfer(self, words: np.ndarray) -> np.ndarray:
        words = np.ascontiguousarray(words, dtype=np.int32)
        out = np.zeros(self.words_out, dtype=np.int32)
        pointer = ctypes.POINTER(ctypes.c_int32)
        self.lib.accel_transfer(words.ctypes.data_as(pointer), out.ctypes.data_as(pointer))
        return out

    def close(self):
        self.lib = None


class PynqBackend:
    """The bitstream on a Zynq board: one AXI DMA, buffers from ``pynq.allocate``."""

    name = "pynq"

    def __init__(self, bitstream: Path, words_in: int, words_out: int):
        try:
            import pynq
        except ImportError as err:
            raise RuntimeError(
                f"the pynq backend needs the 'pynq' package (it ships with PYNQ images): {err}"
            ) from None
        self.overlay = pynq.Overlay(str(bitstream))
        self.dma = self._find_dma(self.overlay)
        self.in_buffer = pynq.allocate(shape=(words_in,), dtype=np.int32)
        self.out_buffer = pynq.allocate(shape=(words_out,), dtype=np.int32)

    @staticmethod
    def _find_dma(overlay):
        names = [name for name, ip in overlay.ip_dict.items() if "axi_dma" in ip.get("type", "")]
        if not names:
            raise RuntimeError(f"no AXI DMA in the overlay (IPs: {sorted(overlay.ip_dict)})")
        dma = overlay
        for part in names[0].split("/"):
            dma = getattr(dma, part)
        return dma

    def transfer(self, words: np.ndarray) -> np.ndarray:
        self.in_buffer[:] = words
        self.dma.sendchannel.transfer(self.in_buffer)
        self.dma.recvchannel.transfer(self.out_buffer)
        self.dma.sendchannel.wait()
        self.dma.recvchannel.wait()
        return np.array(self.out_buffer, dtype=np.int32, copy=True)  # never the live DMA buffer

    def close(self):
        self.in_buffer.freebuffer()
        self.out_buffer.freebuffer()
        self.in_buffer = self.out_buffer = None  # XRT buffers are released when unreferenced


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
            return PynqBackend(m.verified_path("bitstream", self.directory), m.words_in, m.words_out)
        return EmulatedBackend(m.verified_path("emulator", self.directory), m.words_in, m.words_out)

    @property
    def frames_per_call(self) -> int:
        return self.manifest.frames_per_call

    def reset(self) -> None:
        """Zero the LSTM state before the next call (a new clip)."""
        self._reset_pending = True

    def run(self, features) -> np.ndarray:
        """One call: (frames_per_call, n_features) floats -> the model output (a new array)."""
        m = self.manifest
        words = encode_input(features, m.input_type, m.frames_per_call, m.n_features, self._reset_pending)
        self._reset_pending = False
        return decode_output(self.backend.transfer(words), m.output_type).reshape(m.output_shape)

    def run_clip(self, clip) -> np.ndarray:
        """A whole clip (frames, n_features) from a zero state: one output per call.

        A frame-by-frame (stateful) overlay gets one call per frame; a whole-clip overlay one call.
        """
        clip = np.asarray(clip)
        per_call = self.frames_per_call
        if clip.ndim != 2 or clip.shape[0] % per_call:
            raise ValueError(
                f"a clip must be (frames, features) with frames a multiple of {per_call}, got {clip.shape}"
            )
        if clip.shape[0] != per_call and not self.manifest.stateful:
            raise ValueError(f"this overlay is not stateful: a clip must have exactly {per_call} frames")
        self.reset()
        return np.stack([self.run(clip[t : t + per_call]) for t in range(0, clip.shape[0], per_call)])

    def close(self) -> None:
        self.backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _pynq_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("pynq") is not None
