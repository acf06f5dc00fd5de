"""Overflow and precision profiling (``hls_project.profile``, ``python -m hls_project profile``):
recording never changes the reference, and every count and range equals an independent NumPy
computation on the same values. Reference only: no C-sim build here."""

import io
import json
from contextlib import redirect_stdout

import numpy as np
import pytest
import tensorflow as tf
from conftest import quantizers, random_weights, small_classifier
from qkeras import QDense, quantized_bits
from test_lstm_cell import FAMILIES, N_FEATURES, family_model

import hls_project
from fixedpoint import requantize_raw
from hls_project.profile import Recorder, profile
from hls_project.reference import recording


class KeepAll(Recorder):
    """A recorder that also keeps every recorded array, to check the statistics against."""

    def __init__(self):
        super().__init__()
        self.arrays = {}

    def record(self, name, raw, frac, out_type, overflow="saturate"):
        self.arrays.setdefault((self.layer, name), []).append((np.array(raw), frac, out_type))
        super().record(name, raw, frac, out_type, overflow)


def saturating_input(rng, clips, frames):
    """Clips reaching far beyond every preset's input range (and some values inside it)."""
    return rng.uniform(-12, 12, (clips, frames, N_FEATURES)).astype(np.float32)


@pytest.mark.parametrize("name", FAMILIES)
def test_recording_leaves_the_reference_bit_identical(name, rng):
    model, layer = family_model(name, 4, preset="w8", return_sequences=True)
    x = saturating_input(rng, 6, 4)
    plain, plain_state = hls_project.execute(layer, x)
    recorder = KeepAll()
    with recording(recorder):
        recorded, recorded_state = hls_project.execute(layer, x)
    np.testing.assert_array_equal(recorded, plain)
    for a, b in zip(recorded_state, plain_state, strict=True):
        np.testing.assert_array_equal(a, b)
    names = {key[1] for key in recorder.arrays}
    gates = {"preactivation gate i", "preactivation gate f", "preactivation candidate g", "preactivation gate o"}
    assert gates | {"cell state c", "output h"} <= names
    assert any(n.startswith("input map") for n in names)
    # the recorded exact value of h, rounded into the state type, is the output the reference returned
    types = layer.cell.fixed_types
    h = [requantize_raw(raw, frac, out) for raw, frac, out in recorder.arrays[("", "output h")]]
    np.testing.assert_array_equal(types["state_quantizer"].from_raw(np.stack(h, axis=1)), plain)


@pytest.mark.parametrize("name", ["tt_lstm", "bc_lstm"])
def test_statistics_equal_numpy_on_the_recorded_values(name, rng):
    """Every variable's count, range and out-of-range count, recomputed from the raw arrays; the
    input's from the float clips alone."""
    model, layer = family_model(name, 3, preset="w8")
    x = saturating_input(rng, 10, 3)
    recorder = KeepAll()
    report = profile(model, x, progress=False)
    recorder.layer = name
    recorder.record_floats("input x", x, layer.cell.fixed_types["input_quantizer"])
    with recording(recorder):
        hls_project.execute(layer, x)
    by_name = {v.name: v for v in report.variables}
    assert set(by_name) == {key[1] for key in recorder.arrays}
    input_type = layer.cell.fixed_types["input_quantizer"]
    scaled = np.rint(x.astype(np.float64) * 2**input_type.frac)
    assert by_name["input x"].outside == np.count_nonzero((scaled < input_type.min_raw) | (scaled > input_type.max_raw))
    assert by_name["input x"].outside > 0
    for (_, variable), arrays in recorder.arrays.items():
        stats = by_name[variable]
        out = arrays[0][2]
        values = np.concatenate([(raw * 2.0**-frac).ravel() for raw, frac, _ in arrays])
        assert stats.count == values.size
        if out is None:
            assert (stats.to_dict()["min"], stats.to_dict()["max"]) == (values.min(), values.max())
            continue
        grid = np.rint(values * 2**out.frac)  # exact: at most 53 bits
        assert stats.outside == np.count_nonzero((grid < out.min_raw) | (grid > out.max_raw)), variable
        assert (stats.low, stats.high) == (grid.min(), grid.max())
        suggested = stats.suggested
        assert suggested.frac == out.frac
        assert suggested.min_raw <= grid.min() and grid.max() <= suggested.max_raw
        narrower = type(suggested)(suggested.width - 1, suggested.integer - 1, suggested.signed)
        assert grid.min() < narrower.min_raw or grid.max() > narrower.max_raw  # the fewest bits that hold them
    assert any(v.outside for v in report.variables if v.name.startswith("preactivation"))


def test_a_stateful_stream_is_profiled_with_its_state_carried(rng):
    """A one-frame stateful model fed 5-frame clips sees the values of the 5-frame sequence model."""
    weights_from, _ = family_model("tt_lstm", 5, preset="w12")
    stream, _ = family_model("tt_lstm", 1, batch_size=1, preset="w12", stateful=True)
    stream.set_weights(weights_from.get_weights())
    x = saturating_input(rng, 4, 5) / 4
    whole = {v.name: v.to_dict() for v in profile(weights_from, x, progress=False).variables}
    streamed = {v.name: v.to_dict() for v in profile(stream, x, progress=False).variables}
    assert streamed == whole


