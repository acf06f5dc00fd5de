"""ADMM towards a block-circulant LSTM (``models.admm``): the residual falls, the result is
block-circulant and is the projection of ADMM's final weights, a QKeras ``QLSTM`` classifier is
taken as a Keras ``LSTM`` one, a diverging run stops with a clear error and writes nothing, and the
CLI refuses bad arguments in one line."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import failure, qlstm_classifier, refusal, small_classifier, trained_tiny_dense_classifier

import hls_project
import models
from models.admm import ADMMConfig, ADMMDivergedError, admm, compress, divergence, hard_projection, main
from models.bc_lstm import circulant_matvec
from models.circulant import BCShape, bc_project, bc_to_dense
from models.train import FineTune, quantizer_kwargs

# of the 64 x 32 kernel and the 8 x 32 recurrent kernel of trained_tiny_dense_classifier's LSTM
BLOCK, RECURRENT_BLOCK = 8, 4


@pytest.fixture(scope="module")
def trained():
    return trained_tiny_dense_classifier()


@pytest.fixture(scope="module")
def admm_run(trained):
    model, (x, y, x_test, y_test) = trained
    config = ADMMConfig(iterations=4, epochs_per_iteration=2, rho=0.05, rho_growth=3.0, learning_rate=0.02)
    config = dataclasses.replace(config, batch_size=16)
    return admm(model, x, y, BLOCK, RECURRENT_BLOCK, config, validation=(x_test, y_test))


def test_admm_primal_residual_decreases(trained, admm_run):
    residuals = [entry["primal_residual"] for entry in admm_run.history]
    assert len(residuals) == 5  # iteration 0 (the plain projection) and 4 iterations
    assert all(b < a for a, b in zip(residuals, residuals[1:], strict=False)), residuals
    assert residuals[-1] < 0.5 * residuals[0]
    # iteration 0 is the projection error of the dense model's own matrices
    kernel, recurrent, _ = trained[0].get_layer("dense_lstm").get_weights()
    shapes = BCShape.create(64, 8, BLOCK), BCShape.create(8, 8, RECURRENT_BLOCK)
    projected = [bc_to_dense(bc_project(w, s)[0], s) for w, s in zip((kernel, recurrent), shapes, strict=True)]
    expected = np.sqrt(sum(np.sum((w - p) ** 2) for w, p in zip((kernel, recurrent), projected, strict=True)))
    expected /= np.sqrt(np.sum(kernel.astype(np.float64) ** 2) + np.sum(recurrent.astype(np.float64) ** 2))
    assert residuals[0] == pytest.approx(expected, rel=1e-5)
    rhos = [entry["rho"] for entry in admm_run.history[1:]]
    np.testing.assert_allclose(rhos, 0.05 * 3.0 ** np.arange(4), rtol=1e-6)
    # ADMM trained a copy: the dense model is untouched
    np.testing.assert_array_equal(trained[0].get_layer("dense_lstm").get_weights()[0], kernel)


def test_hard_projection_is_block_circulant_and_projects_the_final_weights(trained, admm_run):
    x_test = trained[1][2]
    bc_model, error = hard_projection(
        admm_run.model, BLOCK, RECURRENT_BLOCK, (admm_run.kernel, admm_run.recurrent_kernel, admm_run.bias)
    )
    cell = bc_model.get_layer("bc_lstm").cell
    shapes = cell.decomposition, cell.recurrent_shape
    assert (shapes[0].block_size, shapes[1].block_size) == (BLOCK, RECURRENT_BLOCK)
    loaded = [cell.input_map_weights[0].numpy(), cell.recurrent_map_weights[0].numpy()]
    finals = (admm_run.kernel, admm_run.recurrent_kernel)
    # what is loaded is the projection of ADMM's final W
    for vectors, final, shape in zip(loaded, finals, shapes, strict=True):
        np.testing.assert_allclose(vectors, bc_project(final, shape)[0], rtol=1e-6, atol=1e-7)
    errors = [bc_project(final, shape)[1] for final, shape in zip(finals, shapes, strict=True)]
    assert error == pytest.approx(max(errors), rel=1e-6)  # the larger of the two
    # the layer's maps are the dense matrices bc_to_dense of its vectors
    for vectors, shape in zip(loaded, shapes, strict=True):
        identity = tf.eye(shape.n_in, dtype=tf.float64)
        layer_matrix = circulant_matvec(identity, tf.constant(vectors, tf.float64), shape).numpy()
        np.testing.assert_allclose(layer_matrix, bc_to_dense(vectors, shape), atol=1e-12)
    # and the whole classifier is a Keras LSTM with those dense matrices and the same head
    dense = tf.keras.models.clone_model(admm_run.model)
    dense.set_weights(admm_run.model.get_weights())
    dense.get_layer("dense_lstm").set_weights(
        [*(bc_to_dense(v, s) for v, s in zip(loaded, shapes, strict=True)), admm_run.bias]
    )
    np.testing.assert_allclose(bc_model.predict(x_test, verbose=0), dense.predict(x_test, verbose=0), atol=1e-4)


def test_compress_quantized_fine_tunes_and_converts(trained, tmp_path):
    from qkeras import quantized_bits

    model, (x, y, x_test, y_test) = trained
    config = ADMMConfig(iterations=2, epochs_per_iteration=1, rho=0.05, rho_growth=3.0, batch_size=16)
    finetune = FineTune(2, quantizer_kwargs(), quantized_bits(12, 3, alpha=1))
    result = compress(model, x, y, x_test, y_test, BLOCK, RECURRENT_BLOCK, config, finetune)
    assert 0.0 <= result.held_out_accuracy <= 1.0
    loss = result.model.evaluate(x_test, y_test, verbose=0)[0]
    assert np.isfinite(loss)
    layer = result.model.get_layer("bc_lstm")
    assert isinstance(layer, models.BlockCirculantLSTM)
    assert set(layer.cell.quantizers) == set(quantizer_kwargs()) and layer.cell.fixed_types
    assert type(result.model.layers[-1]).__name__ == "QDense"
    hls_model = hls_project.convert(result.model, tmp_path / "hls", echo=lambda line: None)
    from hls_project.bc_lstm import BlockCirculantLSTMLayer

    assert any(isinstance(node, BlockCirculantLSTMLayer) for node in hls_model.get_layers())


def test_qkeras_qlstm_model_is_trained_and_projected_block_circulant(trained):
    """ADMM takes a QKeras ``QLSTM`` classifier as pruning does (``models.classifier_surgery``):
    the history runs, the hard projection keeps the QLSTM's activations and the head's weights."""
    _, (x, y, _, _) = trained
    model = qlstm_classifier(x, y, activation="tanh", recurrent_activation="sigmoid")
    config = ADMMConfig(iterations=1, epochs_per_iteration=1, rho=0.05, batch_size=16)
    run = admm(model, x, y, BLOCK, RECURRENT_BLOCK, config)
    assert [entry["iteration"] for entry in run.history] == [0, 1]
    assert all(np.isfinite(entry["primal_residual"]) for entry in run.history)
    bc_model, error = hard_projection(run.model, BLOCK, RECURRENT_BLOCK, (run.kernel, run.recurrent_kernel, run.bias))
    cell = bc_model.get_layer("bc_lstm").cell
    assert (cell.block_size, cell.recurrent_block_size) == (BLOCK, RECURRENT_BLOCK) and 0 < error < 1
    assert (cell.activation, cell.recurrent_activation) == ("tanh", "sigmoid")
    head = [classifier.get_layer("head").get_weights()[0] for classifier in (bc_model, run.model)]
    np.testing.assert_array_equal(*head)


def test_a_model_without_one_lstm_is_refused_naming_its_layers():
    layers = r"its layers: .*tt_lstm \(TTLSTM\)"
    with pytest.raises(ValueError, match=f"exactly one Keras LSTM or QKeras QLSTM layer, it has 0; {layers}"):
        hard_projection(small_classifier(4), BLOCK)


def test_nan_in_training_raises_and_names_the_iteration(trained):
    model, (x, y, _, _) = trained
    poisoned = x.copy()
    poisoned[0, 0, 0] = np.nan
    config = ADMMConfig(iterations=2, epochs_per_iteration=1, batch_size=16)
    with pytest.raises(ADMMDivergedError, match=r"iteration 1\b.*loss nan"):
        admm(model, poisoned, y, BLOCK, RECURRENT_BLOCK, config)


@pytest.mark.parametrize(
    "residuals, diverged",
    [
        ([0.9, 0.7, 0.5, 0.3], None),
        ([0.9, 0.7, 0.8, 0.6], None),  # one rise is not divergence
        ([0.9, 0.5, 0.6, 0.7, 0.8], "grew 3 iterations in a row"),
        ([0.5, 0.4, 1.2], "exceeds 2 x its start"),
        ([0.5, float("nan")], "primal residual nan"),
        ([0.5, float("inf")], "primal residual inf"),
    ],
)
def test_divergence_rule(residuals, diverged):
    reason = divergence(residuals, patience=3, growth_limit=2.0)
    assert reason is None if diverged is None else diverged in reason


TINY_CLI = ["--clips", "16", "--frames", "2", "--height", "4", "--width", "4", "--units", "4"]
TINY_CLI += ["--epochs", "1", "--iterations", "2", "--epochs-per-iteration", "1", "--finetune-epochs", "1"]


def test_cli_writes_models_and_history(tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*TINY_CLI, "--block-size", "4", "--recurrent-block-size", "2", "--out", str(out)]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["bc_lstm.h5", "dense_lstm.h5", "train_report.json"]
    report = json.loads((out / "train_report.json").read_text())
    history = report["admm"]["history"]
    assert [entry["iteration"] for entry in history] == [0, 1, 2]
    assert all(np.isfinite(entry["primal_residual"]) for entry in history)
    assert report["dataset"]["kind"] == "synthetic"
    loaded = models.load_model(out / "bc_lstm.h5")
    cell = loaded.get_layer("bc_lstm").cell
    assert (cell.block_size, cell.recurrent_block_size) == (4, 2)
    assert "epoch" in capsys.readouterr().out  # the progress bar


def test_cli_diverging_run_exits_with_one_line_and_writes_nothing(tmp_path, capsys):
    arguments = [*TINY_CLI, "--block-size", "4", "--learning-rate", "1e30"]
    assert "diverged at iteration 1" in failure(main, arguments, tmp_path, capsys)


@pytest.mark.parametrize(
    "arguments, named",
    [
        (["--block-size", "0"], "--block-size"),
        (["--block-size", "-4"], "--block-size"),
        (["--block-size", "two"], "--block-size"),
        (["--block-size", "100"], "--block-size"),  # more than the 64 x 8 matrix
        (["--recurrent-block-size", "0"], "--recurrent-block-size"),
        (["--recurrent-block-size", "-1"], "--recurrent-block-size"),
        (["--recurrent-block-size", "9"], "--recurrent-block-size"),  # more than the 8 x 8 matrix
        (["--rho", "0"], "--rho"),
        (["--rho-growth", "0.5"], "--rho-growth"),
        (["--iterations", "0"], "--iterations"),
        (["--out", "{tmp}/file"], "--out"),
    ],
)
def test_cli_refuses_bad_arguments_in_one_line(tmp_path, capsys, arguments, named):
    assert named in refusal(main, arguments, tmp_path, capsys, before=["--height", "8", "--width", "8", "--units", "8"])


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match="rho_growth"):
        ADMMConfig(rho_growth=0.5)
    with pytest.raises(ValueError, match="iterations"):
        ADMMConfig(iterations=0)
    with pytest.raises(ValueError, match="'epochs' must be an integer >= 0"):
        FineTune(-1)
