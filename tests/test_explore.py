"""``overlay.explore``: a real two-worker Dask LocalCluster on a tiny sweep (a point that trains,
compiles and estimates, one the family refuses) with this process's Keras in the workers, resume,
the Pareto front against brute force, and the ``--synthesize`` paths that can run without Vivado."""

import contextlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import hls_project
from host import boards
from overlay import explore
from overlay.estimate import estimate_network
from overlay.explore import schedule

REPORTS = Path(__file__).parent / "data" / "hls4ml_reports" / "Vivado"
BOARD = "pynq-z2"
TASK = dict(
    data="synthetic",
    clips=48,
    frames=4,
    height=4,
    width=4,
    channels=1,
    units=4,
    seed=0,
    epochs=1,
    batch_size=32,
    learning_rate=5e-3,
)
REUSE_FACTORS = [1, 4]
pytestmark = pytest.mark.xdist_group("explore")  # one worker runs the module's sweep fixture once


def keras_package() -> str:
    """The package this process's tf.keras is: ``keras`` (2.15) or ``tf_keras``."""
    import tensorflow as tf

    return tf.keras.Model.__module__.split(".")[0]


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """TT-LSTM rank 1 (trained, compiled, estimated) and rank 0 (refused by the family), on a
    LocalCluster of two single-threaded worker processes; also which Keras each worker ran."""
    out = tmp_path_factory.mktemp("explore")
    points = explore.sweep_points("tt_lstm", [2], [0, 1], [8], REUSE_FACTORS, BOARD, TASK)
    workers_keras = {}
    dask_client = schedule.dask_client  # where explore.explore looks it up

    @contextlib.contextmanager
    def recording_client(*args, **kwargs):
        with dask_client(*args, **kwargs) as client:
            yield client
            workers_keras.update(client.run(keras_package))

    schedule.dask_client = recording_client
    try:
        records = explore.explore(points, out)
    finally:
        schedule.dask_client = dask_client
    return points, out, records, workers_keras


