"""Block-circulant LSTM: the circulant math against the dense matrix, the projection, counts at
the papers' shapes, arguments, the kernel's schedule and C-simulation over block sizes.

What every family satisfies (round trips, backends, streaming, stateful, overlay) is in test_lstm_cell.py."""

import re

import numpy as np
import pytest
import tensorflow as tf
from conftest import check_csim, counted_products, quantizers, random_weights, set_layer_config

import hls_project
import models
from hls_project.bc_lstm import BlockCirculantLSTMLayer, CirculantSchedule
from models.bc_lstm import circulant_matvec, matvec_by_kernel, matvec_by_rotation
from models.circulant import BCShape, bc_matvec, bc_project, bc_to_dense, rotation_index

SHAPES = [
    # n_in, units, block size
    (24, 8, 4),  # divides both
    (25, 7, 4),  # pads the input and every gate's output
    (24, 8, 1),  # dense
    (10, 6, 10),  # one block per gate: the whole matrix
    (5, 9, 9),  # the block is taller than the input
]


def bc_model(steps, n_in, units, block_size, recurrent_block_size, batch_size=None, **kwargs):
    layer = models.BlockCirculantLSTM(
        units, block_size=block_size, recurrent_block_size=recurrent_block_size, name="bc", **kwargs
    )
    inputs = tf.keras.Input((steps, n_in), batch_size=batch_size)
    return tf.keras.Model(inputs, layer(inputs)), layer


# -- the circulant mat-vec against the dense matrix ---------------------------------------------
@pytest.mark.parametrize("n_in, units, k", SHAPES)
def test_matvec_from_vectors_equals_the_dense_matrix(n_in, units, k, rng):
    shape = BCShape.create(n_in, units, k)
    vectors = rng.integers(-50, 50, shape.vector_shape)
    x = rng.integers(-50, 50, (3, n_in))
    dense = bc_to_dense(vectors, shape)
    assert dense.shape == (n_in, 4 * units)
    np.testing.assert_array_equal(bc_matvec(x, vectors, shape), x @ dense)
    for keras_map in (circulant_matvec, matvec_by_rotation, matvec_by_kernel):
        keras = keras_map(tf.constant(x, tf.float64), tf.constant(vectors, tf.float64), shape)
        np.testing.assert_array_equal(keras.numpy(), x @ dense)
    # every product of the padded blocks is done once: k per stored value
    products = counted_products([0], lambda _, b, c: bc_matvec(b, c, shape), lambda _: shape.vector_shape, n_in)
    assert products == shape.macs == shape.n_params * k


def test_each_block_is_circulant_with_its_vector_as_first_row():
    """W_pad[i k + s, g k + r] = c[g, i, (r - s) mod k]: the block's row s is its vector rotated by s."""
    shape = BCShape.create(8, 4, 4)
    vectors = np.arange(np.prod(shape.vector_shape)).reshape(shape.vector_shape)
    dense = bc_to_dense(vectors, shape)
    block = dense[4:8, 0:4]  # input block 1, gate i's output block 0
    for s in range(4):
        np.testing.assert_array_equal(block[s], np.roll(vectors[0, 1], s))
    assert rotation_index(3).tolist() == [[0, 1, 2], [2, 0, 1], [1, 2, 0]]


@pytest.mark.parametrize("n_in, units, k", SHAPES)
def test_projection_is_the_euclidean_projection(n_in, units, k, rng):
    shape = BCShape.create(n_in, units, k)
    # a block-circulant matrix projects onto itself
    vectors = rng.normal(size=shape.vector_shape)
    dense = bc_to_dense(vectors, shape)
    projected, error = bc_project(dense, shape)
    assert error < 1e-12
    np.testing.assert_allclose(bc_to_dense(projected, shape), dense, atol=1e-12)
    # any matrix: the residual is orthogonal to every block-circulant direction
    matrix = rng.normal(size=(n_in, 4 * units))
    projected, error = bc_project(matrix, shape)
    residual = matrix - bc_to_dense(projected, shape)
    assert error == pytest.approx(np.linalg.norm(residual) / np.linalg.norm(matrix))
    for _ in range(5):
        direction = bc_to_dense(rng.normal(size=shape.vector_shape), shape)
        assert abs(np.sum(residual * direction)) < 1e-9 * np.linalg.norm(direction)
    assert (error == 0) == (k == 1)


