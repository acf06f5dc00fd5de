"""Piecewise-linear sigmoid/tanh (``activation_approximation``, ``models.activation_pwl``): exact
segments, accuracy against the true functions, training, errors, saving and the estimate.

C-simulation of every family with PWL activations is in ``test_lstm_cell.py``."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import quantizers, random_weights

import hls_project
import models
from fixedpoint import FixedType
from hls_project.sizing import STATE_PRODUCTS, multiplier_limit
from models.activation_pwl import FUNCTIONS, LIMITS, UNIFORM_RANGE, PWLActivation, table_of
from models.quantization import quantize_tf

TYPES = {  # input type, activation type
    "12-bit": (FixedType(14, 5), FixedType(12, 1)),
    "8-bit": (FixedType(8, 4), FixedType(8, 1)),
    "state": (FixedType(16, 5), FixedType(12, 1)),
}
TABLES = {  # explicit tables: ends at the limits, inner breakpoints off the grid
    "sigmoid": [[-6.0, 0.0], [-2.3, 0.09], [-0.7, 0.33], [0.0, 0.5], [0.61, 0.648], [2.2, 0.9], [6.1, 1.0]],
    "tanh": [[-3.0, -1.0], [-1.1, -0.8], [-0.3, -0.29], [0.3, 0.29], [1.1, 0.8], [3.0, 1.0]],
}


def grid(in_type: FixedType) -> np.ndarray:
    return in_type.from_raw(np.arange(in_type.min_raw, in_type.max_raw + 1))


def keras_pwl(pwl: PWLActivation, x: np.ndarray) -> np.ndarray:
    """The Keras cell's computation: the TensorFlow segments, then the activation quantizer."""
    return quantize_tf(pwl.evaluate_tf(tf.constant(x, tf.float64)), pwl.out_type).numpy()


@pytest.mark.parametrize("types", TYPES)
@pytest.mark.parametrize("table", ["segments=1", "segments=5", "segments=8", "segments=64", "explicit"])
@pytest.mark.parametrize("function", FUNCTIONS)
def test_keras_and_numpy_equal_np_interp_over_the_quantized_table(function, table, types):
    """Over every input grid point: Keras (float64) and the NumPy reference (integers) equal
    ``np.interp`` over the quantized knots, rounded to the activation type."""
    in_type, out_type = TYPES[types]
    approximation = {function: TABLES[function]} if table == "explicit" else {"segments": int(table[9:])}
    xs, ys = table_of(approximation, function)
    pwl = PWLActivation.build(function, xs, ys, in_type, out_type)
    x = grid(in_type)
    knot_x, knot_y = pwl.knots()
    expected = out_type.quantize(np.interp(x, knot_x, knot_y))
    np.testing.assert_array_equal(keras_pwl(pwl, x), expected)
    np.testing.assert_array_equal(out_type.from_raw(pwl.evaluate_raw(in_type.to_raw(x))), expected)
    # the quantized table is the given one: knots on the input grid, values within 1/16 LSB
    assert knot_x[0] == in_type.min_value and knot_x[-1] == in_type.max_value
    np.testing.assert_array_equal(in_type.quantize(knot_x), knot_x)
    on_grid = [k for k, v in enumerate(xs) if in_type.min_value < v < in_type.max_value and v == in_type.quantize(v)]
    given = np.interp(xs[on_grid], knot_x, knot_y)
    assert np.max(np.abs(given - ys[on_grid]), initial=0) <= out_type.lsb / 16
    assert np.all(np.diff(knot_y) >= 0)  # monotone like the function


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_error_falls_with_more_segments(function):
    """Max error against the true function (rounded), in LSBs of a 12-bit activation: no larger for
    twice the segments, within the linear-interpolation bound ``max|f''| h^2 / 8`` plus the end
    values (the limits) and one rounding."""
    in_type, out_type = TYPES["12-bit"]
    x = grid(in_type)
    true = FUNCTIONS[function](x)
    curvature = {"sigmoid": 0.0963, "tanh": 0.770}[function]  # max |f''|
    bound_range = UNIFORM_RANGE[function]
    end_error = abs(FUNCTIONS[function](bound_range) - LIMITS[function][1])
    errors = {}
    for segments in (2, 4, 8, 16, 32, 64, 128):
        xs, ys = table_of({"segments": segments}, function)
        pwl = PWLActivation.build(function, xs, ys, in_type, out_type)
        errors[segments] = np.max(np.abs(out_type.from_raw(pwl.evaluate_raw(in_type.to_raw(x))) - true))
        h = 2 * bound_range / segments
        assert errors[segments] <= curvature * h * h / 8 + end_error + out_type.lsb
    print(function, {n: f"{e / out_type.lsb:.1f} LSB" for n, e in errors.items()})
    values = list(errors.values())
    assert all(b <= a for a, b in zip(values, values[1:], strict=False))
    assert values[-1] < 2 * out_type.lsb < 100 * values[0]


