"""Fixed-point types and lookup tables against independent references (QKeras, fractions)."""

from fractions import Fraction

import numpy as np
import pytest
from qkeras import quantized_bits

from fixedpoint import FixedType, requantize_raw, round_shift
from hls_project.lut import activation_table
from host import protocol
from models.quantization import fixed_type_of


@pytest.mark.parametrize(
    "bits, integer, keep_negative, symmetric",
    [(8, 0, True, False), (8, 3, True, False), (6, 2, True, True), (10, 1, False, False), (16, 5, True, False)],
)
def test_fixed_type_rounds_like_qkeras(bits, integer, keep_negative, symmetric, rng):
    quantizer = quantized_bits(bits, integer, symmetric=symmetric, keep_negative=keep_negative, alpha=1)
    ftype = fixed_type_of(quantizer, "q")
    span = 2.0 ** (integer + 1)
    x = rng.uniform(-span, span, 5000)
    # include exact ties (half an LSB) to check round-half-to-even
    x[:200] = (rng.integers(-100, 100, 200) + 0.5) * ftype.lsb
    x = x.astype(np.float32)
    np.testing.assert_array_equal(ftype.quantize(x), np.asarray(quantizer(x), dtype=np.float64))


def test_unsupported_quantizers_are_named():
    with pytest.raises(ValueError, match="bias_quantizer.*alpha"):
        fixed_type_of(quantized_bits(8, 0, alpha="auto"), "bias_quantizer")
    with pytest.raises(ValueError, match="state_quantizer"):
        fixed_type_of("quantized_relu(4)", "state_quantizer")


def _round_half_even(value: Fraction) -> int:
    floor = value.numerator // value.denominator
    rest = value - floor
    return floor + (rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1))


def test_round_shift_is_exact_round_half_even(rng):
    raw = rng.integers(-(2**40), 2**40, 3000)
    for shift in (1, 3, 7, 20):
        expected = [_round_half_even(Fraction(int(v), 2**shift)) for v in raw]
        np.testing.assert_array_equal(round_shift(raw, shift), expected)
    np.testing.assert_array_equal(round_shift(raw, -2), raw * 4)


def test_requantize_saturates():
    out = FixedType(8, 2)
    np.testing.assert_array_equal(requantize_raw([10**9, -(10**9), 0], 10, out), [127, -128, 0])


@pytest.mark.parametrize("function", ["sigmoid", "tanh"])
@pytest.mark.parametrize(
    "in_type, out_type", [(FixedType(12, 5), FixedType(10, 1)), (FixedType(8, 4), FixedType(6, 1, signed=True))]
)
def test_table_is_exact_on_the_whole_input_grid(function, in_type, out_type):
    table = activation_table(function, in_type, out_type)
    raw = np.arange(in_type.min_raw, in_type.max_raw + 1)
    x = in_type.from_raw(raw)
    exact = 1.0 / (1.0 + np.exp(-x)) if function == "sigmoid" else np.tanh(x)
    np.testing.assert_array_equal(table.lookup(raw), out_type.to_raw(exact))
    assert table.size < len(raw)  # clamping did shorten it