def test_padding_is_zero_input_and_dropped_output(rng):
    """A non-dividing size computes exactly the matrix of its real rows and columns."""
    shape = BCShape.create(25, 7, 4)
    assert (shape.p, shape.q, shape.padded_in) == (7, 2, 28)
    vectors = rng.integers(-9, 9, shape.vector_shape)
    x = rng.integers(-9, 9, (2, 25))
    padded = BCShape.create(28, 8, 4)  # the same vectors on the padded sizes
    full = bc_matvec(np.pad(x, [(0, 0), (0, 3)]), vectors, padded).reshape(2, 4, 8)
    np.testing.assert_array_equal(bc_matvec(x, vectors, shape), full[:, :, :7].reshape(2, 28))


# -- counts at the papers' shapes ----------------------------------------------------------------
def test_tvlsi_512_lstm_counts():
    """Wang et al. (TVLSI 2017): a 512 x 512 LSTM cut by more than 95% in memory; the smallest
    power-of-two block size that does it, and the model's parameters equal the count."""
    dense = models.bc_lstm_cost(512, 512, 1, 1)
    assert dense.params == dense.dense_params == 2 * 512 * 2048 + 2048
    reduction = {k: 1 - models.bc_lstm_cost(512, 512, k, k).params / dense.params for k in (2, 4, 8, 16, 32, 64)}
    block = min(k for k, r in reduction.items() if r > 0.95)
    assert block == 32 and reduction[16] < 0.95
    cost = models.bc_lstm_cost(512, 512, block, block)
    assert cost.params == 2 * 512 * 2048 // 32 + 2048
    assert cost.input_map_macs == cost.recurrent_macs == 512 * 2048
    model, _ = bc_model(2, 512, 512, block, block)
    assert model.count_params() == cost.params


def test_paper_video_shape_counts():
    cost = models.bc_lstm_cost(57_600, 256, 256, 16)
    assert cost.input_map_params == 4 * 1 * 225 * 256
    assert cost.recurrent_params == 4 * 16 * 16 * 16
    assert cost.dense_params == 57_600 * 1_024 + 256 * 1_024 + 1_024
    assert cost.compression > 200


def graph_sizes(x_spec, shape) -> list:
    """Sizes of every tensor ``circulant_matvec``'s traced graph makes (branches of a ``tf.cond`` included)."""
    vectors_spec = tf.TensorSpec(shape.vector_shape, tf.float64)
    graph = tf.function(lambda x, v: circulant_matvec(x, v, shape)).get_concrete_function(x_spec, vectors_spec).graph
    graphs = [graph, *(function.graph for function in graph._functions.values() if hasattr(function, "graph"))]
    return [
        int(np.prod(op.outputs[0].shape))
        for g in graphs
        for op in g.get_operations()
        if op.outputs and op.outputs[0].shape.is_fully_defined()
    ]


def test_a_single_frame_never_densifies():
    """The 57,600 -> 4 x 256 input map at block size 256 never builds a 57,600 x 1,024 matrix for one frame."""
    shape = BCShape.create(57_600, 256, 256)
    assert max(graph_sizes(tf.TensorSpec((1, 57_600), tf.float64), shape)) <= 57_600 * 256 < 57_600 * 1_024


@pytest.mark.parametrize("batch", [32, None])
def test_a_training_batch_holds_at_most_the_matrix(batch):
    """A batch of 32 by rotation would hold 32 x 57,600 x 256 values per frame; the map holds the matrix instead."""
    shape = BCShape.create(57_600, 256, 256)
    sizes = graph_sizes(tf.TensorSpec((batch, 57_600), tf.float64), shape)
    assert 57_600 * 1_024 in sizes  # the matrix branch is there ...
    assert max(sizes) <= 57_600 * 1_024  # ... and nothing is larger (the rotation branch of None has no static size)


