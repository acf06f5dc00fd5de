"""HT- and FDHT-LSTM: tree math vs the dense matrix, HT-SVD, counts, the streaming order,
C-simulation over tree shapes. What every family satisfies is in test_lstm_cell.py."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from conftest import check_csim, counted_products, family_model, quantizers, random_weights

import models
from models.ht import LIVE_WORDS, HTShape, balanced_tree, contract_step, ht_matvec, ht_svd, ht_to_dense
from models.ht_lstm import ht_lstm_shape, stream_modes

UCF11 = dict(input_modes=[8, 20, 20, 18], output_modes=[4, 4, 4, 4], ht_ranks=4)


def ht_model(steps, input_modes, output_modes, ht_ranks, **kwargs):
    return family_model(models.HTLSTM, steps, input_modes, output_modes, ht_ranks=ht_ranks, **kwargs)


def test_ucf11_counts():
    cost = models.ht_lstm_cost(**UCF11)
    assert cost.input_map_params == 4 * (8 * 16 + 20 * 4 + 20 * 4 + 18 * 4) + 2 * 4**3 + 4**2 == 1_584
    assert cost.params == 264_752
    assert cost.dense_params == 59_245_568
    assert round(cost.compression, 1) == 223.8
    model, _ = ht_model(2, **UCF11)
    assert model.count_params() == cost.params


def tree_dense(cores, shape) -> np.ndarray:
    """The matrix of the tree, subtree by subtree (independent of any schedule): a subtree is
    ``(inputs, outputs, rank)``, a leaf its core, a node its children's product through its
    transfer tensor."""

    def subtree(node):
        if node.is_leaf:
            return np.asarray(cores[node.index], np.float64)
        left, right = (subtree(shape.nodes[child]) for child in node.children)
        both = np.einsum("xma,ynb,abt->xymnt", left, right, cores[node.index])
        return both.reshape(left.shape[0] * right.shape[0], left.shape[1] * right.shape[1], -1)

    return subtree(shape.nodes[-1])[:, :, 0]


def test_streaming_order_on_the_ucf11_shapes():
    """The paper shapes: HT-LSTM every rank 4 (the order a reviewer found by hand does 2,174,976
    MACs; the cheapest children-first order 2,789,376 through a 65,536-word buffer), FDHT-LSTM rank
    6 on [x; h] in the modes ``stream_modes`` orders (children first: 7,265,280 MACs)."""
    ht = models.ht_lstm_cost(**UCF11)
    assert ht.input_map_macs == 2_084_864 and ht.input_map_peak_buffer == 57_600  # the frame streams
    shape = ht_lstm_shape(**UCF11)
    assert shape.stream_order == (3, 4, 5, 1, 6, 2, 0) and max(s.out_row for s in shape.schedule()) == 1_024
    assert stream_modes([8, 20, 20, 19], [4, 4, 4, 4], 6) == [8, 19, 20, 20]
    fdht = models.fdht_lstm_cost([8, 19, 20, 20], [4, 4, 4, 4], 6, n_in=57_600)
    assert fdht.input_map_macs == 4_333_056 and fdht.input_map_peak_buffer == 87_552  # streamed, never stored
    fdht_shape = ht_lstm_shape([8, 19, 20, 20], [4, 4, 4, 4], 6)
    assert max(s.out_row for s in fdht_shape.schedule()) == 2_304
    # the first step reads [x; h] in rows of 20 x 20 values: a pack of 2, 4 or 5 tiles them
    first = fdht_shape.schedule()[0]
    assert (first.rows, first.n_in, first.trail) == (152, 20, 20)
    assert ht_lstm_shape([8, 20, 20, 19], [4, 4, 4, 4], 6).schedule()[0].trail == 19  # a prime: no pack


def stream_cost(shape, order):
    steps = shape.stream_steps(order)
    peak = max(step.out_row for step in steps)
    return max(peak - LIVE_WORDS, 0), sum(step.macs for step in steps), peak, tuple(order)


@pytest.mark.parametrize(
    "input_modes, output_modes, ranks",
    [
        ([2, 3, 4], [2, 2, 2], [3, 2, 3, 4, 1]),
        ([4, 6], [2, 4], [1, 1, 1]),  # rank 1: the root a scalar
        ([3, 2, 5, 2], [2, 1, 2, 4], [3, 2, 4, 2, 3, 5, 1]),
        ([8, 20, 20, 18], [16, 4, 4, 4], 4),  # the UCF11 HT-LSTM
    ],
)
def test_the_streaming_order_is_the_cheapest_of_every_order_and_every_order_computes_the_map(
    input_modes, output_modes, ranks, rng
):
    """The search against brute force over every permutation of the cores (those that cannot
    meet the buffer, or leave the outputs out of order, refused); every order that streams
    computes the tree's matrix."""
    shape = HTShape.create(input_modes, output_modes, ranks)
    costs = []
    for order in itertools.permutations(range(len(shape.nodes))):
        try:
            costs.append(stream_cost(shape, order))
        except ValueError:
            continue
    assert stream_cost(shape, shape.stream_order) == min(costs)
    if shape.n_in * shape.n_out > 1e5:
        return
    cores = [rng.normal(size=shape.core_shape(node.index)) for node in shape.nodes]
    x = rng.normal(size=(2, shape.n_in))
    expected = x @ tree_dense(cores, shape)
    for cost in costs[:: max(1, len(costs) // 12)]:
        streamed = x
        for step in shape.stream_steps(cost[3]):
            streamed = contract_step(step, streamed, cores[step.node])
        np.testing.assert_allclose(streamed, expected, rtol=1e-10, atol=1e-12)


def test_an_order_that_breaks_the_tree_is_refused():
    shape = HTShape.create([2, 3, 4], [2, 2, 2], 2)
    with pytest.raises(ValueError, match="node 2 cannot be contracted"):  # r0, r1 and r2 all in the buffer
        shape.stream_steps([3, 4, 0, 1, 2])
    with pytest.raises(ValueError, match="every node once"):
        shape.stream_steps([3, 4])


def test_tree_is_balanced_post_order():
    nodes = balanced_tree(4)
    assert [(n.lo, n.hi) for n in nodes] == [(0, 1), (1, 2), (0, 2), (2, 3), (3, 4), (2, 4), (0, 4)]
    assert nodes[2].children == (0, 1) and nodes[-1].children == (2, 5)


SHAPES = [
    ([2, 3, 2], [3, 2, 2], [4, 3, 4, 4, 1]),
    ([4, 6], [2, 4], [1, 1, 1]),  # rank 1
    ([2, 3, 2, 2], [2, 2, 1, 3], [3, 3, 6, 2, 3, 5, 1]),
    ([2, 2, 2, 2, 2], [2, 1, 2, 1, 2], 2),  # five leaves: an unbalanced split
]


@pytest.mark.parametrize("input_modes, output_modes, ranks", SHAPES)
def test_schedule_equals_dense(input_modes, output_modes, ranks, rng):
    shape = HTShape.create(input_modes, output_modes, ranks)
    cores = [rng.normal(size=shape.core_shape(node.index)) for node in shape.nodes]
    x = rng.normal(size=(3, shape.n_in))
    dense = ht_to_dense(cores, shape)
    np.testing.assert_allclose(dense, tree_dense(cores, shape), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ht_matvec(x, cores, shape), x @ dense, rtol=1e-12, atol=1e-12)
    core_shapes = lambda step: shape.core_shape(step.node)  # noqa: E731
    assert shape.macs == counted_products(shape.schedule(), contract_step, core_shapes, shape.n_in)
    recovered, error = ht_svd(dense, shape)
    assert error < 1e-10


@pytest.mark.parametrize(
    "ranks, message",
    [
        ([3, 2, 3, 4], "one rank per tree node"),
        ([3, 2, 3, 4, 2], "root rank"),
        ([3, 0, 3, 4, 1], ">= 1"),
        ([3, 2, 7, 4, 1], r"ht_ranks'\[2\] = 7 exceeds what tree node 2"),
        ([17, 2, 3, 4, 1], r"ht_ranks'\[0\] = 17 exceeds"),
    ],
)
def test_bad_ranks_name_the_node(ranks, message):
    with pytest.raises(ValueError, match=message):
        models.HTLSTM(8, input_modes=[2, 3, 4], output_modes=[2, 2, 2], ht_ranks=ranks)


def test_modes_that_do_not_match():
    with pytest.raises(ValueError, match="same number of modes"):
        models.HTLSTM(8, input_modes=[6, 4], output_modes=[2, 2, 2], ht_ranks=2)
    with pytest.raises(ValueError, match="units=6"):
        models.HTLSTM(6, input_modes=[2, 3, 4], output_modes=[2, 2, 2], ht_ranks=2)
    with pytest.raises(ValueError, match="input_modes"):
        models.HTLSTM(8, input_modes=[2, 3, 4], output_modes=[2, 2, 2], ht_ranks=2)(tf.zeros((1, 2, 25)))


CSIM_CASES = [
    # preset, modes, ranks, steps, io_type, reuse, return_sequences
    ("w8", ([2, 3, 4], [2, 2, 2]), [3, 2, 3, 4, 1], 16, "io_parallel", 1, False),  # three leaves
    ("w12", ([4, 6], [2, 4]), [1, 1, 1], 1, "io_stream", 2, True),  # rank 1
    ("w16", ([2, 3, 2, 2], [2, 1, 2, 2]), [3, 3, 6, 2, 3, 5, 1], 16, "io_stream", 1, True),  # uneven ranks
]


@pytest.mark.parametrize("preset, modes, ranks, steps, io_type, reuse, return_sequences", CSIM_CASES)
def test_csim_bit_exact(tmp_path, rng, preset, modes, ranks, steps, io_type, reuse, return_sequences):
    model, layer = ht_model(steps, *modes, ranks, return_sequences=return_sequences, **quantizers(preset))
    random_weights(layer, rng, 0.6)
    x = rng.uniform(-3, 3, (12, steps, int(np.prod(modes[0])))).astype(np.float32)
    check_csim(model, layer, x, tmp_path / "prj", io_type=io_type, reuse_factor=reuse)
    parameters = (tmp_path / "prj" / "firmware" / "parameters.h").read_text()
    assert parameters.count(": nnet::ht_pipeline_config {") == len(layer.cell.ht_shape.nodes)  # a process per core


@pytest.mark.parametrize(
    "input_modes, config, iterations",
    [
        # the leaf on the last mode: rows (2 x 3) x 3 frames, a pack along u (6 = n_in): one
        # accumulate iteration per row, its 4 sums rounded 2 per iteration; 18 x 2 / 3 frames
        ([2, 3, 6], "rows = 18, n_in = 6, n_right = 1, rank_in = 1;", 12),
        # the leaf on the middle mode: rows 2 x 3 frames, a pack along the trailing mode (6): 6
        # iterations per row, 6 sums each (one product each); 6 x 6 / 3 frames
        ([2, 6, 6], "rows = 6, n_in = 6, n_right = 1, rank_in = 1;", 12),
    ],
)
def test_a_frame_step_taking_a_pack_per_iteration_is_bit_exact(tmp_path, rng, input_modes, config, iterations):
    """Features of 10 bits stream in packs of 6, and the pack lies inside a row of the frame step
    (the first core of the HT-LSTM's streaming order)."""
    model, layer = ht_model(3, input_modes, [2, 2, 2], 2, **quantizers("w12"))
    random_weights(layer, rng, 0.6)
    x = rng.uniform(-3, 3, (12, 3, int(np.prod(input_modes)))).astype(np.float32)
    hls_model = check_csim(model, layer, x, tmp_path / "prj", io_type="io_stream")
    parameters = (tmp_path / "prj/firmware/parameters.h").read_text()
    first = parameters[parameters.index("struct config2_ht0") :]
    assert config in first[: first.index("};")] and "pack_in = 6," in first[: first.index("};")]
    node = next(n for n in hls_model.get_layers() if type(n).__name__.endswith("LSTMLayer"))
    accumulate = node.estimate().stages[0]
    assert (accumulate.iterations, accumulate.products_per_iteration) == (iterations, 6 * 4)


# -- FDHT-LSTM: [x_t; h_t-1] through the same HT engine -----------------------------------------
def test_fdht_ucf11_counts_are_in_the_published_range():
    cost = models.fdht_lstm_cost([8, 19, 20, 20], [4, 4, 4, 4], 6, n_in=57_600)
    assert cost.input_map_params == 6 * (8 * 16 + 20 * 4 + 20 * 4 + 19 * 4) + 2 * 6**3 + 6**2 == 2_652
    assert cost.params == 3_676 and 3_132 <= cost.params <= 8_808
    assert cost.dense_params == 59_245_568
    layer = models.FDHTLSTM(256, input_modes=[8, 19, 20, 20], output_modes=[4, 4, 4, 4], ht_ranks=6)
    model = tf.keras.Sequential([tf.keras.Input((2, 57_600)), layer])
    assert model.count_params() == cost.params


def test_fdht_modes_must_cover_input_and_state():
    layer = models.FDHTLSTM(8, input_modes=[2, 3, 4], output_modes=[2, 2, 2], ht_ranks=2)
    with pytest.raises(ValueError, match="fewer than the 32 values"):
        layer(tf.zeros((1, 2, 24)))


FDHT_CASES = [
    ("w8", [3, 2, 3, 4, 1], 16, "io_parallel", False),
    ("w16", [2, 2, 4, 4, 1], 1, "io_stream", True),
]


@pytest.mark.parametrize("preset, ranks, steps, io_type, return_sequences", FDHT_CASES)
def test_fdht_csim_bit_exact(tmp_path, rng, preset, ranks, steps, io_type, return_sequences):
    # [x; h] = 20 + 8 values, padded to 2 * 4 * 4 = 32
    model, layer = family_model(
        models.FDHTLSTM,
        steps,
        [2, 4, 4],
        [2, 2, 2],
        n_features=20,
        ht_ranks=ranks,
        return_sequences=return_sequences,
        **quantizers(preset),
    )
    random_weights(layer, rng, 0.6)
    x = rng.uniform(-3, 3, (12, steps, 20)).astype(np.float32)
    check_csim(model, layer, x, tmp_path / "prj", io_type=io_type)


@pytest.mark.parametrize(
    "layer_class, modes, ranks",
    [(models.HTLSTM, [8, 20, 20, 18], 4), (models.FDHTLSTM, [8, 19, 20, 20], 6)],
    ids=["ht_lstm", "fdht_lstm"],
)
def test_ucf11_shape_csim_bit_exact(layer_class, modes, ranks, tmp_path, rng):
    """57,600 -> 4 x 256 through the frame pipeline in the streaming order (the paper shapes:
    HT every rank 4, FDHT [8,19,20,20] rank 6): compiles and matches the reference."""
    model, layer = family_model(
        layer_class, 2, modes, [4, 4, 4, 4], n_features=57_600, ht_ranks=ranks, **quantizers("w12")
    )
    x = rng.uniform(0, 1, (2, 2, 57_600)).astype(np.float32)
    check_csim(model, layer, x, tmp_path / "prj", keras_lsb=False)
