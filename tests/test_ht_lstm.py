"""HT-LSTM: tree math vs the dense matrix, HT-SVD, counts, bank schedule, bit-exact C-simulation."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import check_csim, family_model, quantizers, random_weights

import hls_project
import models
from hls_project import ht_lstm as hls_ht_lstm
from hls_project.ht_lstm import BankView, read_conflicts
from models.ht import HTShape, balanced_tree, ht_matvec, ht_svd, ht_to_dense
from models.ht_lstm import ht_lstm_shape

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
def test_schedule_equals_dense_and_is_conflict_free(input_modes, output_modes, ranks, rng):
    shape = HTShape.create(input_modes, output_modes, ranks)
    cores = [rng.normal(size=shape.core_shape(node.index)) for node in shape.nodes]
    x = rng.normal(size=(3, shape.n_in))
    dense = ht_to_dense(cores, shape)
    np.testing.assert_allclose(ht_matvec(x, cores, shape), x @ dense, rtol=1e-12, atol=1e-12)
    recovered, error = ht_svd(dense, shape)
    assert error < 1e-10
    assert read_conflicts(shape) == []


def test_ucf11_schedule_is_conflict_free_and_a_naive_banking_is_not(monkeypatch):
    shape = ht_lstm_shape(**UCF11)
    assert read_conflicts(shape) == []

    class Cyclic(BankView):
        def bank(self, address):
            return address % self.banks

    monkeypatch.setattr(
        BankView, "of", classmethod(lambda cls, s: Cyclic() if s is None else Cyclic(s.p, s.u, s.q, s.v, s.b))
    )
    assert read_conflicts(shape) != []


def test_keras_layer_equals_dense_lstm_at_full_rank(rng):
    dense = tf.keras.layers.LSTM(4, return_sequences=True)
    inputs = tf.keras.Input((6, 12))
    dense_model = tf.keras.Model(inputs, dense(inputs))
    kernel, recurrent, bias = dense.get_weights()
    # modes (2,8) (3,1) (2,2): full ranks of the matricizations
    layer, error = models.HTLSTM.from_dense(
        kernel, recurrent, bias, [2, 3, 2], [2, 1, 2], [12, 3, 4, 4, 1], return_sequences=True
    )
    assert error < 1e-6
    model = tf.keras.Sequential([tf.keras.Input((6, 12)), layer])
    x = rng.normal(size=(5, 6, 12)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), dense_model.predict(x, verbose=0), atol=1e-5)


def test_get_config_round_trip_h5_and_keras(tmp_path, rng):
    model, layer = ht_model(3, [2, 3, 4], [2, 2, 2], [3, 2, 3, 4, 1], **quantizers("w8"))
    random_weights(layer, rng, 0.5)
    assert models.HTLSTM.from_config(layer.get_config()).get_config() == layer.get_config()
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    loaded = models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(models.load_model(tmp_path / "m.h5").get_weights()[0], model.get_weights()[0])
    x = rng.uniform(-2, 2, (3, 3, 24)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


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
    ("w8", ([2, 3, 4], [2, 2, 2]), [3, 2, 3, 4, 1], 16, "io_parallel", 1, False),
    ("w12", ([4, 6], [2, 4]), [1, 1, 1], 1, "io_stream", 2, True),
    ("w16", ([2, 3, 2, 2], [2, 1, 2, 2]), [3, 3, 6, 2, 3, 5, 1], 16, "io_stream", 1, True),
    ("w12", ([2, 3, 4], [2, 2, 2]), [3, 2, 3, 4, 1], 1, "io_parallel", 3, False),
]


@pytest.mark.parametrize("preset, modes, ranks, steps, io_type, reuse, return_sequences", CSIM_CASES)
def test_csim_bit_exact(tmp_path, rng, preset, modes, ranks, steps, io_type, reuse, return_sequences):
    model, layer = ht_model(steps, *modes, ranks, return_sequences=return_sequences, **quantizers(preset))
    random_weights(layer, rng, 0.6)
    x = rng.uniform(-3, 3, (12, steps, int(np.prod(modes[0])))).astype(np.float32)
    check_csim(model, layer, x, hls_ht_lstm.execute, tmp_path / "prj", io_type=io_type, reuse_factor=reuse)
    assert "banks" in (tmp_path / "prj" / "firmware" / "parameters.h").read_text()  # the per-step table


def test_overlay_and_host_take_an_ht_model_unchanged(overlays, tmp_path, rng):
    """Also: the TT overlay's library is loaded in the same process first. Both projects name
    their layer config2 with the same types, so their statics (state, buffers) must stay apart."""
    from qkeras import QDense, quantized_bits

    from host import Accelerator
    from overlay import MissingToolError, build_overlay

    model, layer = ht_model(4, [2, 3, 4], [2, 2, 2], [3, 2, 3, 4, 1], **quantizers("w12"))
    random_weights(layer, rng, 0.6)
    head = QDense(3, kernel_quantizer=quantized_bits(10, 2, alpha=1), bias_quantizer=quantized_bits(10, 2, alpha=1))
    classifier = tf.keras.Model(model.input, head(model.output))
    classifier.save(tmp_path / "ht.h5")
    with pytest.raises(MissingToolError):
        build_overlay(tmp_path / "ht.h5", "pynq-z2", tmp_path / "overlay")
    clips = rng.uniform(-3, 3, (6, 4, 24)).astype(np.float32)
    hls_model = hls_project.convert(classifier, tmp_path / "csim")
    hls_model.compile()
    csim = np.asarray(hls_model.predict(clips)).reshape(len(clips), -1)
    with (
        Accelerator(overlays["clip"]["overlay"], backend="emulated") as tt_accelerator,
        Accelerator(tmp_path / "overlay", backend="emulated") as accelerator,
    ):
        tt_before = tt_accelerator.run_clip(np.ones((6, 24)))
        emulated = np.stack([accelerator.run_clip(clip)[0] for clip in clips])
        np.testing.assert_array_equal(tt_accelerator.run_clip(np.ones((6, 24))), tt_before)
    np.testing.assert_array_equal(emulated, csim)


# -- FDHT-LSTM: [x_t; h_t-1] through the same HT engine -----------------------------------------
def test_fdht_ucf11_counts_are_in_the_published_range():
    cost = models.fdht_lstm_cost([8, 20, 20, 19], [4, 4, 4, 4], 6, n_in=57_600)
    assert cost.input_map_params == 6 * (8 * 16 + 20 * 4 + 20 * 4 + 19 * 4) + 2 * 6**3 + 6**2 == 2_652
    assert cost.params == 3_676 and 3_132 <= cost.params <= 8_808
    assert cost.dense_params == 59_245_568
    layer = models.FDHTLSTM(256, input_modes=[8, 20, 20, 19], output_modes=[4, 4, 4, 4], ht_ranks=6)
    model = tf.keras.Sequential([tf.keras.Input((2, 57_600)), layer])
    assert model.count_params() == cost.params


def test_fdht_equals_dense_lstm_at_full_rank(rng):
    """The joined map [W; U] by exact HT-SVD reproduces Keras' LSTM, recurrence included."""
    dense = tf.keras.layers.LSTM(4, return_sequences=True)
    inputs = tf.keras.Input((6, 10))
    dense_model = tf.keras.Model(inputs, dense(inputs))
    kernel, recurrent, bias = dense.get_weights()
    # [x; h] has 14 values, padded to 2 * 2 * 4 = 16; modes (2,8) (2,1) (4,2)
    layer, error = models.FDHTLSTM.from_dense(
        kernel, recurrent, bias, [2, 2, 4], [2, 1, 2], [16, 2, 8, 8, 1], return_sequences=True
    )
    assert error < 1e-6
    model = tf.keras.Sequential([tf.keras.Input((6, 10)), layer])
    x = rng.normal(size=(5, 6, 10)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), dense_model.predict(x, verbose=0), atol=1e-5)


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
        models.FDHTLSTM, steps, [2, 4, 4], [2, 2, 2], n_features=20, ht_ranks=ranks,
        return_sequences=return_sequences, **quantizers(preset),
    )  # fmt: skip
    random_weights(layer, rng, 0.6)
    x = rng.uniform(-3, 3, (12, steps, 20)).astype(np.float32)
    check_csim(model, layer, x, hls_ht_lstm.execute, tmp_path / "prj", io_type=io_type)


@pytest.mark.slow
def test_ucf11_shape_csim_bit_exact(tmp_path, rng):
    """57,600 -> 4 x 256 through the banked HT engine: compiles and matches the reference."""
    model, layer = ht_model(2, **UCF11, **quantizers("w12"))
    x = rng.uniform(0, 1, (2, 2, 57_600)).astype(np.float32)
    check_csim(model, layer, x, hls_ht_lstm.execute, tmp_path / "prj", keras_lsb=False)
