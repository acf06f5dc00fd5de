"""Row-balanced dual-ratio sparse LSTM: the sparse math against the dense matrix, pruning, counts
and memory, bad stored layers, the kernel's schedule and C-simulation over ratios.

What every family satisfies (round trips, backends, streaming, stateful, overlay) is in test_lstm_cell.py."""

import re

import h5py
import numpy as np
import pytest
import tensorflow as tf
from conftest import check_csim, counted_products, quantizers, set_layer_config

import hls_project
import models
from hls_project.rbs_lstm import RowBalancedSparseLSTMLayer, SparseSchedule
from models.rbs_lstm import sparse_matvec
from models.row_balanced import RBShape, rb_matvec, rb_prune, rb_to_dense


def random_structure(shape: RBShape, rng) -> np.ndarray:
    """Distinct random columns per row, ascending."""
    return np.sort(np.stack([rng.choice(shape.n_in, shape.nnz, replace=False) for _ in range(shape.n_out)]), axis=1)


def rbs_model(steps, n_in, units, input_sparsity, recurrent_sparsity, rng, batch_size=None, scale=0.6, **kwargs):
    """Input (steps, n_in) -> RowBalancedSparseLSTM with random values on random row-balanced structures."""
    layer = models.RowBalancedSparseLSTM(units, input_sparsity, recurrent_sparsity, name="rbs", **kwargs)
    inputs = tf.keras.Input((steps, n_in), batch_size=batch_size)
    model = tf.keras.Model(inputs, layer(inputs))
    cell = layer.cell
    shapes = {"kernel_indices": cell.decomposition, "recurrent_indices": cell.recurrent_shape}
    for variable in [*cell.input_map_weights, *cell.recurrent_map_weights, cell.bias]:
        name = variable.name.split("/")[-1].split(":")[0]
        value = random_structure(shapes[name], rng) if name in shapes else rng.normal(0, scale, variable.shape)
        variable.assign(value.astype(variable.dtype.as_numpy_dtype))
    return model, layer


# -- the sparse map against the dense matrix ------------------------------------------------------
@pytest.mark.parametrize(
    "n_in, n_out, sparsity, nnz", [(24, 32, 0.0, 24), (24, 32, 0.5, 12), (25, 28, 0.95, 2), (7, 4, 0.99, 1)]
)
def test_nnz_per_row_and_the_matvec_equal_the_dense_matrix(n_in, n_out, sparsity, nnz, rng):
    shape = RBShape.create(n_in, n_out, sparsity)
    assert shape.nnz == nnz and shape.stored_shape == (n_out, nnz)
    values, indices = rng.integers(-50, 50, shape.stored_shape), random_structure(shape, rng)
    dense = rb_to_dense(values, indices, shape)
    assert (np.count_nonzero(dense, axis=0) <= nnz).all()  # a row's values may be 0, never more than nnz
    x = rng.integers(-50, 50, (3, n_in))
    np.testing.assert_array_equal(rb_matvec(x, values, indices), x @ dense)
    keras = sparse_matvec(tf.constant(x, tf.float64), tf.constant(values, tf.float64), tf.constant(indices))
    np.testing.assert_array_equal(keras.numpy(), x @ dense)
    products = counted_products([0], lambda _, b, v: rb_matvec(b, v, indices), lambda _: shape.stored_shape, n_in)
    assert products == shape.macs == n_out * nnz


def test_pruning_keeps_each_rows_largest_magnitudes(rng):
    matrix = rng.normal(size=(20, 12))
    shape = RBShape.create(20, 12, 0.75)
    values, indices, error = rb_prune(matrix, shape)
    assert shape.nnz == 5 and indices.shape == values.shape == (12, 5)
    for row in range(12):
        kept = np.sort(np.argsort(-np.abs(matrix[:, row]))[:5])
        np.testing.assert_array_equal(indices[row], kept)
        np.testing.assert_array_equal(values[row], matrix[kept, row])
    pruned = rb_to_dense(values, indices, shape)
    assert error == pytest.approx(np.linalg.norm(matrix - pruned) / np.linalg.norm(matrix))
    assert rb_prune(matrix, RBShape.create(20, 12, 0.0))[2] == 0.0


