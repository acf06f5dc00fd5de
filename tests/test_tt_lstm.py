"""TT-LSTM: the Keras layer, the TT math, the hls4ml plugin and bit-exact C-simulation."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import check_csim, family_model, quantizers, random_weights
from qkeras import quantized_bits

import hls_project
import models
from hls_project import tt_lstm as hls_tt_lstm
from models.tt import TTShape, contract_step, tt_svd, tt_to_dense

PAPER = dict(input_modes=[8, 20, 20, 18], output_modes=[4, 4, 4, 4], tt_ranks=[1, 4, 4, 4, 1])


def tt_model(steps, input_modes, output_modes, tt_ranks, **kwargs):
    return family_model(models.TTLSTM, steps, input_modes, output_modes, tt_ranks=tt_ranks, **kwargs)


# -- counts --------------------------------------------------------------------------------------
def test_paper_shape_counts():
    cost = models.tt_lstm_cost(**PAPER)
    assert cost.input_map_params == 3_360
    assert cost.params == 266_528
    assert cost.input_map_macs == 1_937_408
    assert cost.dense_input_map_params == 57_600 * 1_024
    model, _ = tt_model(2, **PAPER)
    assert model.count_params() == cost.params


# -- the TT mat-vec against the dense matrix -----------------------------------------------------
SHAPES = [
    ([2, 3, 4], [3, 2, 2], [1, 3, 2, 1]),  # non-square
    ([4, 6], [2, 4], [1, 1, 1]),  # rank 1
    ([2, 2, 3, 2], [8, 1, 2, 2], [1, 2, 4, 2, 1]),
    ([24], [16], [1, 1]),  # one core is a dense matrix
]


@pytest.mark.parametrize("input_modes, output_modes, ranks", SHAPES)
def test_contraction_schedule_equals_dense(input_modes, output_modes, ranks, rng):
    shape = TTShape.create(input_modes, output_modes, ranks)
    cores = [rng.normal(size=shape.core_shape(k)) for k in range(shape.n_cores)]
    x = rng.normal(size=(3, shape.n_in))
    buffer = x
    for step in shape.schedule():
        assert buffer.shape[1] == step.in_size
        buffer = contract_step(step, buffer, cores[step.core])
    np.testing.assert_allclose(buffer, x @ tt_to_dense(cores, shape), rtol=1e-12, atol=1e-12)
    assert shape.macs == sum(
        step.n_left * step.n_out * step.n_right * step.rank_out * step.terms for step in shape.schedule()
    )


def test_tt_svd_recovers_a_tt_matrix_and_reports_error(rng):
    shape = TTShape.create([2, 3, 4], [3, 2, 2], [1, 3, 2, 1])
    cores = [rng.normal(size=shape.core_shape(k)) for k in range(shape.n_cores)]
    dense = tt_to_dense(cores, shape)
    recovered, error = tt_svd(dense, shape)
    assert error < 1e-12
    np.testing.assert_allclose(tt_to_dense(recovered, shape), dense, atol=1e-10)
    _, truncated = tt_svd(rng.normal(size=dense.shape), TTShape.create([2, 3, 4], [3, 2, 2], 1))
    assert 0.5 < truncated < 1.0


def test_keras_layer_equals_dense_lstm_at_full_rank(rng):
    """A TT-LSTM made from a dense LSTM by exact TT-SVD computes the same sequence as Keras' LSTM."""
    input_modes, output_modes = [2, 3, 2], [2, 1, 2]
    units, n_in = 4, 12
    dense = tf.keras.layers.LSTM(units, return_sequences=True)
    inputs = tf.keras.Input((6, n_in))
    dense_model = tf.keras.Model(inputs, dense(inputs))
    kernel, recurrent, bias = dense.get_weights()
    full_ranks = [1, 12, 4, 1]  # the ranks of the unfoldings (16 x 12, 48 x 4)
    layer, error = models.TTLSTM.from_dense(
        kernel, recurrent, bias, input_modes, output_modes, full_ranks, return_sequences=True
    )
    assert error < 1e-6
    tt_model_ = tf.keras.Sequential([tf.keras.Input((6, n_in)), layer])
    x = rng.normal(size=(5, 6, n_in)).astype(np.float32)
    np.testing.assert_allclose(tt_model_.predict(x, verbose=0), dense_model.predict(x, verbose=0), atol=1e-5)


def test_forward_pass_never_densifies():
    """The paper-shape layer runs a frame without building a 57,600 x 1,024 matrix."""
    model, layer = tt_model(1, **PAPER)
    graph = tf.function(layer.cell.input_map).get_concrete_function(tf.TensorSpec((1, 57_600), tf.float64)).graph
    sizes = [
        np.prod(op.outputs[0].shape)
        for op in graph.get_operations()
        if op.outputs and op.outputs[0].shape.is_fully_defined()
    ]
    assert max(sizes) < 57_600 * 8


