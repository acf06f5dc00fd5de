"""What every registered LSTM family must satisfy, parametrized over the families the registry
discovers (``models.families``) and over hls4ml's Vivado and Vitis backends.

Family-specific math (decompositions, schedules, counts) stays in ``test_<stem>.py``.
"""

import io
from contextlib import redirect_stdout

import numpy as np
import pytest
import tensorflow as tf
from conftest import check_csim, check_threaded_testbench, quantizers, random_weights, warnings_in_our_code
from qkeras import quantized_bits

import hls_project
import models
from host import protocol
from models.families import project_families
from models.quantization import QUANTIZER_NAMES

FAMILIES = project_families()
N_FEATURES, UNITS, N_MODES, RANK = 24, 8, 3, 2


def family_layer(name, **kwargs):
    return FAMILIES[name].for_task(N_FEATURES, UNITS, N_MODES, RANK, name=name, **kwargs)


def family_model(name, frames, batch_size=None, preset="w12", seed=0, **kwargs):
    layer = family_layer(name, **{**quantizers(preset), **kwargs})
    inputs = tf.keras.Input((frames, N_FEATURES), batch_size=batch_size)
    model = tf.keras.Model(inputs, layer(inputs))
    random_weights(layer, np.random.default_rng(seed), 0.6)
    return model, layer


def test_the_registry_finds_every_family_module():
    assert set(FAMILIES) >= {"tt_lstm", "ht_lstm", "fdht_lstm"}
    assert set(hls_project.discover()) >= {cls.__name__ for cls in FAMILIES.values()}
    objects = models.custom_objects()
    for cls in FAMILIES.values():
        assert objects[cls.__name__] is cls and objects[cls.cell_class.__name__] is cls.cell_class


@pytest.mark.parametrize("name", FAMILIES)
def test_full_rank_equals_a_keras_lstm(name, rng):
    """From a dense LSTM at full rank, the family computes the same sequence (recurrence included)."""
    dense = tf.keras.layers.LSTM(4, return_sequences=True)
    inputs = tf.keras.Input((6, 12))
    dense_model = tf.keras.Model(inputs, dense(inputs))
    layer = FAMILIES[name].for_task(12, 4, N_MODES, None, return_sequences=True)
    error = layer.load_dense(*dense.get_weights())
    assert error < 1e-6
    model = tf.keras.Sequential([tf.keras.Input((6, 12)), layer])
    x = rng.normal(size=(5, 6, 12)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), dense_model.predict(x, verbose=0), atol=1e-5)


@pytest.mark.parametrize("name", FAMILIES)
def test_config_round_trip_and_save_load(name, tmp_path, rng):
    model, layer = family_model(name, 4, return_sequences=True)
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    x = rng.uniform(-2, 2, (3, 4, N_FEATURES)).astype(np.float32)
    for suffix in ("h5", "keras"):
        model.save(tmp_path / f"m.{suffix}")
        loaded = models.load_model(tmp_path / f"m.{suffix}")
        assert loaded.get_layer(name).get_config() == config
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


CSIM_CASES = [
    # backend, io_type, quantizer preset, frames, reuse factor
    ("Vivado", "io_parallel", "w8", 5, 1),
    ("Vivado", "io_stream", "w16", 1, 2),
    ("Vitis", "io_parallel", "qkeras4", 3, 1),
    ("Vitis", "io_stream", "w12", 5, 1),
]