def test_from_dense_has_two_ratios_and_equals_the_masked_lstm(rng):
    """Dual-ratio: the input and recurrent matrices keep their own nnz, and the layer computes what a
    dense Keras LSTM with the pruned matrices computes."""
    dense = tf.keras.layers.LSTM(8, return_sequences=True)
    inputs = tf.keras.Input((5, 24))
    tf.keras.Model(inputs, dense(inputs))
    kernel, recurrent, bias = dense.get_weights()
    layer, error = models.RowBalancedSparseLSTM.from_dense(kernel, recurrent, bias, 0.75, 0.5, return_sequences=True)
    cell = layer.cell
    assert (cell.decomposition.nnz, cell.recurrent_shape.nnz) == (6, 4)
    masked = [
        rb_to_dense(*rb_prune(m, s)[:2], s)
        for m, s in ((kernel, cell.decomposition), (recurrent, cell.recurrent_shape))
    ]
    assert error == pytest.approx(
        max(rb_prune(kernel, cell.decomposition)[2], rb_prune(recurrent, cell.recurrent_shape)[2])
    )
    reference = tf.keras.layers.LSTM(8, return_sequences=True)
    tf.keras.Sequential([tf.keras.Input((5, 24)), reference])
    reference.set_weights([*masked, bias])
    x = rng.normal(size=(3, 5, 24)).astype(np.float32)
    ours = tf.keras.Sequential([tf.keras.Input((5, 24)), layer])
    np.testing.assert_allclose(ours.predict(x, verbose=0), reference(x).numpy(), atol=1e-5)


# -- counts and memory ---------------------------------------------------------------------------
def test_memory_counts_values_and_indices_at_their_widths():
    cost = models.rbs_lstm_cost(57_600, 256, 0.999, 0.5)
    assert (cost.input_map_params, cost.recurrent_params) == (1_024 * 58, 1_024 * 128)
    assert (cost.input_index_bits, cost.recurrent_index_bits) == (16, 8)  # 57,600 < 2^16, 256 = 2^8
    assert cost.memory_bits(10, 8, 12) == 1_024 * 58 * (10 + 16) + 1_024 * 128 * (8 + 8) + 1_024 * 12
    assert cost.dense_params == 57_600 * 1_024 + 256 * 1_024 + 1_024
    model, _ = rbs_model(2, 57_600, 256, 0.999, 0.5, np.random.default_rng(0))
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == cost.params  # the indices are not parameters that train


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, "half", True])
@pytest.mark.parametrize("parameter", ["input_sparsity", "recurrent_sparsity"])
def test_ratios_outside_zero_one_name_the_parameter_and_value(parameter, ratio):
    kwargs = {"input_sparsity": 0.5, parameter: ratio}
    with pytest.raises(ValueError, match=re.escape(f"'{parameter}' must be a sparsity ratio in [0, 1), got {ratio!r}")):
        models.RowBalancedSparseLSTM(8, **kwargs)


def edit_indices(path, edit):
    """Apply ``edit(array)`` to the stored kernel_indices of a saved .h5 model."""
    with h5py.File(path, "r+") as f:
        names = []
        f.visit(names.append)
        name = next(n for n in names if n.endswith("kernel_indices:0") and "recurrent" not in n.split("/")[-1])
        data = f[name][()]
        edit(data)
        f[name][...] = data


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda a: a.__setitem__((3, 1), 24), r"row 3 has column index 24, outside 0..23"),
        (lambda a: a.__setitem__((5, 0), -1), r"row 5 has column index -1, outside 0..23"),
        (lambda a: a.__setitem__((2, 1), a[2, 0]), r"row 2 repeats column index"),
    ],
)
def test_a_stored_layer_with_bad_indices_is_refused_on_load_and_conversion(edit, message, tmp_path, rng):
    model, layer = rbs_model(3, 24, 8, 0.5, 0.5, rng, **quantizers("w12"))
    model.save(tmp_path / "m.h5")
    edit_indices(tmp_path / "m.h5", edit)
    with pytest.raises(ValueError, match=r"m\.h5: layer 'rbs' kernel_indices: " + message):
        models.load_model(tmp_path / "m.h5")
    bad = layer.cell.input_map_weights[1].numpy()
    edit(bad)
    layer.cell.input_map_weights[1].assign(bad)
    with pytest.raises(ValueError, match=r"layer 'rbs' kernel_indices: " + message):
        hls_project.convert(model, tmp_path / "prj")