# -- Keras conventions ---------------------------------------------------------------------------
def test_get_config_round_trip_h5_and_keras(tmp_path, rng):
    model, layer = tt_model(4, [2, 3, 4], [2, 2, 2], [1, 3, 2, 1], return_sequences=True, **quantizers("w12"))
    random_weights(layer, rng, 0.5)
    config = layer.get_config()
    clone = models.TTLSTM.from_config(config)
    assert clone.get_config() == config
    model.save(tmp_path / "m.h5")
    model.save(tmp_path / "m.keras")
    x = rng.uniform(-2, 2, (3, 4, 24)).astype(np.float32)
    for path in (tmp_path / "m.h5", tmp_path / "m.keras"):
        loaded = models.load_model(path)
        assert loaded.get_layer(layer.name).get_config() == config
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(units=8, input_modes=[2, 3], output_modes=[2, 2, 2], tt_ranks=[1, 2, 2, 1]), "same number of modes"),
        (dict(units=6, input_modes=[2, 3, 4], output_modes=[2, 2, 2], tt_ranks=[1, 2, 2, 1]), "units=6"),
        (dict(units=8, input_modes=[2, 3, 4], output_modes=[2, 2, 2], tt_ranks=[1, 2, 1]), "tt_ranks"),
        (dict(units=8, input_modes=[2, 3, 4], output_modes=[2, 2, 2], tt_ranks=[1, 0, 2, 1]), "tt_ranks"),
        (dict(units=8, input_modes=[2, 0, 4], output_modes=[2, 2, 2], tt_ranks=[1, 2, 2, 1]), "input_modes"),
        (dict(units=8, input_modes=[2, 3, 4], output_modes=[2, 2, 2], tt_ranks=2, activation="relu"), "activation"),
        (
            dict(
                units=8, input_modes=[2, 3, 4], output_modes=[2, 2, 2], tt_ranks=2, recurrent_activation="hard_sigmoid"
            ),
            "recurrent_activation",
        ),
        (
            dict(
                units=8,
                input_modes=[2, 3, 4],
                output_modes=[2, 2, 2],
                tt_ranks=2,
                kernel_quantizer=quantized_bits(8, 0, alpha="auto_po2"),
            ),
            "kernel_quantizer",
        ),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.TTLSTM(**kwargs)


def test_input_size_must_match_modes():
    layer = models.TTLSTM(8, input_modes=[2, 3, 4], output_modes=[2, 2, 2], tt_ranks=2)
    with pytest.raises(ValueError, match="input_modes"):
        layer(tf.zeros((1, 2, 25)))


def test_convert_requires_every_quantizer(tmp_path):
    q = quantizers("w8")
    del q["state_quantizer"]
    model, _ = tt_model(2, [2, 3, 4], [2, 2, 2], 2, **q)
    with pytest.raises(ValueError, match="state_quantizer"):
        hls_project.convert(model, tmp_path / "prj")


def test_convert_rejects_a_model_without_our_layer(tmp_path):
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no TTLSTM"):
        hls_project.convert(model, tmp_path / "prj")


def test_register_twice_is_harmless():
    hls_project.register()
    hls_project.register()


# -- C-simulation: bit-exact with the NumPy reference, within 1 LSB of Keras ------------------
CSIM_CASES = [
    # preset, modes, ranks, steps, io_type, reuse, return_sequences
    ("w8", ([2, 3, 4], [2, 2, 2]), [1, 3, 2, 1], 16, "io_parallel", 1, False),
    ("w8", ([4, 6], [2, 4]), [1, 1, 1], 1, "io_stream", 1, True),
    ("w12", ([3, 5], [4, 1]), [1, 2, 1], 16, "io_stream", 2, True),
    ("w12", ([2, 3, 4], [2, 2, 2]), [1, 3, 2, 1], 1, "io_parallel", 4, False),
    ("w16", ([2, 2, 3, 2], [1, 2, 2, 2]), [1, 2, 4, 2, 1], 16, "io_parallel", 1, True),
    ("w16", ([2, 3, 4], [2, 2, 2]), [1, 3, 2, 1], 17, "io_stream", 3, False),
]


@pytest.mark.parametrize("preset, modes, ranks, steps, io_type, reuse, return_sequences", CSIM_CASES)
def test_csim_bit_exact(tmp_path, rng, preset, modes, ranks, steps, io_type, reuse, return_sequences):
    model, layer = tt_model(steps, *modes, ranks, return_sequences=return_sequences, **quantizers(preset))
    random_weights(layer, rng, 0.6)
    x = rng.uniform(-3, 3, (12, steps, int(np.prod(modes[0])))).astype(np.float32)
    check_csim(model, layer, x, hls_tt_lstm.execute, tmp_path / "prj", io_type=io_type, reuse_factor=reuse)


def test_stateful_frames_carry_state(tmp_path, rng):
    """Frame-by-frame calls of a stateful layer continue the sequence in Keras, C-sim and NumPy."""
    model, layer = tt_model(1, [2, 3, 4], [2, 2, 2], [1, 3, 2, 1], batch_size=1, stateful=True, **quantizers("w12"))
    random_weights(layer, rng, 0.6)
    frames = rng.uniform(-3, 3, (10, 1, 1, 24)).astype(np.float32)
    hls_model = hls_project.convert(model, tmp_path / "prj")
    hls_model.compile()
    state = None
    for frame in frames:
        expected, state = hls_tt_lstm.execute(layer, frame, state)
        csim = np.asarray(hls_model.predict(frame[0])).reshape(expected.shape)
        np.testing.assert_array_equal(csim, expected)
        keras = model.predict(frame, verbose=0)
        assert np.max(np.abs(csim - keras)) <= layer.cell.fixed_types["state_quantizer"].lsb
    fresh, _ = hls_tt_lstm.execute(layer, frames[-1])
    assert not np.array_equal(expected, fresh), "state should have made the last frame differ"


def test_paper_shape_csim_bit_exact(tmp_path, rng):
    """57,600 -> 4 x 256 (UCF11 frames): converts, compiles (~15 s) and matches the reference."""
    model, layer = tt_model(2, **PAPER, **quantizers("w12"))
    x = rng.uniform(0, 1, (2, 2, 57_600)).astype(np.float32)
    check_csim(model, layer, x, hls_tt_lstm.execute, tmp_path / "prj", keras_lsb=False)