def pwl_layer(approximation, preset="w12", name="pwl", **kwargs):
    q = quantizers(preset) if preset else {}
    return models.TTLSTM.for_task(24, 8, 3, 2, name=name, activation_approximation=approximation, **q, **kwargs)


def model_of(layer, frames=3):
    inputs = tf.keras.Input((frames, 24))
    return tf.keras.Model(inputs, layer(inputs))


@pytest.mark.parametrize("preset", ["w12", None])
def test_a_model_with_pwl_activations_trains(preset, rng):
    """Quantized (straight-through rounding) and float: the loss is finite and the weights move;
    gradients pass through the segments."""
    layer = pwl_layer({"segments": 8}, preset)
    model = model_of(layer)
    random_weights(layer, np.random.default_rng(0), 0.3)
    x = rng.uniform(-1, 1, (16, 3, 24)).astype(np.float32)
    y = rng.uniform(-0.5, 0.5, (16, 8)).astype(np.float32)
    before = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2), loss="mse")
    history = model.fit(x, y, epochs=3, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    changed = [not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)]
    assert all(changed)


def test_the_slope_is_the_gradient():
    pwl = PWLActivation.build("tanh", *table_of({"segments": 4}, "tanh"), None, None)
    z = tf.constant([-5.0, -1.5, 0.5, 5.0], tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(z)
        y = pwl.evaluate_tf(z)
    np.testing.assert_allclose(tape.gradient(y, z), [0.0, *np.diff(np.tanh([-2.0, -0, 2.0])) / 2, 0.0])


BAD = [
    ("pwl", "expected None or a dict"),
    ({}, "empty dict"),
    ({"segmets": 8}, r"unknown key\(s\) \['segmets'\]"),
    ({"segments": 0}, "'segments' must be in 1..256, got 0"),
    ({"segments": 2.5}, "'segments' must be an integer, got 2.5"),
    ({"segments": 8, "sigmoid": [[0.0, 0.5]]}, "sigmoid table needs at least 2 breakpoints"),
    ({"segments": 8, "tanh": [[-20, -1], [1, "a"], [20, 1]]}, "tanh table must be a list of"),
    ({"segments": 8, "sigmoid": [[-20, 0], [1, 0.5], [1, 0.6], [20, 1]]}, "strictly increasing: x=1 .index 2. after"),
    ({"segments": 8, "tanh": [[-20, -1], [0, 0.2], [1, 0.1], [20, 1]]}, "non-decreasing .* y=0.1 at x=1 after y=0.2"),
    ({"segments": 8, "sigmoid": [[-2, 0.1], [20, 1]]}, "sigmoid table does not cover .*starts at x=-2 with y=0.1"),
    ({"segments": 8, "tanh": [[-20, -1], [3, 0.99]]}, "tanh table does not cover .*ends at x=3 with y=0.99"),
    ({"sigmoid": [[-20, 0], [20, 1]]}, "no tanh table and no 'segments'"),
    (
        {"segments": 8, "sigmoid": [[-20, 0], [0.001, 0.5], [0.002, 0.5], [20, 1]]},
        "x=0.001 and x=0.002 fall on the same point of the ap_fixed<12,5,[A-Z_,]+> grid",
    ),
]


@pytest.mark.parametrize("approximation, message", BAD, ids=[m.split()[0] for _, m in BAD])
def test_a_bad_approximation_is_a_clear_error(approximation, message):
    with pytest.raises(ValueError, match=f"layer 'bad': 'activation_approximation': .*{message}"):
        pwl_layer(approximation, name="bad")


def test_the_cover_rule():
    """A table covers its input by spanning the input type (w12: accumulator [-16, 16), state
    [-8, 8)) or by ending at the function's limits; float layers need the limits."""
    spans = {"segments": 4, "sigmoid": [[-16, 0.1], [16, 0.9]], "tanh": [[-16, -0.5], [16, 0.5]]}
    limits = {"sigmoid": [[-1, 0], [1, 1]], "tanh": [[-1, -1], [1, 1]]}
    pwl_layer(spans)
    pwl_layer(limits)
    pwl_layer(limits, preset=None)
    with pytest.raises(ValueError, match="sigmoid table does not cover its input .no accumulator_quantizer"):
        pwl_layer(spans, preset=None)
    with pytest.raises(
        ValueError, match=r"tanh table does not cover .*ends at x=15.9 with y=0.5; end it at x >= 15.99"
    ):
        pwl_layer({**spans, "tanh": [[-16, -0.5], [15.9, 0.5]]})


@pytest.mark.parametrize("approximation", [{"segments": 8}, {"segments": 3, **TABLES}])
def test_config_round_trip_and_save_load(approximation, tmp_path, rng):
    layer = pwl_layer(approximation, return_sequences=True)
    model = model_of(layer, 4)
    random_weights(layer, np.random.default_rng(3), 0.6)
    config = layer.get_config()
    assert config["activation_approximation"] == {k: v for k, v in approximation.items()}
    assert type(layer).from_config(config).get_config() == config
    x = rng.uniform(-3, 3, (5, 4, 24)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    np.testing.assert_array_equal(expected, hls_project.execute(layer, x)[0])
    # the PWL functions change the outputs (the option is not silently ignored)
    exact = model_of(pwl_layer(None, return_sequences=True), 4)
    exact.set_weights(model.get_weights())
    assert not np.array_equal(exact.predict(x, verbose=0), expected)
    for suffix in ("h5", "keras"):
        model.save(tmp_path / f"m.{suffix}")
        loaded = models.load_model(tmp_path / f"m.{suffix}")
        assert loaded.get_layer("pwl").get_config() == config
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)


def test_default_config_is_none():
    assert pwl_layer(None).get_config()["activation_approximation"] is None


@pytest.mark.parametrize("reuse_factor", [1, 3])
def test_the_estimate_counts_pwl_multipliers_and_no_tables(reuse_factor, tmp_path):
    stages = {}
    for mode, approximation in (("exact", None), ("pwl", {"segments": 16})):
        hls_model = hls_project.convert(
            model_of(pwl_layer(approximation)),
            tmp_path / mode,
            io_type="io_stream",
            reuse_factor=reuse_factor,
            echo=lambda m: None,
        )
        hls_model.write()
        node = next(n for n in hls_model.get_layers() if type(n).__name__.endswith("LSTMLayer"))
        stages[mode] = {stage.name: stage for stage in node.estimate().stages}["state update"]
        parameters = (tmp_path / mode / "firmware/parameters.h").read_text()
        assert f"state_multiplier_limit = {stages[mode].multipliers};" in parameters
        assert ("gate_pwl" in parameters) == (mode == "pwl")
        weights = " ".join(path.name for path in (tmp_path / mode / "firmware/weights").iterdir())
        assert ("gate_lut" in weights) == (mode == "exact")
    tables = [memory.name for memory in stages["exact"].memories if memory.name.endswith("table")]
    assert tables == ["gate table", "output gate table", "candidate table", "state table"]
    assert not any(memory.name.endswith("table") for memory in stages["pwl"].memories)
    assert stages["exact"].multipliers == multiplier_limit(STATE_PRODUCTS, reuse_factor)
    assert stages["pwl"].multipliers == multiplier_limit(STATE_PRODUCTS + 5, reuse_factor)
    # the same II at every reuse factor: the exact gate table is read twice an iteration (i, f) and
    # its copy once (o), within their ports; PWL activations read no table
    assert stages["pwl"].iterations * stages["pwl"].ii == stages["exact"].iterations * stages["exact"].ii
    assert stages["exact"].achieved_ii == reuse_factor and stages["pwl"].achieved_ii == reuse_factor


def test_segments_that_cannot_stay_exact_in_float64_are_refused():
    xs, ys = table_of({"segments": 8}, "tanh")
    with pytest.raises(ValueError, match="tanh segments over ap_fixed<40,5.* need more than 53 bits"):
        PWLActivation.build("tanh", xs, ys, FixedType(40, 5), FixedType(24, 1))
