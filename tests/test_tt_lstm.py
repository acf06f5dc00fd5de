"""TT-LSTM: the TT math against the dense matrix, counts, arguments, and C-simulation over TT shapes.

What every family satisfies (full rank, round trips, backends, streaming, overlay) is in test_lstm_cell.py."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import check_csim, counted_products, family_model, quantizers, random_weights
from qkeras import quantized_bits
from test_estimate import check_mode_step, config_constants, step_fabric

import hls_project
import models
from hls_project.decomposed import over_frames
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
    # the hardware chain: the last core reads the streaming frame, the largest buffer is its output
    steps = model.layers[-1].cell.tt_shape.schedule()
    first = over_frames(steps[0], 1)
    assert (first.rows * first.in_row, first.out_row) == (57_600, 16)
    assert max(step.out_size for step in steps) == 51_200


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
    schedule = shape.schedule()
    assert shape.macs == counted_products(schedule, contract_step, lambda s: shape.core_shape(s.core), shape.n_in)


def test_tt_svd_recovers_a_tt_matrix_and_reports_error(rng):
    shape = TTShape.create([2, 3, 4], [3, 2, 2], [1, 3, 2, 1])
    cores = [rng.normal(size=shape.core_shape(k)) for k in range(shape.n_cores)]
    dense = tt_to_dense(cores, shape)
    recovered, error = tt_svd(dense, shape)
    assert error < 1e-12
    np.testing.assert_allclose(tt_to_dense(recovered, shape), dense, atol=1e-10)
    _, truncated = tt_svd(rng.normal(size=dense.shape), TTShape.create([2, 3, 4], [3, 2, 2], 1))
    assert 0.5 < truncated < 1.0


def test_forward_pass_never_densifies():
    """The paper-shape layer runs a frame without building a 57,600 x 1,024 matrix."""
    model, layer = tt_model(1, **PAPER)
    cores = [tf.TensorSpec(core.shape, tf.float64) for core in layer.cell.input_map_weights]
    frame = tf.TensorSpec((1, 57_600), tf.float64)
    graph = tf.function(layer.cell.input_map).get_concrete_function(frame, cores).graph
    sizes = [
        np.prod(op.outputs[0].shape)
        for op in graph.get_operations()
        if op.outputs and op.outputs[0].shape.is_fully_defined()
    ]
    assert max(sizes) < 57_600 * 8


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


def test_convert_rejects_a_model_without_our_layer(tmp_path):
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="has no .*TTLSTM.* layer"):
        hls_project.convert(model, tmp_path / "prj")


# -- C-simulation: bit-exact with the NumPy reference, within 1 LSB of Keras ------------------
CSIM_CASES = [
    # preset, modes, ranks, steps, io_type, reuse, return_sequences
    ("w8", ([4, 6], [2, 4]), [1, 1, 1], 1, "io_stream", 1, True),  # rank 1
    ("w12", ([3, 5], [4, 1]), [1, 2, 1], 16, "io_stream", 2, True),  # non-square, an output mode of 1
    ("w16", ([2, 2, 3, 2], [1, 2, 2, 2]), [1, 2, 4, 2, 1], 16, "io_parallel", 1, True),  # four cores
    ("w16", ([2, 3, 4], [2, 2, 2]), [1, 3, 2, 1], 17, "io_stream", 3, False),
]


@pytest.mark.parametrize("preset, modes, ranks, steps, io_type, reuse, return_sequences", CSIM_CASES)
def test_csim_bit_exact(tmp_path, rng, preset, modes, ranks, steps, io_type, reuse, return_sequences):
    model, layer = tt_model(steps, *modes, ranks, return_sequences=return_sequences, **quantizers(preset))
    random_weights(layer, rng, 0.6)
    x = rng.uniform(-3, 3, (12, steps, int(np.prod(modes[0])))).astype(np.float32)
    check_csim(model, layer, x, tmp_path / "prj", io_type=io_type, reuse_factor=reuse)


@pytest.mark.parametrize("reuse", [1, 2])
def test_a_frame_step_taking_a_pack_per_iteration_is_bit_exact(tmp_path, rng, reuse):
    """24 features of 10 bits stream in packs of 6; the frame step contracts the last mode (6, b = 1),
    so a row's one accumulate step takes a whole pack: 6 x 8 products into 8 sums, rounded while
    the next row accumulates and streamed to the next step in packs; the call's 3 x 4 rows' passes
    and the last row's rounding, as its config says."""
    model, layer = tt_model(3, [4, 6], [2, 4], [1, 2, 1], **quantizers("w12"))
    random_weights(layer, rng, 0.6)
    x = rng.uniform(-3, 3, (12, 3, 24)).astype(np.float32)
    hls_model = check_csim(model, layer, x, tmp_path / "prj", io_type="io_stream", reuse_factor=reuse)
    parameters_h = (tmp_path / "prj/firmware/parameters.h").read_text()
    config = config_constants(parameters_h)["config2_tt0"]
    assert (config["rows"], config["n_in"], config["pack_in"]) == (12, 6, 6)
    node = next(n for n in hls_model.get_layers() if type(n).__name__.endswith("LSTMLayer"))
    accumulate = node.estimate().stages[0]
    assert accumulate.products_per_iteration == 6 * 8
    check_mode_step(config, accumulate, frames=3, fabric=step_fabric(parameters_h, "config2_tt0"))


def test_paper_shape_csim_bit_exact(tmp_path, rng):
    """57,600 -> 4 x 256 (UCF11 frames): converts, compiles (~15 s) and matches the reference."""
    model, layer = tt_model(2, **PAPER, **quantizers("w12"))
    x = rng.uniform(0, 1, (2, 2, 57_600)).astype(np.float32)
    check_csim(model, layer, x, tmp_path / "prj", keras_lsb=False)