def test_the_stock_head_accumulator_is_the_float64_product(rng):
    model = small_classifier(4, preset="w12")
    x = saturating_input(rng, 8, 4) / 3
    report = profile(model, x, progress=False)
    head = model.layers[-1]
    h, _ = hls_project.execute(model.layers[1], x)
    kernel = head.kernel_quantizer_internal(head.kernel).numpy().astype(np.float64)
    bias = head.bias_quantizer_internal(head.bias).numpy().astype(np.float64)
    logits = h @ kernel + bias
    accumulator = next(v for v in report.variables if v.layer == head.name and v.name == "accumulator")
    lsb = 2.0**-accumulator.frac
    assert accumulator.count == logits.size
    assert (accumulator.low * lsb, accumulator.high * lsb) == (logits.min(), logits.max())


def test_convert_warns_loudly_with_the_counts_given_calibration_data(tmp_path, rng):
    model, layer = family_model("tt_lstm", 3, preset="w8")
    printed = []
    hls_project.convert(model, tmp_path / "a", echo=printed.append, calibration=saturating_input(rng, 6, 3))
    warnings = [line for line in printed if "WARNING" in line]
    assert "overflow their types on the calibration data" in warnings[0]
    input_type = layer.cell.fixed_types["input_quantizer"].cpp()
    expected = "layer 'tt_lstm': input x: "
    assert any(expected in line and f" values outside {input_type} (saturated" in line for line in warnings)
    printed.clear()
    hls_project.convert(model, tmp_path / "b", echo=printed.append, calibration=np.zeros((2, 3, N_FEATURES)))
    assert not [line for line in printed if "WARNING" in line]
    assert "no variable overflows its type (6 frames)" in printed[-1]


def grey_model(frames, features=16, scale=0.6):
    """Input (frames, 4 x 4 grey pixels) -> TT-LSTM(8) -> QDense(3), for the command line."""
    layer = FAMILIES["tt_lstm"].for_task(features, 8, 2, 2, name="tt", **quantizers("w8"))
    inputs = tf.keras.Input((frames, features))
    q = quantized_bits(10, 2, alpha=1)
    model = tf.keras.Model(inputs, QDense(3, kernel_quantizer=q, bias_quantizer=q, name="head")(layer(inputs)))
    random_weights(layer, np.random.default_rng(3), scale)
    return model


@pytest.mark.parametrize("scale, code", [(0.05, 0), (3.0, 1)])
def test_command_line_writes_the_table_and_json(scale, code, tmp_path):
    from hls_project.__main__ import main

    grey_model(4, scale=scale).save(tmp_path / "m.h5")
    out = tmp_path / "profile.json"
    printed = io.StringIO()
    with redirect_stdout(printed):
        status = main(["profile", "--model", str(tmp_path / "m.h5"), "--clips", "6", "--out", str(out)])
    assert status == code
    report = json.loads(out.read_text())
    assert report["clips"] == 6 and report["frames"] == 6 * 16 and report["data"].startswith("synthetic")
    assert {v["layer"] for v in report["variables"]} == {"tt", "head"}
    outside = sum(v["outside"] or 0 for v in report["variables"])
    assert (outside > 0) == bool(code)
    assert ("WARNING" in printed.getvalue()) == bool(code)
    assert "cell state c" in printed.getvalue() and "suggested" in printed.getvalue()


def test_command_line_reads_a_folder_of_clips(tmp_path):
    from test_datasets import _square_clip, _write_video

    from hls_project.__main__ import main

    for name in ("left", "right"):
        (tmp_path / "clips" / name).mkdir(parents=True)
        _write_video(tmp_path / "clips" / name / "a.avi", _square_clip(8, 4, (255, 255, 255)), "MJPG")
    grey_model(2, features=48).save(tmp_path / "m.h5")
    options = ["--model", str(tmp_path / "m.h5"), "--data", str(tmp_path / "clips"), "--out", str(tmp_path / "p.json")]
    frame = ["--height", "4", "--width", "4", "--channels", "3", "--frames", "4"]
    with redirect_stdout(io.StringIO()):
        assert main(["profile", *options, *frame]) in (0, 1)
    assert json.loads((tmp_path / "p.json").read_text())["frames"] == 2 * 4


def test_command_line_refuses_bad_input_naming_it(tmp_path, capsys):
    from hls_project.__main__ import main

    grey_model(2, features=24).save(tmp_path / "m.h5")
    assert main(["profile", "--model", str(tmp_path / "m.h5")]) == 2
    assert "24 features are no square frame" in capsys.readouterr().err
    grey_model(2).save(tmp_path / "g.h5")
    assert main(["profile", "--model", str(tmp_path / "g.h5"), "--data", str(tmp_path / "none")]) == 2
    assert f"--data {tmp_path / 'none'}: data set folder" in capsys.readouterr().err
    assert main(["profile", "--model", str(tmp_path / "missing.h5")]) == 2
    assert "--model" in capsys.readouterr().err


@pytest.mark.parametrize("out", ["folder", "file/profile.json"])
def test_command_line_refuses_an_out_it_cannot_write_before_profiling(tmp_path, capsys, out):
    """``--out`` a folder, or under a file: one line (exit 2) before the model loads, no traceback."""
    from hls_project.__main__ import main

    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    model = tmp_path / "missing.h5"  # never loaded: --out is checked first
    assert main(["profile", "--model", str(model), "--out", str(tmp_path / out)]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and f"--out {tmp_path / out}" in error and "--model" not in error
