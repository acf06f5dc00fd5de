"""``host.Accelerator``: run an overlay from Python on a backend, on the board (PYNQ) or emulated here.

Imports only NumPy and the standard library, and no backend: ``host.open(folder, backend)``
(``host.backends``) chooses and opens the backend and hands it to ``Accelerator``; the pynq
drivers (``host.pynq_driver``) build one on themselves. Every backend moves the same 64-bit
beats (``host.protocol``): the emulated one (``host.emulator``) calls the accelerator top compiled
from the same C++ as the bitstream, so its results equal the C-simulation exactly; the Zynq one
drives hls4ml's AXI DMA, the Alveo one the XRT kernel.

A backend has ``name``, ``transfers`` (a count), ``transfer(beats, beats_out, timeout) -> beats``
(one round trip), ``submit(beats, beats_out) -> ticket`` (start one transfer),
``collect(ticket, timeout) -> beats`` (wait for it, return a copy of its output beats) and
``close()``, so ``Accelerator.stream`` keeps two transfers in flight.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from host.manifest import Manifest
from host.protocol import decode_output, encode_input

DEFAULT_TIMEOUT_S = 10.0  # a DMA or kernel that has not completed by then is an error
DEFAULT_BLOCK = 64  # model calls per transfer in ``stream``


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
    """One overlay directory (``manifest.json`` + bitstream, xclbin and/or emulator library) on an
    open ``backend``; ``host.open(folder, backend="auto")`` chooses and opens the backend.

    ``timeout``: seconds a transfer may take before it is an error (``TimeoutError``);
    ``manifest``: the folder's, when already loaded (else read from ``directory``).
    """

    def __init__(self, directory, backend, *, timeout: float = DEFAULT_TIMEOUT_S, manifest: Manifest | None = None):
        if isinstance(backend, str):
            raise TypeError(
                f"Accelerator takes an open backend, not the name {backend!r}: "
                f"host.open({str(directory)!r}, backend={backend!r}) chooses and opens one"
            )
        self.directory = Path(directory)
        self.manifest = Manifest.load(self.directory) if manifest is None else manifest
        self.timeout = float(timeout)
        self.backend = backend
        self._reset_pending = True
        self.stats = StreamStats()

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
