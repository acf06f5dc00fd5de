"""``host.Accelerator``: run an overlay from Python, on the board (PYNQ) or emulated here.

Imports only NumPy (and ``pynq`` lazily, on the board, through ``host.pynq_driver``). Every
backend moves the same 64-bit beats (``host.protocol``): the emulated one calls the accelerator
top compiled from the same C++ as the bitstream (``emulator/libaccel.so``), so its results equal
the C-simulation exactly; the Zynq one drives hls4ml's AXI DMA, the Alveo one the XRT kernel.

A backend has ``submit(beats, beats_out) -> ticket`` (start one transfer) and
``collect(ticket, timeout) -> beats`` (wait for it, return a copy of its output beats), so
``Accelerator.stream`` keeps two transfers in flight; ``transfer`` is one round trip.
"""

from __future__ import annotations

import ctypes
import shutil
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from host.manifest import Manifest, sha256_of
from host.protocol import decode_output, encode_input

BACKENDS = ("auto", "pynq", "emulated")
DEFAULT_TIMEOUT_S = 10.0  # a DMA or kernel that has not completed by then is an error
DEFAULT_BLOCK = 64  # model calls per transfer in ``stream``


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


@dataclass
class StreamStats:
    """What ``Accelerator.stream`` measured, one entry per transfer (block of calls).

    ``latency_s``: from the block's submission to its outputs being decoded (every frame of a
    block waits that long); ``backend_s``: time inside the backend's ``submit``/``collect``
    (device work and waiting on it); the rest of the wall time is host overhead (encoding,
    decoding, Python).
    """

    frames: list = field(default_factory=list)
    latency_s: list = field(default_factory=list)
    backend_s: float = 0.0
    wall_s: float = 0.0

    @property
    def total_frames(self) -> int:
        return int(sum(self.frames))

    def frame_latency_percentiles(self, percentiles=(50, 90, 99)) -> dict:
        """Per-frame latency (its block's) at each percentile, in seconds."""
        if not self.frames:
            return {p: float("nan") for p in percentiles}
        per_frame = np.repeat(np.asarray(self.latency_s), np.asarray(self.frames))
        return {p: float(np.percentile(per_frame, p)) for p in percentiles}

    @property
    def frames_per_s(self) -> float:
        return self.total_frames / self.wall_s if self.wall_s else float("nan")

    @property
    def host_overhead_per_frame_s(self) -> float:
        return (self.wall_s - self.backend_s) / self.total_frames if self.total_frames else float("nan")

    def summary(self) -> str:
        p = self.frame_latency_percentiles()
        return (
            f"{self.total_frames:,} frames in {len(self.frames):,} transfers, {self.frames_per_s:,.0f} frames/s; "
            f"per-frame latency p50 {p[50] * 1e3:.3f} ms, p90 {p[90] * 1e3:.3f} ms, p99 {p[99] * 1e3:.3f} ms; "
            f"host overhead {self.host_overhead_per_frame_s * 1e6:.1f} us/frame"
        )