def test_a_stored_layer_whose_rows_differ_from_its_ratio_is_refused(tmp_path, rng):
    model, _ = rbs_model(3, 24, 8, 0.5, 0.5, rng)
    model.save(tmp_path / "m.h5")
    set_layer_config(tmp_path / "m.h5", "RowBalancedSparseLSTM", input_sparsity=0.75)
    with pytest.raises(
        ValueError, match=r"m\.h5: a stored weight does not fit .*rbs/.*sparse_kernel.*\(32, 6\).*\(32, 12\)"
    ):
        models.load_model(tmp_path / "m.h5")
    with pytest.raises(ValueError, match=r"every one of the 32 rows must have exactly nnz = 6"):
        RBShape.create(24, 32, 0.75).check_indices(np.zeros((32, 12)), "layer 'rbs' kernel_indices")


# -- the kernel's schedule -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "n_in, n_out, sparsity", [(24, 32, 0.5), (25, 28, 0.95), (57_600, 1_024, 0.999), (256, 1_024, 0.5)]
)
@pytest.mark.parametrize("reuse_factor", [1, 2, 3, 16, 1000])
def test_every_pe_reads_its_own_banks_and_meets_the_reuse_factor(n_in, n_out, sparsity, reuse_factor):
    """The fewest PEs, in pairs (a copy of the input per two), that take a row's terms within the
    reuse factor; only the last row group may be short of rows (its PEs idle)."""
    shape = RBShape.create(n_in, n_out, sparsity)
    schedule = SparseSchedule.at(shape, reuse_factor)
    assert schedule.pes % 2 == 0 or schedule.pes == n_out
    assert schedule.read_conflicts() == []
    assert schedule.groups == -(-n_out // schedule.pes) and schedule.copies * 2 >= schedule.pes
    idle = schedule.product_cycles * schedule.pes - shape.macs  # terms of the last group's missing rows
    assert 0 <= idle < schedule.pes * shape.nnz and (idle == 0) == (n_out % schedule.pes == 0)
    assert schedule.pes * reuse_factor >= shape.nnz or schedule.pes == n_out
    assert all(pes * reuse_factor < shape.nnz for pes in range(2, schedule.pes, 2))


@pytest.mark.parametrize("pes", [4, 5])
def test_layout_gives_each_pe_its_rows(pes, rng):
    """``[row group][slot][pe]``: PE p's term ``slot`` of row ``group * pes + p``; the rows past the
    last (when pes does not divide them) zero."""
    shape = RBShape.create(20, 12, 0.5)
    schedule = SparseSchedule(shape, pes=pes)
    values = rng.integers(1, 1000, shape.stored_shape)
    stored = schedule.layout(values)
    assert stored.size == schedule.groups * pes * shape.nnz
    for step in range(schedule.product_cycles):
        group, slot = divmod(step, shape.nnz)
        for p in range(pes):
            row = group * pes + p
            assert stored[step * pes + p] == (values[row, slot] if row < shape.n_out else 0)


# -- C-simulation: bit-exact with the NumPy reference, within 1 LSB of Keras ------------------
CSIM_CASES = [
    # preset, n_in, units, input ratio, recurrent ratio, frames, io_type, reuse, return_sequences
    ("w8", 24, 8, 0.5, 0.5, 3, "io_stream", 1, True),  # all types <= 8 bits
    ("w12", 24, 8, 0.0, 0.0, 16, "io_parallel", 2, True),  # 0%: the dense LSTM
    ("w16", 25, 7, 0.95, 0.5, 16, "io_stream", 3, True),  # 95% input, different ratios
    ("w12", 24, 8, 0.9, 0.25, 1, "io_parallel", 1, False),  # one frame, several PEs
    ("w12", 24, 8, 0.5, 0.5, 3, "io_stream", 2, True),  # 6 input PEs on 32 rows: a short last group
    ("w8", 24, 5, 0.5, 0.25, 2, "io_parallel", 2, False),  # 6 input PEs on 20 rows
]


@pytest.mark.parametrize("preset, n_in, units, ratio_x, ratio_h, steps, io_type, reuse, sequences", CSIM_CASES)
def test_csim_bit_exact(tmp_path, rng, preset, n_in, units, ratio_x, ratio_h, steps, io_type, reuse, sequences):
    model, layer = rbs_model(
        steps, n_in, units, ratio_x, ratio_h, rng, return_sequences=sequences, **quantizers(preset)
    )
    x = rng.uniform(-3, 3, (8, steps, n_in)).astype(np.float32)
    check_csim(model, layer, x, tmp_path / "prj", io_type=io_type, reuse_factor=reuse)


def test_generated_config_matches_the_schedule_and_the_estimate(tmp_path, rng):
    from overlay.estimate import layer_estimate

    model, layer = rbs_model(4, 25, 7, 0.8, 0.5, rng, **quantizers("w12"))
    hls_model = hls_project.convert(model, tmp_path / "prj", reuse_factor=2)
    hls_model.write()
    parameters = (tmp_path / "prj/firmware/parameters.h").read_text()
    node = next(n for n in hls_model.get_layers() if isinstance(n, RowBalancedSparseLSTMLayer))
    estimate = layer_estimate(node)
    for suffix, schedule, what in zip("xh", node.schedules(), ("input map", "recurrent map"), strict=True):
        struct = parameters[parameters.index(f"struct config{node.index}_{suffix} ") :]
        keys = ("pes", "groups", "copies", "nnz")
        constants = {key: int(re.search(rf"{key} = (\d+);", struct).group(1)) for key in keys}
        assert constants == dict(
            zip(keys, (schedule.pes, schedule.groups, schedule.copies, schedule.shape.nnz), strict=True)
        )
        stage = next(s for s in estimate.stages if s.name == f"{what} products")
        assert stage.multipliers == constants["pes"]
        if suffix == "x":  # into the zx FIFO: a group every max(nnz, pes) cycles, then the last group's sums
            assert stage.iterations == constants["groups"] * max(constants["nnz"], constants["pes"])
            assert stage.tail == constants["pes"]
        else:  # into zh: a group every nnz cycles
            assert stage.iterations * stage.ii * stage.multipliers == schedule.shape.macs
    cost = models.rbs_lstm_cost(25, 7, 0.8, 0.5)
    assert estimate.macs == 4 * (cost.input_map_macs + cost.recurrent_macs)
    assert estimate.dense_macs == 4 * cost.dense_params - 4 * cost.bias_params


def test_paper_video_shape_fits_pynq_z2_and_csim_bit_exact(tmp_path, rng):
    """57,600 -> 4 x 256 at 99.9% input / 90% recurrent sparsity (58 and 26 values per row): fits
    pynq-z2 by the estimate, converts, compiles and matches the reference."""
    from overlay.estimate import estimate_network, largest_fitting_setting, with_reuse_factor

    model, layer = rbs_model(2, 57_600, 256, 0.999, 0.9, rng, scale=0.3, **quantizers("w12"))
    x = rng.uniform(0, 1, (2, 2, 57_600)).astype(np.float32)
    hls_model = check_csim(model, layer, x, tmp_path / "prj", keras_lsb=False, io_type="io_stream")
    fits = largest_fitting_setting(hls_model, "pynq-z2", 100, 1)
    assert fits is not None
    with_reuse_factor(hls_model, fits)
    assert estimate_network(hls_model, "pynq-z2", 100).over() == []
