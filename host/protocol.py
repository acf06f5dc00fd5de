"""The accelerator's stream protocol, shared by the board driver and the emulator (NumPy only).

One AXI-stream beat is 64 bits (the width of the Zynq HP ports). One DMA transfer carries
``calls`` model calls (several frames per transfer for a frame-by-frame, stateful overlay):

* input, ``1 + calls * in_beats`` beats, TLAST on the last: beat 0 is the control word (bit 0:
  zero the state of stateful LSTM layers first; bits 16..47: ``calls``, at least 1: the top
  serves 0 as 1, since it runs the model once per call); then, call by call,
  the call's values (frame after frame) as raw integers of the input type, from the low bits up,
  in the model's packs (``Packing``: the top's reader hands on one pack per beat, so it runs at
  II=1 whatever the pack's size; a pack wider than a beat spans several), each call starting on
  a new beat;
* output, ``calls * out_beats + 1`` beats, TLAST on the last: the output values of every call,
  packed the same way in the model's output packs (a value is never split or truncated: widths
  go up to 64 bits), then a status beat (bits 0..31: calls completed; bit 32: the input ended
  early; bit 33: the input went on past its end and was drained). After a malformed transfer the
  top is ready for the next.

Floats are rounded to the input type exactly as the C-simulation rounds them (half to even,
saturate), so the board, the emulator and ``hls_model.predict`` see the same integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fixedpoint import FixedType

BEAT_BITS = 64
CONTROL_RESET = 1
CALLS_SHIFT = 16
MAX_CALLS = (1 << 32) - 1
STATUS_SHORT = 1 << 32
STATUS_LONG = 1 << 33


def values_per_beat(ftype: FixedType) -> int:
    """The most values of ``ftype`` one beat can hold."""
    return BEAT_BITS // ftype.width


@dataclass(frozen=True)
class Packing:
    """How values of ``width`` bits travel: in packs of ``pack`` values (the model's stream
    element, which the top's reader writes or the writer reads whole), each pack on
    ``beats_per_pack`` beats of ``per_beat`` values (the last beat of a pack may hold fewer), a
    pack never sharing a beat with the next. A pack that fits a beat is one beat: the reader hands
    on a whole beat per cycle. Unused bits and slots are zero.

    ``pack`` None: a pack is a full beat (``values_per_beat``), the densest packing."""

    width: int
    pack: int

    @classmethod
    def of(cls, ftype: FixedType, pack: int | None = None) -> Packing:
        if ftype.width > BEAT_BITS:
            raise ValueError(f"a {ftype.width}-bit value does not fit a {BEAT_BITS}-bit beat")
        pack = values_per_beat(ftype) if pack is None else int(pack)
        if pack < 1:
            raise ValueError(f"a pack holds at least one value, got {pack}")
        return cls(ftype.width, pack)

    @property
    def beats_per_pack(self) -> int:
        return -(-self.pack // (BEAT_BITS // self.width))

    @property
    def per_beat(self) -> int:
        """Values on each beat of a pack (balanced: the last beat of a pack holds the rest)."""
        return -(-self.pack // self.beats_per_pack)

    def packs(self, n_values: int) -> int:
        return -(-n_values // self.pack)

    def beats(self, n_values: int) -> int:
        """Beats that carry ``n_values`` values (a call: it starts on a new beat)."""
        return self.packs(n_values) * self.beats_per_pack


def beats_for(n_values: int, ftype: FixedType, pack_values: int | None = None) -> int:
    """Beats that carry ``n_values`` values of ``ftype`` in packs of ``pack_values`` (``Packing``)."""
    return Packing.of(ftype, pack_values).beats(n_values)


def _mask(width: int) -> np.uint64:
    return np.uint64((1 << width) - 1 if width < 64 else 2**64 - 1)


def pack(raw, ftype: FixedType, pack_values: int | None = None) -> np.ndarray:
    """(calls, n) raw integers -> (calls * beats_for(n)) uint64 beats, in packs of ``pack_values``
    (``Packing``; None: a full beat per pack)."""
    raw = np.asarray(raw, dtype=np.int64)
    calls, n = raw.shape
    packing = Packing.of(ftype, pack_values)
    packs, per_beat, width = packing.packs(n), packing.per_beat, ftype.width
    values = np.zeros((calls, packs * packing.pack), dtype=np.uint64)
    values[:, :n] = raw.astype(np.uint64) & _mask(width)
    # (calls, packs, pack) -> each pack's slots on its beats: (calls, packs, beats_per_pack * per_beat)
    slots = np.zeros((calls, packs, packing.beats_per_pack * per_beat), dtype=np.uint64)
    slots[:, :, : packing.pack] = values.reshape(calls, packs, packing.pack)
    shifts = (np.arange(per_beat, dtype=np.uint64) * np.uint64(width)).reshape(1, 1, per_beat)
    beats = slots.reshape(calls, -1, per_beat) << shifts
    return np.bitwise_or.reduce(beats, axis=2).reshape(-1)


def unpack(beats, n: int, ftype: FixedType, pack_values: int | None = None) -> np.ndarray:
    """uint64 beats of ``calls`` calls -> (calls, n) raw integers of ``ftype`` (sign-extended), in
    packs of ``pack_values`` as ``pack`` wrote them."""
    packing = Packing.of(ftype, pack_values)
    packs, per_beat, width = packing.packs(n), packing.per_beat, ftype.width
    beats = np.asarray(beats, dtype=np.uint64).reshape(-1, packing.beats(n), 1)
    shifts = (np.arange(per_beat, dtype=np.uint64) * np.uint64(width)).reshape(1, 1, per_beat)
    slots = ((beats >> shifts) & _mask(width)).reshape(beats.shape[0], packs, -1)
    fields = slots[:, :, : packing.pack].reshape(beats.shape[0], -1)[:, :n]
    if ftype.signed and width < 64:
        sign = np.uint64(1 << (width - 1))
        return (fields ^ sign).astype(np.int64) - np.int64(1 << (width - 1))
    return fields.astype(np.int64)


def encode_input(
    features, input_type: FixedType, frames: int, n_features: int, reset: bool, pack_values: int | None = None
) -> np.ndarray:
    """(calls * frames, n_features) floats -> uint64 beats ``[control, packed values...]``, in packs
    of ``pack_values`` (the model's input stream element; ``Packing``)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] != n_features or len(features) % frames or not len(features):
        raise ValueError(f"expected features of shape (calls * {frames}, {n_features}), got {features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError("features contain NaN or infinity")
    calls = len(features) // frames
    if calls > MAX_CALLS:
        raise ValueError(f"{calls} calls in one transfer: at most {MAX_CALLS}")
    control = np.uint64((calls << CALLS_SHIFT) | (CONTROL_RESET if reset else 0))
    raw = input_type.to_raw(features.reshape(calls, frames * n_features))
    return np.concatenate([[control], pack(raw, input_type, pack_values)]).astype(np.uint64)


def decode_output(beats, output_type: FixedType, calls: int, n_out: int, pack_values: int | None = None) -> np.ndarray:
    """uint64 output beats of ``calls`` calls -> (calls, n_out) float64 values, in packs of
    ``pack_values``; a status beat that reports a malformed transfer or missing calls raises
    ``RuntimeError``."""
    beats = np.asarray(beats, dtype=np.uint64)
    expected = calls * beats_for(n_out, output_type, pack_values) + 1
    if len(beats) != expected:
        raise RuntimeError(f"the accelerator returned {len(beats)} beats, expected {expected}")
    status = int(beats[-1])
    if status & (STATUS_SHORT | STATUS_LONG) or status & 0xFFFFFFFF != calls:
        raise RuntimeError(
            f"the accelerator reports a malformed transfer: {status & 0xFFFFFFFF} of {calls} calls done"
            f"{', input ended early' if status & STATUS_SHORT else ''}"
            f"{', input too long' if status & STATUS_LONG else ''}"
        )
    return output_type.from_raw(unpack(beats[:-1], n_out, output_type, pack_values))