class Accelerator:
    """One overlay directory (``manifest.json`` + bitstream, xclbin and/or emulator library).

    ``backend``: ``"pynq"`` (the board: a Zynq bitstream behind an AXI DMA, or an Alveo
    ``.xclbin`` through XRT, whichever the manifest lists), ``"emulated"`` (the C++ here), or
    ``"auto"`` (the board when pynq and a bitstream or xclbin are there, else the emulator, with
    a notice on stderr). A backend that cannot be had is an error naming what is missing.
    ``timeout``: seconds a transfer may take before it is an error (``TimeoutError``).
    ``board`` / ``model``: when given, the overlay must have been built for that board / from
    that model file (its SHA-256), else ``ValueError``.
    """

    def __init__(
        self, overlay_dir, backend: str = "auto", *, timeout: float = DEFAULT_TIMEOUT_S, board=None, model=None
    ):
        self.directory = Path(overlay_dir)
        self.manifest = Manifest.load(self.directory)
        self._check_identity(board, model)
        self.timeout = float(timeout)
        self.backend = self._open_backend(backend)
        self._reset_pending = True
        self.stats = StreamStats()

    @classmethod
    def on_backend(cls, overlay_dir, backend, timeout: float = DEFAULT_TIMEOUT_S) -> Accelerator:
        """An accelerator on a backend opened elsewhere (the pynq drivers' ``run_clip``/``stream``)."""
        self = cls.__new__(cls)
        self.directory, self.manifest = Path(overlay_dir), Manifest.load(overlay_dir)
        self.timeout, self.backend, self._reset_pending, self.stats = float(timeout), backend, True, StreamStats()
        return self

    def _check_identity(self, board, model) -> None:
        m = self.manifest
        if board is not None and board != m.board:
            raise ValueError(f"{self.directory} was built for board {m.board!r}, not {board!r}: rebuild it for {board}")
        if model is not None and sha256_of(model) != m.model_sha256:
            raise ValueError(
                f"{self.directory} was built from another model (sha256 {m.model_sha256[:12]}...), not {model} "
                f"(sha256 {sha256_of(model)[:12]}...): rebuild the overlay from {model}"
            )

    def _open_backend(self, backend: str):
        m = self.manifest
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
        board_files = [role for role in ("bitstream", "xclbin") if role in m.files]
        if backend == "auto":
            if board_files and _pynq_available():
                backend = "pynq"
            else:
                why = "pynq is not installed" if board_files else "the overlay has no bitstream or xclbin"
                print(f"[host] {why}: running {self.directory} on the emulator (backend='emulated')", file=sys.stderr)
                backend = "emulated"
        if backend == "pynq":
            if not board_files:
                raise FileNotFoundError(
                    f"the manifest in {self.directory} lists no bitstream or xclbin (it has: {sorted(m.files)}): "
                    "run the vendor tools and 'python -m overlay collect', or use backend='emulated'"
                )
            try:
                from host import pynq_driver
            except ImportError as err:
                raise RuntimeError(
                    f"the pynq backend needs the 'pynq' package (PYNQ images ship it; on an Alveo host "
                    f"install it with XRT): {err}"
                ) from None
            return pynq_driver.open_backend(self.directory, m, self.timeout)
        library = m.verified_path("emulator", self.directory)
        return EmulatedBackend(library, m, m.verified_weights_dir(self.directory))

    @property
    def frames_per_call(self) -> int:
        return self.manifest.frames_per_call

    def reset(self) -> None:
        """Zero the LSTM state before the next call (a new clip)."""
        self._reset_pending = True

    def _encode(self, features) -> tuple:
        """(calls * frames_per_call, n_features) floats -> (input beats, calls); consumes the pending reset."""
        m = self.manifest
        beats = encode_input(
            features, m.input_type, m.frames_per_call, m.n_features, self._reset_pending, m.in_pack_values
        )
        self._reset_pending = False
        return beats, len(features) // m.frames_per_call

    def _decode(self, beats, calls: int) -> np.ndarray:
        m = self.manifest
        return decode_output(beats, m.output_type, calls, m.n_outputs, m.out_pack_values).reshape(
            calls, *m.output_shape
        )

    def _transfer(self, features) -> np.ndarray:
        """One DMA transfer of (calls * frames_per_call, n_features) floats: (calls, *output_shape)."""
        beats, calls = self._encode(features)
        try:
            return self._decode(self.backend.transfer(beats, self.manifest.beats_out(calls), self.timeout), calls)
        except BaseException:
            self._reset_pending = True  # the state is unknown until the next reset
            raise

    def stream_blocks(self, blocks, depth: int = 2):
        """Yield the outputs of each block of an iterable of (calls * frames_per_call, n_features)
        arrays, in order, one transfer per block, ``depth`` transfers in flight (2: double
        buffering; block t+1 moves while block t computes). The LSTM state runs on across blocks;
        it is reset first only if ``reset()`` was called (or nothing ran yet, or a transfer
        failed). Times every block into ``self.stats``."""
        m, pending = self.manifest, deque()
        start = time.perf_counter()
        try:
            for block in blocks:
                submitted = time.perf_counter()
                beats, calls = self._encode(block)
                backend_start = time.perf_counter()
                ticket = self.backend.submit(beats, m.beats_out(calls))
                self.stats.backend_s += time.perf_counter() - backend_start
                pending.append((ticket, calls, submitted))
                if len(pending) >= depth:
                    yield self._finish(*pending.popleft())
            while pending:
                yield self._finish(*pending.popleft())
        except BaseException:  # an error, or the consumer stopped early (GeneratorExit)
            self._reset_pending = True  # the state is unknown until the next reset
            self._drain(pending)
            raise
        finally:
            self.stats.wall_s += time.perf_counter() - start

    def _drain(self, pending: deque) -> None:
        """Collect (and drop) the transfers still in flight, so the backend is ready for the next."""
        for ticket, _, _ in pending:
            try:
                self.backend.collect(ticket, self.timeout)
            except Exception:  # noqa: BLE001 - already failing; the backend cleared what it could
                break

    def _finish(self, ticket, calls: int, submitted: float) -> np.ndarray:
        backend_start = time.perf_counter()
        beats = self.backend.collect(ticket, self.timeout)
        self.stats.backend_s += time.perf_counter() - backend_start
        out = self._decode(beats, calls)
        self.stats.frames.append(calls * self.frames_per_call)
        self.stats.latency_s.append(time.perf_counter() - submitted)
        return out

    def stream(self, frames, block: int = DEFAULT_BLOCK) -> np.ndarray:
        """One long clip (frames, n_features) from a zero state, ``block`` calls per transfer,
        double-buffered: (calls, *output_shape), one output per call, in order.

        The state is kept across the blocks (only the first transfer resets it); on a whole-clip
        (not stateful) overlay every call is a clip of its own. Per-block
        latencies, frames/s and host overhead are in ``self.stats`` (``.summary()``), reset here.
        """
        frames = self._check_clip(frames)
        if type(block) is not int or block < 1:
            raise ValueError(f"block must be a positive number of calls per transfer, got {block!r}")
        self.reset()
        self.stats = StreamStats()
        step = block * self.frames_per_call
        blocks = (frames[i : i + step] for i in range(0, len(frames), step))
        return np.concatenate(list(self.stream_blocks(blocks)))

    def run(self, features) -> np.ndarray:
        """One call: (frames_per_call, n_features) floats -> the model output (a new array)."""
        features = np.asarray(features, dtype=np.float64)
        expected = (self.frames_per_call, self.manifest.n_features)
        if features.shape != expected:
            raise ValueError(f"expected features of shape {expected}, got {features.shape}")
        return self._transfer(features)[0]

    def _check_clip(self, clip) -> np.ndarray:
        clip = np.asarray(clip)
        per_call = self.frames_per_call
        if clip.ndim == 2 and not clip.shape[0]:
            raise ValueError(f"a clip needs at least one frame (a multiple of {per_call}), got {clip.shape}")
        if clip.ndim != 2 or clip.shape[0] % per_call:
            raise ValueError(
                f"a clip must be (frames, features) with frames a multiple of {per_call}, got {clip.shape}"
            )
        return clip

    def run_clip(self, clip) -> np.ndarray:
        """A whole clip (frames, n_features) from a zero state, in one DMA transfer: one output per call.

        A frame-by-frame (stateful) overlay makes one call per frame; a whole-clip overlay one call.
        """
        clip = self._check_clip(clip)
        if clip.shape[0] != self.frames_per_call and not self.manifest.stateful:
            raise ValueError(f"this overlay is not stateful: a clip must have exactly {self.frames_per_call} frames")
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