def beats_by_bits(raw_calls, ftype, pack_values=None):
    """Packing by Python integers, bit by bit (an independent reference for ``host.protocol.pack``):
    a call's values in packs of ``pack_values`` (None: as many as fit a beat); a pack on as few
    beats as can hold its values, the values spread evenly (the last beat of a pack the fewest), value j
    of a beat at bits j * width; each pack and each call starts a beat."""
    fit = 64 // ftype.width
    pack_values = pack_values or fit
    beats_per_pack = -(-pack_values // fit)
    per_beat = -(-pack_values // beats_per_pack)
    beats = []
    for call in raw_calls:
        for start in range(0, len(call), pack_values):
            words = [0] * beats_per_pack
            for slot, value in enumerate(call[start : start + pack_values]):
                words[slot // per_beat] |= (int(value) % (1 << ftype.width)) << ((slot % per_beat) * ftype.width)
            beats += words
    return np.array(beats, dtype=np.uint64)


@pytest.mark.parametrize(
    "ftype", [FixedType(9, 2), FixedType(10, 3, signed=False), FixedType(16, 4), FixedType(33, 5), FixedType(64, 20)]
)
@pytest.mark.parametrize("pack_values", [None, 1, 5, 13])
def test_packing_equals_a_bit_by_bit_reference_and_round_trips(ftype, pack_values, rng):
    raw = rng.integers(ftype.min_raw, ftype.max_raw, (3, 13), endpoint=True, dtype=np.int64)
    raw[0, :2] = ftype.min_raw, ftype.max_raw
    beats = protocol.pack(raw, ftype, pack_values)
    np.testing.assert_array_equal(beats, beats_by_bits(raw, ftype, pack_values))
    assert len(beats) == 3 * protocol.beats_for(13, ftype, pack_values)
    np.testing.assert_array_equal(protocol.unpack(beats, 13, ftype, pack_values), raw)


@pytest.mark.parametrize(
    "width, pack_values, beats_per_pack", [(9, 6, 1), (9, 7, 1), (9, 8, 2), (16, 11, 3), (64, 3, 3)]
)
def test_a_pack_that_fits_a_beat_is_one_beat(width, pack_values, beats_per_pack):
    """The top's reader hands on one pack per beat (II=1): a frame of 57,600 nine-bit values in
    packs of 6 is 9,600 beats; a pack wider than a beat spans the fewest beats that hold it."""
    packing = protocol.Packing.of(FixedType(width, 2), pack_values)
    assert packing.beats_per_pack == beats_per_pack
    assert packing.per_beat * width <= 64
    assert packing.beats(57_600) == -(-57_600 // pack_values) * beats_per_pack
    with pytest.raises(ValueError, match="at least one"):
        protocol.Packing.of(FixedType(width, 2), 0)


def test_protocol_round_trip_and_errors():
    in_type, out_type = FixedType(10, 3), FixedType(12, 4)
    features = np.array([[0.3, -5.0, 100.0], [1.0, 2.0, 3.0]])
    beats = protocol.encode_input(features, in_type, 1, 3, reset=True)
    assert beats.dtype == np.uint64 and beats[0] == 1 | (2 << 16)  # reset, two calls
    np.testing.assert_array_equal(protocol.unpack(beats[1:], 3, in_type), in_type.to_raw(features))
    assert protocol.unpack(beats[1:], 3, in_type)[0, 2] == in_type.max_raw  # saturated
    values = np.array([[-1.5, 2.25]])
    status = np.uint64(1)  # one call done
    output = np.append(protocol.pack(out_type.to_raw(values), out_type), status)
    np.testing.assert_array_equal(protocol.decode_output(output, out_type, 1, 2), values)
    for bad_status, message in [(protocol.STATUS_SHORT, "input ended early"), (protocol.STATUS_LONG | 1, "too long")]:
        output[-1] = np.uint64(bad_status)
        with pytest.raises(RuntimeError, match=message):
            protocol.decode_output(output, out_type, 1, 2)
    with pytest.raises(RuntimeError, match="returned 1 beats, expected 2"):
        protocol.decode_output(output[1:], out_type, 1, 2)
    with pytest.raises(ValueError, match="shape"):
        protocol.encode_input(np.zeros((3, 3)), in_type, 2, 3, reset=False)
    with pytest.raises(ValueError, match="NaN"):
        protocol.encode_input(np.array([[np.nan, 0, 0]]), in_type, 1, 3, reset=False)


@pytest.mark.parametrize(
    "ftype", [FixedType(9, 2), FixedType(8, 1, symmetric=True), FixedType(10, 3, signed=False), FixedType(16, -2)]
)
def test_hls4ml_type_conversion_round_trips_and_rounds_like_ap_fixed(ftype):
    import hls4ml

    from fixedpoint.hls_types import from_hls4ml, to_hls4ml

    precision = to_hls4ml(ftype)
    assert from_hls4ml(precision) == ftype
    parsed = hls4ml.backends.get_backend("Vivado").convert_precision_string(ftype.cpp())  # hls4ml reads our C++ type
    fields = ("width", "integer", "signed", "rounding_mode", "saturation_mode")
    assert [getattr(parsed, f) for f in fields] == [getattr(precision, f) for f in fields]


def test_a_type_the_host_cannot_round_like_the_kernel_is_refused():
    from hls4ml.model.types import FixedPrecisionType

    from fixedpoint.hls_types import from_hls4ml

    truncating = FixedPrecisionType(12, 4)  # AP_TRN, AP_WRAP
    with pytest.raises(ValueError, match="AP_RND_CONV"):
        from_hls4ml(truncating)
    assert from_hls4ml(truncating, rounding_matters=False) == FixedType(12, 4)
