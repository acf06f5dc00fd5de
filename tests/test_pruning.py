"""Row-balanced, dual-ratio gradual pruning (``models.pruning``): the masks are row-balanced at every
step and reach each matrix's own target, pruned weights stay zero, the schedule is tfmot's, the
sensitivity sweep picks the least memory within tolerance, bad ratios are one-line errors, a failed
run writes nothing, and the converted layer computes the masked dense LSTM."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
from conftest import failure, qlstm_classifier, refusal, trained_tiny_dense_classifier

from models.pruning import (
    PruningConfig,
    PruningError,
    choose_pair,
    main,
    pair_table,
    prune,
    row_balanced_mask,
    schedule,
    schedule_table,
    sensitivity,
    to_row_balanced,
)
from models.row_balanced import RBShape
from models.saving import write_staged
from models.train import FineTune, quantizer_kwargs

# trained_tiny_dense_classifier's LSTM: W_x is 64 x 32, W_h 8 x 32
INPUT, RECURRENT = 0.9, 0.5
CONFIG = PruningConfig(steps=3, epochs_per_step=1, hold_epochs=1, batch_size=16)


def needs_rbs_lstm():
    if importlib.util.find_spec("models.rbs_lstm") is None:
        pytest.skip("models/rbs_lstm.py (RowBalancedSparseLSTM) is not in the tree yet")


@pytest.fixture(scope="module")
def trained():
    return trained_tiny_dense_classifier()


class Watch(tf.keras.callbacks.Callback):
    """After every batch (the masks applied): non-zeros per output row of both matrices, and the zeros."""

    def __init__(self, lstm):
        super().__init__()
        self.lstm = lstm
        self.counts, self.zeros = [], []

    def on_train_batch_end(self, batch, logs=None):
        matrices = [self.lstm.cell.kernel.numpy(), self.lstm.cell.recurrent_kernel.numpy()]
        self.counts.append([np.count_nonzero(w, axis=0) for w in matrices])
        self.zeros.append([w == 0 for w in matrices])


@pytest.fixture(scope="module")
def pruned(trained):
    model, (x, y, x_test, y_test) = trained
    watch = {}

    class Attach(tf.keras.callbacks.Callback):  # the copy's LSTM exists only once prune has cloned the model
        def on_train_begin(self, logs=None):
            watch["w"] = Watch(self.model.get_layer("dense_lstm"))

        def on_train_batch_end(self, batch, logs=None):
            watch["w"].on_train_batch_end(batch, logs)

    run = prune(model, x, y, INPUT, RECURRENT, CONFIG, validation=(x_test, y_test), callbacks=[Attach()])
    return run, watch["w"]


def test_masks_are_row_balanced_at_every_step_and_reach_each_matrix_target(trained, pruned):
    run, watch = pruned
    model, (x, *_) = trained
    steps_per_epoch = math.ceil(len(x) / CONFIG.batch_size)
    assert len(watch.counts) == CONFIG.epochs * steps_per_epoch
    history = run.history
    assert [entry["training_step"] for entry in history] == [k * steps_per_epoch for k in range(CONFIG.steps + 1)]
    for batch, counts in enumerate(watch.counts):
        entry = [e for e in history if e["training_step"] <= batch][-1]  # the mask in force
        for name, per_row in zip(("input", "recurrent"), counts, strict=True):
            assert np.all(per_row == entry[f"{name}_nnz"]), (batch, name, per_row)  # every row alike
    final = history[-1]
    shapes = RBShape.create(64, 32, INPUT), RBShape.create(8, 32, RECURRENT)
    assert (final["input_sparsity"], final["recurrent_sparsity"]) == (INPUT, RECURRENT)
    assert (final["input_nnz"], final["recurrent_nnz"]) == (shapes[0].nnz, shapes[1].nnz) == (7, 4)
    # the two matrices follow their own ramps, increasing to their targets
    for name in ("input", "recurrent"):
        ramp = [entry[f"{name}_sparsity"] for entry in history]
        assert ramp == sorted(ramp) and ramp[0] == 0.0
    assert all(0 <= entry["held_out_accuracy"] <= 1 for entry in history)
    np.testing.assert_array_equal(np.count_nonzero(run.kernel, axis=0), 7)
    np.testing.assert_array_equal(np.count_nonzero(run.recurrent_kernel, axis=0), 4)
    # the input model is untouched (prune trains a copy)
    assert np.count_nonzero(model.get_layer("dense_lstm").get_weights()[0]) == 64 * 32


def test_pruned_weights_stay_zero_through_fine_tuning(pruned):
    run, watch = pruned
    for before, after in zip(watch.zeros, watch.zeros[1:], strict=False):
        for zeros_before, zeros_after in zip(before, after, strict=True):
            assert np.all(zeros_after[zeros_before])  # once pruned, zero after every later batch
    for matrix, mask in zip((run.kernel, run.recurrent_kernel), run.masks, strict=True):
        assert np.all(matrix[mask == 0] == 0) and np.all(matrix[mask == 1] != 0)


def test_mask_keeps_each_rows_largest_magnitudes():
    matrix = np.array([[3.0, -1.0], [-5.0, 0.5], [1.0, 2.0], [0.0, -4.0]])  # (n_in 4, n_out 2)
    mask = row_balanced_mask(matrix, 0.5)
    np.testing.assert_array_equal(mask, [[1, 0], [1, 0], [0, 1], [0, 1]])


@pytest.mark.parametrize("kind", ["polynomial", "constant"])
def test_schedule_is_tfmots(kind):
    config = PruningConfig(steps=4, epochs_per_step=2, hold_epochs=1, schedule=kind, power=2.0)
    steps_per_epoch = 3
    ours = schedule(0.8, config, steps_per_epoch)
    f, end = 6, 24
    if kind == "polynomial":
        theirs = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=end, power=2.0, frequency=f)
    else:
        theirs = tfmot.sparsity.keras.ConstantSparsity(0.8, begin_step=0, end_step=end, frequency=f)
    assert type(ours) is type(theirs)
    n_steps = end + 2 * f
    table_should, table_value = schedule_table(ours, n_steps, 0.8)
    for step in range(n_steps):
        should, value = theirs(step)  # tfmot called directly, one step at a time
        assert table_should[step] == bool(should) == (step % f == 0 and step <= end)
        assert table_value[step] == pytest.approx(float(value), abs=1e-6)
    assert table_value[end] == 0.8  # exactly the target (float32 snapped)


def test_run_followed_tfmots_schedule(trained, pruned):
    run, _ = pruned
    _, (x, *_) = trained
    steps_per_epoch = math.ceil(len(x) / CONFIG.batch_size)
    for target, name in ((INPUT, "input"), (RECURRENT, "recurrent")):
        reference = tfmot.sparsity.keras.PolynomialDecay(
            0.0, target, begin_step=0, end_step=CONFIG.steps * steps_per_epoch, frequency=steps_per_epoch
        )
        for entry in run.history:
            should, value = reference(entry["training_step"])
            assert bool(should) and entry[f"{name}_sparsity"] == pytest.approx(float(value), abs=1e-6)


def test_choose_pair_takes_least_memory_within_tolerance():
    table = [
        dict(input_sparsity=0.0, recurrent_sparsity=0.0, memory_bits=1000, estimated_loss=0.0),
        dict(input_sparsity=0.9, recurrent_sparsity=0.0, memory_bits=300, estimated_loss=0.01),
        dict(input_sparsity=0.9, recurrent_sparsity=0.5, memory_bits=200, estimated_loss=0.03),
        dict(input_sparsity=0.5, recurrent_sparsity=0.9, memory_bits=500, estimated_loss=0.0),
        dict(input_sparsity=0.95, recurrent_sparsity=0.9, memory_bits=100, estimated_loss=0.2),
        dict(input_sparsity=0.8, recurrent_sparsity=0.5, memory_bits=300, estimated_loss=0.005),
    ]
    assert choose_pair(table, 0.02) is table[5]  # 300 bits twice: the smaller loss wins
    assert choose_pair(table, 0.03) is table[2]  # the tolerance is inclusive
    assert choose_pair(table, 0.0) is table[3]
    assert choose_pair(table, 1.0) is table[4]
    with pytest.raises(ValueError, match="no pair"):
        choose_pair(table[1:3], 0.001)


def test_pair_table_adds_single_losses_and_ignores_gains():
    rows = pair_table(0.9, {0.0: 0.9, 0.5: 0.95}, {0.0: 0.9, 0.5: 0.8}, lambda a, b: 100 - 10 * a - b)
    by_pair = {(r["input_sparsity"], r["recurrent_sparsity"]): r for r in rows}
    assert len(rows) == 4 and by_pair[0.0, 0.0]["estimated_loss"] == 0.0
    assert by_pair[0.5, 0.0]["estimated_loss"] == 0.0  # a gain counts as no loss
    assert by_pair[0.5, 0.5]["estimated_loss"] == pytest.approx(0.1)
    assert by_pair[0.5, 0.5]["memory_bits"] == 94


@pytest.mark.slow  # trains a model per ratio (~1 min); the choice rule alone: test_choose_pair_*
def test_sensitivity_picks_least_memory_pair_within_tolerance_from_its_table(trained, capsys):
    needs_rbs_lstm()
    from models.rbs_lstm import rbs_lstm_cost

    model, (x, y, x_test, y_test) = trained
    config = PruningConfig(steps=1, epochs_per_step=1, hold_epochs=1, schedule="constant", batch_size=16)
    result = sensitivity(model, x, y, x_test, y_test, (0.5, 0.9), tolerance=0.05, config=config)
    assert len(result.table) == 9  # (0, 0.5, 0.9) x (0, 0.5, 0.9)
    assert set(result.input_accuracy) == set(result.recurrent_accuracy) == {0.0, 0.5, 0.9}
    for row in result.table:
        loss = sum(
            max(0.0, result.dense_accuracy - accuracy[row[f"{name}_sparsity"]])
            for name, accuracy in (("input", result.input_accuracy), ("recurrent", result.recurrent_accuracy))
        )
        assert row["estimated_loss"] == pytest.approx(loss)
        cost = rbs_lstm_cost(64, 8, row["input_sparsity"], row["recurrent_sparsity"])
        assert row["memory_bits"] == cost.memory_bits(10, 10, 10)  # models.train's quantizers: 10 bits
    within = [row for row in result.table if row["estimated_loss"] <= 0.05]
    assert result.choice["memory_bits"] == min(row["memory_bits"] for row in within)
    assert result.choice["estimated_loss"] <= 0.05
    printed = capsys.readouterr().out
    assert "<- chosen" in printed and "estimated loss" in printed


def test_bad_ratios_and_config_values_are_value_errors(trained):
    model, (x, y, *_) = trained
    for ratio, name in ((1.0, "input_sparsity"), (-0.1, "input_sparsity"), ("0.5", "input_sparsity")):
        with pytest.raises(ValueError, match=f"'{name}' must be a sparsity ratio in \\[0, 1\\)"):
            prune(model, x, y, ratio, 0.5, CONFIG)
    with pytest.raises(ValueError, match="'recurrent_sparsity'"):
        prune(model, x, y, 0.5, 1.5, CONFIG)
    with pytest.raises(ValueError, match="hold_epochs"):
        PruningConfig(hold_epochs=0)
    with pytest.raises(ValueError, match="schedule"):
        PruningConfig(schedule="cubic")
    with pytest.raises(ValueError, match="tolerance"):
        sensitivity(model, x, y, x, y, (0.5,), tolerance=2.0)


def test_nan_in_training_raises_and_names_the_step(trained):
    model, (x, y, _, _) = trained
    poisoned = x.copy()
    poisoned[0, 0, 0] = np.nan
    with pytest.raises(PruningError, match=r"pruning diverged at step 0 .*loss nan"):
        prune(model, poisoned, y, INPUT, RECURRENT, CONFIG)


def test_write_staged_writes_all_or_nothing(tmp_path):
    def broken(path):
        raise OSError("disk full")

    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        write_staged(out, {"a.txt": lambda path: path.write_text("a"), "b.txt": broken})
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no staging folder left either
    write_staged(out, {"a.txt": lambda path: path.write_text("a"), "b.txt": lambda path: path.write_text("b")})
    assert sorted(path.name for path in out.iterdir()) == ["a.txt", "b.txt"]


TINY_CLI = ["--clips", "16", "--frames", "2", "--height", "4", "--width", "4", "--units", "4", "--epochs", "1"]
TINY_CLI += ["--steps", "1", "--epochs-per-step", "1", "--hold-epochs", "1", "--finetune-epochs", "1"]


@pytest.mark.parametrize(
    "arguments, named",
    [
        (["--input-sparsity", "1"], "--input-sparsity"),
        (["--input-sparsity", "1.5"], "--input-sparsity"),
        (["--input-sparsity", "-0.1"], "--input-sparsity"),
        (["--input-sparsity", "nan"], "--input-sparsity"),
        (["--input-sparsity", "most"], "--input-sparsity"),
        (["--input-sparsity", "0.9", "--recurrent-sparsity", "1"], "--recurrent-sparsity"),
        (["--sweep", "--ratios", "0.5", "1.0"], "--ratios"),
        (["--sweep", "--tolerance", "2"], "--tolerance"),
        (["--sweep", "--input-sparsity", "0.9"], "--sweep"),
        (["--recurrent-sparsity", "0.5"], "--input-sparsity"),  # no target for W_x
        (["--input-sparsity", "0.9", "--hold-epochs", "0"], "--hold-epochs"),
        (["--input-sparsity", "0.9", "--out", "{tmp}/file"], "--out"),
    ],
)
def test_cli_refuses_bad_arguments_in_one_line(tmp_path, capsys, arguments, named):
    assert named in refusal(main, arguments, tmp_path, capsys, before=["--height", "8", "--width", "8", "--units", "8"])


def test_cli_diverging_run_exits_with_one_line_and_writes_nothing(tmp_path, capsys):
    arguments = [*TINY_CLI, "--input-sparsity", "0.9", "--learning-rate", "1e38"]
    assert "pruning diverged at step" in failure(main, arguments, tmp_path, capsys)


def test_cli_writes_models_and_report(tmp_path, capsys):
    needs_rbs_lstm()
    import models

    out = tmp_path / "out"
    assert main([*TINY_CLI, "--input-sparsity", "0.75", "--recurrent-sparsity", "0.5", "--out", str(out)]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["dense_lstm.h5", "rbs_lstm.h5", "train_report.json"]
    report = json.loads((out / "train_report.json").read_text())
    assert report["dataset"]["kind"] == "synthetic"
    entry = report["models"]["rbs_lstm"]
    assert (entry["input_sparsity"], entry["recurrent_sparsity"]) == (0.75, 0.5)
    assert report["pruning"]["history"][-1]["input_nnz"] == 4  # 16 inputs, 0.75
    loaded = models.load_model(out / "rbs_lstm.h5")
    assert isinstance(loaded.get_layer("rbs_lstm"), models.RowBalancedSparseLSTM)
    assert "epoch" in capsys.readouterr().out  # the progress bar


def test_converted_layer_equals_dense_lstm_with_masked_weights(trained, pruned):
    needs_rbs_lstm()
    import models

    run, _ = pruned
    _, (_, _, x_test, _) = trained
    classifier, error = to_row_balanced(run.model, INPUT, RECURRENT)  # no quantizers: float
    assert error == pytest.approx(0.0, abs=1e-12)  # the masks are the row-balanced pattern already
    layer = classifier.get_layer("rbs_lstm")
    assert isinstance(layer, models.RowBalancedSparseLSTM)
    np.testing.assert_array_equal(classifier.layers[-1].get_weights()[0], run.model.layers[-1].get_weights()[0])
    expected = run.model.predict(x_test, verbose=0)  # the Keras LSTM with the masked weights
    np.testing.assert_allclose(classifier.predict(x_test, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_compress_quantized_result_converts(trained, tmp_path):
    needs_rbs_lstm()
    from qkeras import quantized_bits

    from models.pruning import compress

    model, (x, y, x_test, y_test) = trained
    config = PruningConfig(steps=1, epochs_per_step=1, hold_epochs=1, batch_size=16)
    finetune = FineTune(1, quantizer_kwargs(), quantized_bits(12, 3, alpha=1))
    result = compress(model, x, y, x_test, y_test, INPUT, RECURRENT, config, finetune)
    assert 0.0 <= result.held_out_accuracy <= 1.0 and 0.0 <= result.pruned_accuracy <= 1.0
    assert type(result.model.layers[-1]).__name__ == "QDense"
    if importlib.util.find_spec("hls_project.rbs_lstm") is None:
        pytest.skip("hls_project/rbs_lstm.py is not in the tree yet")
    import hls_project

    hls_project.convert(result.model, tmp_path / "hls", echo=lambda line: None)


def test_qkeras_qlstm_model_is_pruned_row_balanced(trained):
    _, (x, y, _, _) = trained
    model = qlstm_classifier(x, y)
    run = prune(model, x, y, 0.75, 0.25, PruningConfig(steps=1, epochs_per_step=1, hold_epochs=1, batch_size=16))
    np.testing.assert_array_equal(np.count_nonzero(run.kernel, axis=0), 16)
    np.testing.assert_array_equal(np.count_nonzero(run.recurrent_kernel, axis=0), 6)
