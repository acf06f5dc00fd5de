"""Overflow and precision profiling: every variable of every kernel on calibration data.

The bit-accurate reference (``hls_project.execute``) runs on the data inside
``hls_project.reference.recording``, so every rounding site reports its exact value before it is
rounded and saturated (each contraction step of a decomposed input map, a block-circulant map's
output, the exact recurrent map, the four gate pre-activations, the cell state ``c`` and the
output ``h``); the frame's rounding into the input type is recorded here. The stock layers that
follow (hls4ml ``Dense`` / ``QDense`` heads) are computed in float64 from the hls4ml graph's
weights: the exact accumulator against ``accum_t`` and the output against ``result_t`` (their
overflow is hls4ml's default, wrap, unless configured otherwise: counted as wraps).

Per variable: values seen, the exact range, the integer bits it needs at the configured
fractional bits, how many values fall outside the configured type after rounding (saturated, or
wrapped for a wrapping type), and the suggested type (same fractional bits, the integer bits
needed). hls4ml's own ``hls4ml.model.profiling`` plots layer outputs and weights against their
types with pandas and seaborn (not in this environment); it sees no variable inside our kernels,
so this module does the job for them and for the stock layers' accumulators alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fixedpoint import FixedType, round_shift
from hls_project.names import keras_name
from hls_project.reference import recording

STOCK_DENSE = ("Dense", "QDense")


@dataclass
class Variable:
    """What one variable of one layer took on: raw extremes at its fractional bits ``frac`` (after
    rounding into ``out_type``'s grid, or exact when ``out_type`` is None) and out-of-range counts."""

    layer: str
    name: str
    out_type: FixedType | None
    overflow: str = "saturate"  # or "wrap" (an hls4ml type with AP_WRAP), "exact" (never rounded)
    count: int = 0
    frac: int = 0
    low: int = 0  # raw, at ``frac``
    high: int = 0
    outside: int = 0  # values outside out_type's range (saturated or wrapped)

    def add(self, raw, frac: int) -> None:
        raw = np.asarray(raw, np.int64)
        if raw.size == 0:
            return
        if self.out_type is not None:
            raw, frac = round_shift(raw, frac - self.out_type.frac), self.out_type.frac
            self.outside += int(np.count_nonzero((raw < self.out_type.min_raw) | (raw > self.out_type.max_raw)))
        low, high = int(raw.min()), int(raw.max())
        if self.count and frac != self.frac:
            raise ValueError(f"layer '{self.layer}': {self.name} recorded at {frac} and {self.frac} fractional bits")
        self.low, self.high = (low, high) if not self.count else (min(self.low, low), max(self.high, high))
        self.count, self.frac = self.count + raw.size, frac

    @property
    def needed_width(self) -> int:
        """Bits of the narrowest type (signed if any value is negative) holding every value seen."""
        symmetric = self.out_type is not None and self.out_type.symmetric
        if self.low < 0:
            return max(int(self.high).bit_length(), int(-self.low - (0 if symmetric else 1)).bit_length()) + 1
        signed = self.out_type is None or self.out_type.signed
        return max(int(self.high).bit_length() + signed, 1 + signed)

    @property
    def suggested(self) -> FixedType:
        """The configured type with the integer bits the values need (same fractional bits)."""
        signed = self.low < 0 or self.out_type is None or self.out_type.signed
        symmetric = self.out_type is not None and self.out_type.symmetric
        return FixedType(self.needed_width, self.needed_width - self.frac, signed, symmetric and signed)

    def to_dict(self) -> dict:
        lsb = 2.0**-self.frac
        return {
            "layer": self.layer,
            "variable": self.name,
            "type": None if self.out_type is None else self.out_type.cpp(),
            "overflow": self.overflow,
            "values": self.count,
            "min": self.low * lsb,
            "max": self.high * lsb,
            "integer_bits": None if self.out_type is None else self.out_type.integer,
            "needed_integer_bits": self.suggested.integer,
            "outside": self.outside,
            "suggested": self.suggested.cpp(),
        }


@dataclass
class Recorder:
    """Collects ``Variable`` statistics; ``layer`` names the layer the next records belong to."""

    layer: str = ""
    variables: dict = field(default_factory=dict)  # (layer, name) -> Variable

    def record(self, name: str, raw, frac: int, out_type: FixedType | None, overflow: str = "saturate") -> None:
        key = (self.layer, name)
        if key not in self.variables:
            self.variables[key] = Variable(self.layer, name, out_type, "exact" if out_type is None else overflow)
        self.variables[key].add(raw, frac)

    def record_floats(self, name: str, values, out_type: FixedType, overflow: str = "saturate") -> None:
        """Float values (exact on a finer grid, or the model's float input) rounded into ``out_type``."""
        scaled = np.rint(np.asarray(values, np.float64) * 2.0**out_type.frac)
        self.record(name, scaled.astype(np.int64), out_type.frac, out_type, overflow)


@dataclass
class ProfileReport:
    """The variables of a profiling run, in the order they were first seen."""

    variables: list
    clips: int
    frames: int

    @property
    def overflowing(self) -> list:
        return [v for v in self.variables if v.outside]

    def to_dict(self) -> dict:
        return {"clips": self.clips, "frames": self.frames, "variables": [v.to_dict() for v in self.variables]}

    def write_json(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def table(self) -> str:
        header = ["layer", "variable", "type", "min", "max", "int bits", "needs", "outside", "suggested"]
        rows = []
        for v in self.variables:
            d = v.to_dict()
            outside = f"{d['outside']:,} {'wrapped' if v.overflow == 'wrap' else 'saturated'}" if d["outside"] else "0"
            rows.append(
                [
                    v.layer,
                    v.name,
                    d["type"] or "exact",
                    f"{d['min']:.6g}",
                    f"{d['max']:.6g}",
                    "-" if d["integer_bits"] is None else str(d["integer_bits"]),
                    str(d["needed_integer_bits"]),
                    outside if v.out_type is not None else "-",
                    "-" if v.out_type is None else d["suggested"],
                ]
            )
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
        return "\n".join(lines)

    def warnings(self) -> list:
        """One line per variable with values outside its configured type (the counts and the fix)."""
        return [
            f"layer '{v.layer}': {v.name}: {v.outside:,} of {v.count:,} values outside {v.out_type.cpp()} "
            f"({'wrapped' if v.overflow == 'wrap' else 'saturated'}; range [{v.to_dict()['min']:.6g}, "
            f"{v.to_dict()['max']:.6g}] needs {v.suggested.integer} integer bits: {v.suggested.cpp()})"
            for v in self.overflowing
        ]


def model_calls(model, x) -> np.ndarray:
    """Calibration clips ``x`` (clips, frames, features) cut into the model's calls:
    ``(clips, calls, frames per call, features)``; a stateful layer carries its state across a clip's calls."""
    x = np.asarray(x, np.float32)
    _, per_call, features = model.input_shape
    if x.ndim != 3 or x.shape[2] != features:
        raise ValueError(
            f"calibration data must be (clips, frames, {features}) for model '{model.name}', got {x.shape}"
        )
    if x.shape[1] % per_call:
        raise ValueError(f"calibration clips of {x.shape[1]} frames do not split into calls of {per_call} frames")
    return x.reshape(x.shape[0], x.shape[1] // per_call, per_call, features)


def keras_weight(layer, name: str) -> np.ndarray:
    """A Dense layer's ``kernel`` or ``bias`` as Keras computes with it (through a QDense's quantizer)."""
    quantizer = getattr(layer, f"{name}_quantizer_internal", None)
    weight = getattr(layer, name)
    return np.asarray((weight if quantizer is None else quantizer(weight)).numpy(), np.float64)


def on_grid(values, precision) -> np.ndarray:
    """Float values assigned to an hls4ml fixed-point type (truncated for ``AP_TRN``, else rounded),
    before any overflow handling."""
    from hls4ml.model.types import RoundingMode

    scaled = np.asarray(values, np.float64) * 2.0 ** (precision.width - precision.integer)
    rounded = np.floor(scaled) if precision.rounding_mode == RoundingMode.TRN else np.rint(scaled)
    return rounded * 2.0 ** (precision.integer - precision.width)


def stock_dense(recorder: Recorder, node, layer, inputs) -> np.ndarray:
    """An hls4ml ``Dense`` node on float inputs (the Keras layer's weights on the node's weight and
    bias types): records the exact accumulator against ``accum_t`` and the output against
    ``result_t``, before the layer's activation (hls4ml makes it a node of its own). Returns the
    output on ``result_t``'s grid (float64; saturated, or wrapped for a wrapping type)."""
    from hls4ml.model.types import SaturationMode

    from fixedpoint.hls_types import from_hls4ml

    weights = on_grid(keras_weight(layer, "kernel"), node.get_weights("weight").type.precision)
    bias = on_grid(keras_weight(layer, "bias"), node.get_weights("bias").type.precision)
    accumulator = np.asarray(inputs, np.float64) @ weights + bias
    recorder.layer = node.name
    for name, precision in [
        ("accumulator", node.get_attr("accum_t").precision),
        ("output", node.get_output_variable().type.precision),
    ]:
        wraps = precision.saturation_mode == SaturationMode.WRAP
        ftype = from_hls4ml(precision, rounding_matters=False)
        recorder.record_floats(name, on_grid(accumulator, precision), ftype, "wrap" if wraps else "saturate")
    raw = ftype.to_raw(on_grid(accumulator, precision)) if not wraps else wrap_raw(accumulator, ftype)
    return ftype.from_raw(raw)


def wrap_raw(values, ftype: FixedType) -> np.ndarray:
    """Float values on ``ftype``'s grid as the raw integers of a wrapping (``AP_WRAP``) type."""
    raw = np.rint(np.asarray(values, np.float64) * 2.0**ftype.frac).astype(np.int64) - ftype.min_raw
    return raw % (1 << ftype.width) + ftype.min_raw


def profile(model, x, hls_model=None, batch: int = 64, progress: bool = True) -> ProfileReport:
    """Run the bit-accurate reference of ``model`` on calibration clips ``x`` (clips, frames,
    features; floats) and return every variable's statistics.

    Supported graphs: the model input, then family layers (stacked through their sequences) and
    stock ``Dense`` / ``QDense`` layers, each reading the previous layer. ``hls_model``: the
    converted hls4ml graph for the stock layers' types (converted here, without writing or
    compiling, when None and the model has stock layers).
    """
    from tqdm import tqdm

    import hls_project
    from hls_project.families import FAMILY_LAYERS
    from models.quantization import LSTMTypes

    calls = model_calls(model, x)
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    stock = [layer for layer in layers if type(layer).__name__ in STOCK_DENSE]
    unknown = [layer.name for layer in layers if type(layer).__name__ not in (*FAMILY_LAYERS, *STOCK_DENSE)]
    if unknown:
        raise ValueError(f"profile: layers {unknown} of model '{model.name}' are neither a family layer nor Dense")
    if stock and hls_model is None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
            hls_model = hls_project.convert(model, tmp, echo=lambda *_: None)
    nodes = (  # by Keras name: convert renames layers whose names are not C++ identifiers
        {} if hls_model is None else {keras_name(hls_model, node.name): node for node in hls_model.get_layers()}
    )
    recorder = Recorder()
    starts = range(0, calls.shape[0], batch)
    for start in tqdm(starts, desc="profile", unit="batch", disable=not progress, ascii=True, mininterval=2.0):
        chunk = calls[start : start + batch]
        states = {}
        for call in range(chunk.shape[1]):
            values = chunk[:, call]
            for layer in layers:
                if type(layer).__name__ in STOCK_DENSE:
                    values = stock_dense(recorder, nodes[layer.name], layer, values)
                    continue
                recorder.layer = layer.name
                types = LSTMTypes.from_fixed_types(layer.cell.fixed_types, layer.name)
                recorder.record_floats("input x", values, types.input)  # the frame, rounded by execute
                with recording(recorder):
                    values, state = hls_project.execute(layer, values, states.get(layer.name))
                if layer.stateful:
                    states[layer.name] = state
    clips, n_calls, per_call = calls.shape[:3]
    return ProfileReport(list(recorder.variables.values()), clips=clips, frames=clips * n_calls * per_call)


def warn_on_saturation(model, hls_model, calibration, echo=print) -> ProfileReport:
    """Profile ``model`` on ``calibration`` clips and print a loud warning, with the counts, for every
    variable whose configured type saturates or wraps on them (what ``convert(..., calibration=x)`` calls)."""
    report = profile(model, calibration, hls_model, progress=False)
    lines = report.warnings()
    if lines:
        echo(f"[convert] WARNING: {len(lines)} variable(s) overflow their types on the calibration data:")
        for line in lines:
            echo(f"[convert] WARNING:   {line}")
    else:
        echo(f"[convert] calibration: no variable overflows its type ({report.frames:,} frames)")
    return report