def test_the_map_follows_the_batch_it_is_given(rng):
    """With the batch unknown when traced, rotation runs for B <= 4q and the matrix above: both equal x @ W."""
    shape = BCShape.create(12, 2, 4)  # 4q = 4 output blocks
    vectors = rng.integers(-9, 9, shape.vector_shape).astype(np.float64)
    traced = tf.function(
        lambda x: circulant_matvec(x, vectors, shape), input_signature=[tf.TensorSpec((None, 12), tf.float64)]
    )
    for batch in (1, 4, 5, 9):
        x = rng.integers(-9, 9, (batch, 12)).astype(np.float64)
        np.testing.assert_array_equal(traced(x).numpy(), x @ bc_to_dense(vectors, shape))


# -- arguments and model files -------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(block_size=0), "'block_size' must be an integer >= 1, got 0"),
        (dict(block_size=-4), "'block_size' must be an integer >= 1, got -4"),
        (dict(block_size=2.5), "'block_size' must be an integer >= 1, got 2.5"),
        (dict(block_size=4, recurrent_block_size=0), "'recurrent_block_size' must be an integer >= 1, got 0"),
        (dict(block_size=4, recurrent_block_size=9), "'recurrent_block_size'=9 is larger than the 8 x 8 matrix"),
        (dict(block_size=4, input_dim=0), "'input_dim'"),
    ],
)
def test_bad_block_sizes_name_the_parameter_and_value(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        models.BlockCirculantLSTM(8, **kwargs)


def test_block_larger_than_the_matrix_is_refused_at_build():
    layer = models.BlockCirculantLSTM(8, block_size=25, recurrent_block_size=4, name="bc")
    with pytest.raises(ValueError, match=re.escape("'block_size'=25 is larger than the 24 x 8 matrix")):
        layer(tf.zeros((1, 2, 24)))


def test_a_model_file_whose_vectors_do_not_match_its_block_sizes(tmp_path):
    model, _ = bc_model(3, 25, 8, 3, 4)
    model.save(tmp_path / "m.h5")
    set_layer_config(tmp_path / "m.h5", "BlockCirculantLSTM", block_size=5)
    with pytest.raises(
        ValueError, match=r"m\.h5: a stored weight does not fit .*bc/.*circulant_kernel.*\(8, 5, 5\).*\(12, 9, 3\)"
    ):
        models.load_model(tmp_path / "m.h5")


def test_from_dense_reports_the_projection_error(rng):
    dense = tf.keras.layers.LSTM(8)
    tf.keras.Sequential([tf.keras.Input((3, 25)), dense])
    kernel, recurrent, bias = dense.get_weights()
    layer, error = models.BlockCirculantLSTM.from_dense(kernel, recurrent, bias, 5, 2)
    expected = max(bc_project(kernel, BCShape.create(25, 8, 5))[1], bc_project(recurrent, BCShape.create(8, 8, 2))[1])
    assert error == pytest.approx(expected) and 0.5 < error < 1
    vectors = layer.cell.input_map_weights[0].numpy()
    np.testing.assert_allclose(vectors, bc_project(kernel, layer.cell.decomposition)[0], rtol=1e-6)


# -- the kernel's schedule -----------------------------------------------------------------------
@pytest.mark.parametrize("n_in, units, k", SHAPES + [(57_600, 256, 256), (512, 512, 32)])
@pytest.mark.parametrize("reuse_factor", [1, 2, 3, 16, 1000])
def test_schedule_has_no_bank_conflict_and_meets_the_reuse_factor(n_in, units, k, reuse_factor):
    shape = BCShape.create(n_in, units, k)
    schedule = CirculantSchedule.at(shape, reuse_factor)
    assert k % schedule.terms == 0 and (4 * shape.q) % schedule.lanes == 0
    assert schedule.read_conflicts() == []
    assert schedule.product_cycles * schedule.multipliers == shape.macs
    # an output's p * k terms take at most R cycles, unless every block is already in parallel
    full = schedule.multipliers == 4 * shape.q * k
    assert full or shape.padded_in <= reuse_factor * schedule.multipliers
    if schedule.lanes == 1:  # no smaller divisor of k reaches R
        assert all(k % d or shape.padded_in > reuse_factor * d for d in range(1, schedule.terms))


def test_layout_puts_a_cycles_reads_in_distinct_banks(rng):
    """The stored order itself, read back as the kernel addresses it: the value at each address is
    the vector entry the kernel wants there."""
    shape = BCShape.create(20, 6, 4)  # 4 * q = 8 output blocks
    schedule = CirculantSchedule(shape, lanes=4, terms=2)
    vectors = rng.integers(0, 1000, shape.vector_shape)
    stored = schedule.layout(vectors)
    for i in range(shape.p):
        for g in range(schedule.groups):
            for d in range(4):
                for lane in range(4):
                    assert stored[((i * schedule.groups + g) * 4 + d) * 4 + lane] == vectors[g * 4 + lane, i, d]


# -- C-simulation: bit-exact with the NumPy reference, within 1 LSB of Keras ------------------
PWL = {"segments": 8}  # Wang et al.'s piecewise-linear sigmoid and tanh (activation_approximation)
CSIM_CASES = [
    # preset, n_in, units, block, recurrent block, frames, io_type, reuse, return_sequences, activations
    ("w8", 24, 8, 2, 2, 3, "io_stream", 1, True, None),  # all types <= 8 bits
    ("w8", 24, 8, 4, 2, 3, "io_parallel", 1, True, PWL),  # and with piecewise-linear activations
    ("w12", 25, 7, 4, 3, 16, "io_stream", 2, True, None),  # non-dividing both ways
    ("w16", 24, 8, 1, 1, 16, "io_parallel", 1, True, None),  # block size 1: the dense LSTM
    ("w12", 10, 6, 10, 6, 5, "io_parallel", 3, False, PWL),  # one block per gate: the whole matrix
    ("w16", 24, 8, 3, 2, 4, "io_stream", 5, True, None),  # several lanes and terms
]


@pytest.mark.parametrize(
    "preset, n_in, units, block, recurrent, steps, io_type, reuse, sequences, activations", CSIM_CASES
)
def test_csim_bit_exact(
    tmp_path, rng, preset, n_in, units, block, recurrent, steps, io_type, reuse, sequences, activations
):
    model, layer = bc_model(
        steps,
        n_in,
        units,
        block,
        recurrent,
        return_sequences=sequences,
        activation_approximation=activations,
        **quantizers(preset),
    )
    random_weights(layer, rng, 0.6)
    x = rng.uniform(-3, 3, (8, steps, n_in)).astype(np.float32)
    check_csim(model, layer, x, tmp_path / "prj", io_type=io_type, reuse_factor=reuse)


def test_generated_config_matches_the_schedule_and_the_estimate(tmp_path):
    """The lanes and terms written into parameters.h are the schedule's, and the layer estimate's
    product stages use exactly those multipliers and the MACs of the model."""
    from overlay.estimate import layer_estimate

    model, layer = bc_model(4, 25, 7, 4, 3, **quantizers("w12"))
    hls_model = hls_project.convert(model, tmp_path / "prj", reuse_factor=3)
    hls_model.write()
    parameters = (tmp_path / "prj/firmware/parameters.h").read_text()
    node = next(n for n in hls_model.get_layers() if isinstance(n, BlockCirculantLSTMLayer))
    estimate = layer_estimate(node)
    for suffix, schedule, what in zip("xh", node.schedules(), ("input map", "recurrent map"), strict=True):
        struct = parameters[parameters.index(f"struct config{node.index}_{suffix} ") :]
        lanes = int(re.search(r"lanes = (\d+);", struct).group(1))
        terms = int(re.search(r"terms = (\d+);", struct).group(1))
        assert (lanes, terms) == (schedule.lanes, schedule.terms)
        stage = next(s for s in estimate.stages if s.name == f"{what} products")
        assert stage.multipliers == lanes * terms
        assert stage.iterations * stage.ii * stage.multipliers == schedule.shape.macs
    cost = models.bc_lstm_cost(25, 7, 4, 3)
    assert estimate.macs == 4 * (cost.input_map_macs + cost.recurrent_macs)  # 4 frames per call


def test_paper_video_shape_csim_bit_exact(tmp_path, rng):
    """57,600 -> 4 x 256 at block size 256 (recurrent 16): converts, compiles (~15 s) and matches the reference."""
    model, layer = bc_model(2, 57_600, 256, 256, 16, **quantizers("w12"))
    x = rng.uniform(0, 1, (2, 2, 57_600)).astype(np.float32)
    check_csim(model, layer, x, tmp_path / "prj", keras_lsb=False)