@pytest.mark.parametrize("backend, io_type, preset, frames, reuse", CSIM_CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("name", FAMILIES)
def test_csim_equals_reference_and_keras(name, backend, io_type, preset, frames, reuse, tmp_path, rng):
    model, layer = family_model(name, frames, preset=preset, return_sequences=True)
    x = rng.uniform(-3, 3, (8, frames, N_FEATURES)).astype(np.float32)
    check_csim(model, layer, x, tmp_path / "prj", backend=backend, io_type=io_type, reuse_factor=reuse)


PWL_TABLE = {"sigmoid": [[-6, 0], [-2.1, 0.11], [-0.5, 0.38], [0, 0.5], [0.5, 0.62], [2.1, 0.89], [6, 1]]}


@pytest.mark.parametrize(
    "io_type, preset, approximation",
    [("io_parallel", "w8", {"segments": 8}), ("io_stream", "w16", {"segments": 6, **PWL_TABLE})],
)
@pytest.mark.parametrize("name", ["tt_lstm", "fdht_lstm"])
def test_pwl_activations_csim_equals_reference_and_keras(name, io_type, preset, approximation, tmp_path, rng):
    """Piecewise-linear sigmoid/tanh (``activation_approximation``): the kernel computes the same
    segments (no tables), equal to the reference and to Keras. The gate block is one for every
    family: a family with a recurrent map (TT) and a fused one (FDHT) cover its two paths."""
    model, layer = family_model(name, 3, preset=preset, return_sequences=True, activation_approximation=approximation)
    x = rng.uniform(-3, 3, (8, 3, N_FEATURES)).astype(np.float32)
    hls_model = check_csim(model, layer, x, tmp_path / "prj", io_type=io_type, reuse_factor=2)
    assert not any("lut" in weight.name for node in hls_model.get_layers() for weight in node.get_weights())


@pytest.mark.parametrize("name", FAMILIES)
def test_the_four_qkeras_quantizers_train_convert_and_stay_exact(name, tmp_path, rng):
    """Given QLSTM's four quantizers only, the datapath types follow the documented rule: the
    layer trains, convert prints the derived types, and C-sim stays exact."""
    model, layer = family_model(name, 3, preset="qkeras4")
    derived = {"input_quantizer", "accumulator_quantizer", "activation_quantizer"}
    assert set(layer.cell.derived_types) == derived
    assert layer.cell.fixed_types["input_quantizer"] == layer.cell.fixed_types["state_quantizer"]
    x = rng.uniform(-1, 1, (16, 3, N_FEATURES)).astype(np.float32)
    before = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2), loss="mse")
    history = model.fit(x, rng.uniform(-0.5, 0.5, (16, UNITS)), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    printed = io.StringIO()
    with redirect_stdout(printed):
        hls_model = check_csim(model, layer, x, tmp_path / "prj")
    for quantizer in derived:
        assert f"{quantizer} not set -> {layer.cell.fixed_types[quantizer].cpp()}" in printed.getvalue()
    assert hls_model is not None


def test_explicit_quantizers_win_over_the_rule():
    layer = family_layer("tt_lstm", **quantizers("w12"))
    assert layer.cell.derived_types == {}
    assert set(layer.cell.fixed_types) == set(QUANTIZER_NAMES)


@pytest.mark.parametrize("name", FAMILIES)
def test_convert_names_a_missing_quantizer(name, tmp_path):
    q = quantizers("w8")
    del q["bias_quantizer"]
    layer = family_layer(name, **q)
    model = tf.keras.Sequential([tf.keras.Input((2, N_FEATURES)), layer])
    with pytest.raises(ValueError, match=f"layer '{name}'.*'bias_quantizer'"):
        hls_project.convert(model, tmp_path / "prj")


@pytest.mark.parametrize("name", FAMILIES)
def test_stateful_frames_carry_state(name, tmp_path, rng):
    """Frame-by-frame calls of a stateful layer continue the sequence in Keras, C-sim and NumPy."""
    model, layer = family_model(name, 1, batch_size=1, stateful=True)
    frames = rng.uniform(-3, 3, (8, 1, 1, N_FEATURES)).astype(np.float32)
    hls_model = hls_project.convert(model, tmp_path / "prj")
    hls_model.compile()
    state = None
    for frame in frames:
        expected, state = hls_project.execute(layer, frame, state)
        csim = np.asarray(hls_model.predict(frame[0])).reshape(expected.shape)
        np.testing.assert_array_equal(csim, expected)
        keras = model.predict(frame, verbose=0)
        assert np.max(np.abs(csim - keras)) <= layer.cell.fixed_types["state_quantizer"].lsb
    fresh, _ = hls_project.execute(layer, frames[-1])
    assert not np.array_equal(expected, fresh), "state should have made the last frame differ"


@pytest.mark.parametrize("name", FAMILIES)
def test_overlay_build_and_emulator_equal_the_reference(name, tmp_path, rng):
    """Also: a symmetric input quantizer reaches the host, which rounds the negative rail as the
    kernel does (the clips go far below the input range)."""
    import host
    from overlay import MissingToolError, build_overlay

    model, layer = family_model(name, 4, input_quantizer=quantized_bits(8, 1, alpha=1, symmetric=True))
    model.save(tmp_path / "model.h5")
    with pytest.raises(MissingToolError, match="vivado_hls"):
        build_overlay(tmp_path / "model.h5", "pynq-z2", tmp_path / "overlay")
    assert warnings_in_our_code(tmp_path / "overlay") == []
    clips = rng.uniform(-8, 3, (5, 4, N_FEATURES)).astype(np.float32)
    expected, _ = hls_project.execute(layer, clips)
    with host.open(tmp_path / "overlay", backend="emulated") as accelerator:
        assert accelerator.manifest.layers == [{"name": name, "class": type(layer).__name__}]
        assert accelerator.manifest.input_type == layer.cell.fixed_types["input_quantizer"]
        assert accelerator.manifest.input_type.symmetric
        emulated = np.stack([accelerator.run_clip(clip)[0] for clip in clips])
        manifest = accelerator.manifest
    np.testing.assert_array_equal(emulated, expected)
    # the co-simulation testbench's recorded transfers: the reference's outputs, and the statuses
    # of the malformed ones (one cut short: 1 of 2 calls done; one too long: drained)
    hls = tmp_path / "overlay" / "hls"
    transfers = [
        [
            np.array(line.split(), dtype=np.uint64)
            for line in (hls / f"tb_data/accel_beats_{d}.dat").read_text().splitlines()
        ]
        for d in ("in", "out")
    ]
    statuses = [int(out[-1]) for out in transfers[1]]
    assert statuses == [2, 1, 1 | protocol.STATUS_SHORT, 1 | protocol.STATUS_LONG, 3]
    for beats_in, beats_out, status in zip(*transfers, statuses, strict=True):
        calls = status & 0xFFFF
        if status >> 32 == 0:
            raw = protocol.unpack(
                beats_in[1:], manifest.frames_per_call * N_FEATURES, manifest.input_type, manifest.in_pack_values
            )
            frames = manifest.input_type.from_raw(raw).reshape(calls, *manifest.input_shape)
            outputs = protocol.decode_output(
                beats_out, manifest.output_type, calls, manifest.n_outputs, manifest.out_pack_values
            )
            np.testing.assert_array_equal(outputs, hls_project.execute(layer, frames)[0])
    # the same transfers with every dataflow process on its own thread, on FIFOs of their declared
    # depths: the call's input and recurrent halves too, unless the family is fused (one process)
    occupancy = check_threaded_testbench(hls)
    assert (("zx", 4 * UNITS) in occupancy) is not layer.cell.fused_recurrent


def test_the_stock_head_gets_its_own_parallelism(tmp_path, rng):
    """The classifier head's strategy and reuse factor are its own (read back from the generated
    parameters.h); the LSTM keeps its reuse factor; the C-sim output does not change."""
    import re

    from conftest import small_classifier

    model = small_classifier(4)
    x = rng.uniform(-3, 3, (6, 4, 24)).astype(np.float32)
    outputs = []
    for head_reuse_factor, strategy, expected_rf in [(None, "resource", 8), (1, "latency", 1)]:
        printed = []
        hls_model = hls_project.convert(
            model,
            tmp_path / str(head_reuse_factor),
            reuse_factor=2,
            head_reuse_factor=head_reuse_factor,
            echo=printed.append,
        )
        hls_model.compile()
        outputs.append(np.asarray(hls_model.predict(x)))
        parameters = (tmp_path / str(head_reuse_factor) / "firmware/parameters.h").read_text()
        head = parameters[parameters.index("struct config3 ") :]
        assert int(re.search(r"reuse_factor = (\d+);", head).group(1)) == expected_rf
        assert f"strategy = nnet::{strategy}" in head
        lstm = parameters[parameters.index("struct config2 ") :]
        assert int(re.search(r"reuse_factor = (\d+);", lstm).group(1)) == 2
        assert f"reuse factor {expected_rf} ({-(-8 * 3 // expected_rf)} multipliers)" in " ".join(printed)
    np.testing.assert_array_equal(outputs[0], outputs[1])


@pytest.mark.parametrize("n_state", [1, 4, 12, 256, 257])
@pytest.mark.parametrize("reuse_factor", [1, 2, 3, 5, 64, 1000])
def test_the_recurrent_map_reads_a_divisor_of_the_state_per_cycle_within_its_reuse_factor(n_state, reuse_factor):
    """The banks of h and of gate-major U line up only if the block divides n_state; a gate then
    takes n_state / block cycles, never more than the reuse factor asks, with the fewest multipliers."""
    from hls_project.sizing import multiplier_limit, recurrent_block

    block = recurrent_block(n_state, reuse_factor)
    assert n_state % block == 0 and n_state // block <= reuse_factor
    assert all(n_state % d or n_state // d > reuse_factor for d in range(1, block))
    assert multiplier_limit(n_state, reuse_factor) <= block
