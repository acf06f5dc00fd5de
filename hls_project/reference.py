"""Bit-accurate NumPy models of the HLS kernels (FINN-style ``execute`` references).

Everything is integer arithmetic on raw fixed-point values (``fixedpoint``): products and
sums are exact in ``int64`` and the only rounding is ``requantize_raw`` where the kernel assigns
to a narrower type. The C-simulation must equal these functions with ``==``.

Profiling (``hls_project.profile``): inside ``with recording(recorder):`` every rounding site
reports its exact value first, ``recorder.record(name, raw, frac, out_type)`` (``out_type`` None for
an exact value that is never rounded); the results do not change. With no recorder active (the
default) each site costs one ``ContextVar.get``.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np

from fixedpoint import FixedType, requantize_raw, round_shift
from hls_project.lut import ActivationTable
from models.activation_pwl import PWLActivation
from models.quantization import LSTMTypes


@dataclass(frozen=True)
class LSTMCellActivations:
    """The three activations of the gate block: exact lookup tables (``hls_project.lut``) or
    piecewise-linear segments (``models.activation_pwl``), both ``evaluate_raw(raw) -> raw``."""

    gate: ActivationTable | PWLActivation  # recurrent_activation over the accumulator grid (i, f, o)
    candidate: ActivationTable | PWLActivation  # activation over the accumulator grid (g)
    state: ActivationTable | PWLActivation  # activation over the state grid (tanh(c))

    @property
    def piecewise_linear(self) -> bool:
        return isinstance(self.gate, PWLActivation)


GATES = ("gate i", "gate f", "candidate g", "gate o")  # the order of the 4H pre-activations
_RECORDER: ContextVar = ContextVar("reference_recorder", default=None)


@contextmanager
def recording(recorder):
    """Report every intermediate of the reference functions run inside to ``recorder`` (an object
    with ``record(name, raw, frac, out_type)``, e.g. ``hls_project.profile.Recorder``)."""
    token = _RECORDER.set(recorder)
    try:
        yield recorder
    finally:
        _RECORDER.reset(token)


def record(name: str, raw, frac: int, out_type: FixedType | None = None) -> None:
    """Report exact raw values (``frac`` fractional bits) about to be rounded into ``out_type`` (None:
    kept exact) to the active recorder, if any."""
    recorder = _RECORDER.get()
    if recorder is not None:
        recorder.record(name, raw, frac, out_type)


def requantize_recorded(name: str, raw, frac_in: int, out: FixedType) -> np.ndarray:
    """``requantize_raw``, the exact value reported as ``name`` first (``record``)."""
    record(name, raw, frac_in, out)
    return requantize_raw(raw, frac_in, out)


def aligned_sum(*terms):
    """Exact sum of raw values with different fractional bits: ``(raw, frac)`` pairs."""
    frac = max(f for _, f in terms)
    return sum(round_shift(raw, f - frac) for raw, f in terms), frac


def lstm_step(zx, zh, c, bias, types: LSTMTypes, activations: LSTMCellActivations):
    """One gate/state step on raw integers.

    zx: (batch, 4H) accumulator raw; zh: the recurrent map's ``(raw (batch, 4H), frac)``, None for
    fused families (h is inside zx already); c: (batch, H) state raw; bias: (4H,) raw.
    Returns the new ``(h, c)`` raw.
    """
    t = types
    terms = [(zx, t.accumulator.frac), (bias, t.bias.frac)] + ([] if zh is None else [zh])
    z, frac = aligned_sum(*terms)
    if _RECORDER.get() is not None:
        for gate, part in zip(GATES, np.split(z, 4, axis=-1), strict=True):
            record(f"preactivation {gate}", part, frac, t.accumulator)
    z = requantize_raw(z, frac, t.accumulator)
    z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
    i, f, o = (activations.gate.evaluate_raw(v) for v in (z_i, z_f, z_o))
    g = activations.candidate.evaluate_raw(z_c)
    c_sum, frac = aligned_sum((f * c, t.activation.frac + t.state.frac), (i * g, 2 * t.activation.frac))
    c_new = requantize_recorded("cell state c", c_sum, frac, t.state)
    h_new = requantize_recorded("output h", o * activations.state.evaluate_raw(c_new), 2 * t.activation.frac, t.state)
    return h_new, c_new


def lstm_sequence(x, input_map, recurrent_map, bias, types, activations, state=None, return_sequences=False):
    """Run a layer over ``x`` (batch, T, n_in) given as raw input values.

    ``input_map(x_t, h)`` maps (batch, n_in) input raw and the state -> (batch, 4H) accumulator
    raw (the family's part; only fused families use ``h``); ``recurrent_map(h)`` -> ``(raw, frac)``
    of the recurrent part, or None for fused families.
    ``state``: optional initial ``(h, c)`` raw, for stateful streaming. Returns
    ``(outputs, (h, c))`` with outputs (batch, H) or (batch, T, H), state raw.
    """
    batch, steps, _ = x.shape
    units = bias.shape[0] // 4
    h, c = state if state is not None else (np.zeros((batch, units), np.int64),) * 2
    outputs = []
    for step in range(steps):
        zh = None if recurrent_map is None else recurrent_map(h)
        if zh is not None:
            record("recurrent map", *zh)
        h, c = lstm_step(input_map(x[:, step], h), zh, c, bias, types, activations)
        outputs.append(h)
    out = np.stack(outputs, axis=1) if return_sequences else h
    return out, (h, c)


def staged_input_map(x, stages, types: LSTMTypes, frac: int):
    """A decomposed mat-vec on raw values, rounding to the accumulator after every stage.

    x: (batch, n_in) raw with ``frac`` fractional bits; ``stages``: ``(contract, core)`` pairs,
    ``contract(buffer, core)`` exact on int64 (``models.tt.contract_step``,
    ``models.ht.contract_step``), cores raw kernel integers. Returns (batch, 4H) accumulator raw.
    """
    buffer = np.asarray(x, np.int64)
    for step, (contract, core) in enumerate(stages):
        exact = contract(buffer, np.asarray(core, np.int64))
        buffer = requantize_recorded(f"input map step {step}", exact, frac + types.kernel.frac, types.accumulator)
        frac = types.accumulator.frac
    return buffer


def join_type(types: LSTMTypes) -> FixedType:
    """The type of ``[x_t; h_{t-1}]`` for fused families: holds both exactly."""
    frac = max(types.input.frac, types.state.frac)
    integer = max(types.input.integer, types.state.integer)
    return FixedType(integer + frac, integer)


def join_raw(x, h, n_join: int, types: LSTMTypes):
    """``[x; h; 0...]`` as join-type raw integers, zero-padded to ``n_join``."""
    frac = join_type(types).frac
    parts = [round_shift(x, types.input.frac - frac), round_shift(h, types.state.frac - frac)]
    joined = np.concatenate(parts, axis=-1)
    return np.pad(joined, [(0, 0), (0, n_join - joined.shape[-1])])