def test_a_sweep_records_every_point_and_a_refused_one_with_its_error(tiny_sweep):
    points, out, records, _ = tiny_sweep
    assert len(points) == 2
    lines = [json.loads(line) for line in (out / explore.RESULTS_NAME).read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == sorted(explore.point_id(p) for p in points)
    by_rank = {record["point"]["rank"]: record for record in records.values()}
    assert by_rank[0]["status"] == "failed"
    assert "tt_ranks" in by_rank[0]["error"] and ">= 1" in by_rank[0]["error"]
    assert by_rank[1]["status"] == "ok"
    assert (out / "points" / by_rank[1]["id"] / explore.MODEL_NAME).is_file()


def test_workers_train_with_this_process_s_keras(tiny_sweep):
    """Not tf_keras, which QKeras' import would otherwise hand the workers (``worker_environment``):
    AutoGraph converts tf_keras' code on every trace, a point then trains several times slower."""
    workers_keras = tiny_sweep[3]
    assert len(workers_keras) == 2
    assert set(workers_keras.values()) == {keras_package()}


def test_a_point_s_figures_match_its_saved_model(tiny_sweep):
    """Held-out accuracy of the C-sim against the NumPy bit-accurate reference of the saved model
    (its LSTM layer, then the head with its quantized weights in float64); the estimate against a
    conversion of the saved model at each reuse factor."""
    from models.saving import load_model
    from models.train import load_data

    _, out, records, _ = tiny_sweep
    _, _, x_test, y_test, _ = load_data("synthetic", TASK["clips"], TASK["seed"], TASK["frames"], 4, 4, 1)
    for record in records.values():
        if record["status"] != "ok":
            continue
        model = load_model(out / "points" / record["id"] / explore.MODEL_NAME, compile=False)
        lstm, head = model.get_layer("tt_lstm"), model.get_layer("classifier")
        hidden, _ = hls_project.execute(lstm, x_test)
        kernel = head.kernel_quantizer_internal(head.kernel).numpy().astype(np.float64)
        bias = head.bias_quantizer_internal(head.bias).numpy().astype(np.float64)
        reference = hidden @ kernel + bias
        assert record["accuracy"] == np.mean(reference.argmax(1) == y_test)
        assert record["csim_max_abs_diff"] == pytest.approx(
            np.max(np.abs(reference - model.predict(x_test, verbose=0))), abs=1e-6
        )
        assert record["params"] == model.count_params()
        clock = boards.board(BOARD).clock_mhz
        assert [d["reuse_factor"] for d in record["designs"]] == REUSE_FACTORS
        for design in record["designs"]:
            hls_model = hls_project.convert(
                model,
                out / "check",
                backend="VivadoAccelerator",
                io_type="io_stream",
                board=BOARD,
                clock_period=1000 / clock,
                reuse_factor=design["reuse_factor"],
                echo=lambda message: None,
            )
            estimate = estimate_network(hls_model, BOARD, clock)
            assert design["frames_per_s"] == estimate.frames_per_s
            assert design["fits"] == (not estimate.over())
            total, available = estimate.total(), estimate.part.available()
            assert design["utilization"] == max(total[k] / available[k] for k in available)


def test_a_second_run_computes_nothing(tiny_sweep, monkeypatch):
    points, out, records, _ = tiny_sweep
    before = (out / explore.RESULTS_NAME).read_text()

    def no_cluster(*args, **kwargs):
        raise AssertionError("a resumed sweep with nothing to do started a cluster")

    monkeypatch.setattr(schedule, "dask_client", no_cluster)
    again = explore.explore(points, out)
    assert again == records
    assert (out / explore.RESULTS_NAME).read_text() == before
    assert [explore.point_id(p) for p in explore.pending(points, again, retry_failed=True)] == [
        record["id"] for record in records.values() if record["status"] == "failed"
    ]


def test_the_front_is_printed_and_saved(tiny_sweep, capsys):
    points, out, records, _ = tiny_sweep
    front = explore.report(records, out, BOARD)
    printed = capsys.readouterr().out
    assert "failed: tt_lstm modes 2 rank 0 w8" in printed
    saved = json.loads((out / "front.json").read_text())
    assert saved["front"] == front and saved["estimate"] is True
    assert len(saved["designs"]) == len(REUSE_FACTORS)
    assert all(design["fits"] for design in front) and front
    assert (out / "front.png").stat().st_size > 0


def test_a_line_cut_by_a_killed_run_is_dropped_and_a_bad_one_named(tmp_path):
    results = tmp_path / explore.RESULTS_NAME
    good = json.dumps({"id": "a", "status": "ok"})
    results.write_text(good + '\n{"id": "b", "sta')
    assert list(explore.read_results(results)) == ["a"]
    explore.drop_cut_line(results)
    assert results.read_text() == good + "\n"
    results.write_text('{"id": "a"\n' + good + "\n")
    with pytest.raises(explore.ExploreError, match="line 1: not a JSON record"):
        explore.read_results(results)


def brute_force_front(values, maximize):
    """Row i is on the front iff no row j is >= in every objective and > in one (all pairs at once)."""
    cost = np.where(np.asarray(maximize), -values, values)
    no_worse = np.all(cost[:, None, :] <= cost[None, :, :], axis=2)  # [j, i]: j no worse than i
    better = np.any(cost[:, None, :] < cost[None, :, :], axis=2)
    return ~np.any(no_worse & better, axis=0)


@pytest.mark.parametrize("seed", range(6))
def test_the_pareto_front_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    values = rng.integers(0, 5, (n, 3)).astype(float)  # few levels: ties and duplicates
    values[:, 1] = rng.uniform(0, 1, n) if seed % 2 else values[:, 1]
    maximize = [True, True, False]
    np.testing.assert_array_equal(explore.pareto_front(values, maximize), brute_force_front(values, maximize))


def test_synthesize_names_the_missing_tool(tmp_path, monkeypatch, capsys):
    from overlay.__main__ import main

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(explore.ExploreError, match="vivado_hls, vivado not found on this machine"):
        explore.check_synthesis_tools()
    argv = ["explore", "--family", "tt_lstm", "--board", BOARD, "--out", str(tmp_path / "x"), "--synthesize"]
    assert main([*argv, "--height", "4", "--width", "4", "--units", "4", "--modes", "2", "--ranks", "1"]) == 2
    assert "--synthesize needs vivado_hls and vivado on PATH" in capsys.readouterr().err
    assert not (tmp_path / "x" / explore.RESULTS_NAME).exists()


def test_synthesis_reports_are_read_next_to_the_estimate(tmp_path):
    """The reader ``--synthesize`` uses after the tools, on real Vivado HLS 2020.1 / Vivado reports
    placed where a run leaves them (no tool runs here)."""
    from overlay.reports import read_csynth, read_vivado_utilization

    report_dir = tmp_path / "myproject_prj" / "solution1" / "syn" / "report"
    report_dir.mkdir(parents=True)
    shutil.copy(REPORTS / "myproject_csynth.xml", report_dir)
    shutil.copy(REPORTS / "vivado_synth.rpt", tmp_path)
    estimate = {"total": {"dsp": 10, "bram36": 1.0, "lut": 1000, "ff": 2000}}
    result = explore.measured(tmp_path, 4, estimate)
    hls = read_csynth(report_dir / "myproject_csynth.xml")
    assert result["reuse_factor"] == 4
    assert result["hls"] == hls
    assert result["synth"] == read_vivado_utilization(tmp_path / "vivado_synth.rpt")
    assert result["error"]["dsp"] == (hls["resources"]["dsp"] - 10) / hls["resources"]["dsp"]
    with pytest.raises(explore.ExploreError, match="no C-synthesis report"):
        explore.measured(tmp_path / "myproject_prj", 4, estimate)
