"""The hardware estimate: consistent with the generated configs, monotone in the reuse factor,
board-aware; ``overlay estimate`` and the build's fit check."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf
from conftest import STAND_IN_HWH, family_model, quantizers, run_build
from hypothesis import given
from hypothesis import strategies as st

import hls_project
import models
from hls_project.decomposed import ChainedInputMap
from models.families import project_families
from overlay.estimate import PARTS, estimate_network, largest_fitting_setting, with_reuse_factor

FAMILIES = project_families()
PAPER = {  # the UCF11 shapes: 57,600 features -> 4 x 256
    "tt_lstm": (models.TTLSTM, [8, 20, 20, 18], {"tt_ranks": [1, 4, 4, 4, 1]}),
    "ht_lstm": (models.HTLSTM, [8, 20, 20, 18], {"ht_ranks": 4}),
    "fdht_lstm": (models.FDHTLSTM, [8, 20, 20, 19], {"ht_ranks": 6}),
}


def small_model(name, frames=3, **kwargs):
    layer = FAMILIES[name].for_task(24, 8, 3, 2, name=name, **quantizers("w12"), **kwargs)
    inputs = tf.keras.Input((frames, 24))
    return tf.keras.Model(inputs, layer(inputs))


def paper_model(name):
    layer_class, modes, ranks = PAPER[name]
    return family_model(layer_class, 2, modes, [4, 4, 4, 4], n_features=57_600, **ranks, **quantizers("w12"))[0]


def config_constants(parameters_h: str) -> dict:
    """``{struct name: {constant: value}}`` of every ``static const unsigned`` in parameters.h."""
    structs = {}
    for name, body in re.findall(r"struct (\w+) : nnet::\w+ \{(.*?)\n\};", parameters_h, re.S):
        constants = {}
        for declaration in re.findall(r"static const unsigned ([^;]+);", body):
            for item in declaration.split(","):
                key, value = (part.strip() for part in item.split("="))
                constants[key] = int(value)
        structs[name] = constants
    return structs


def check_chain_stages(configs, stages, index):
    """The decomposed (chained) input map's stages against its written step configs."""
    frame = configs[f"config{index}_frame"]
    accumulate = stages["step 0 (frame) accumulate"]
    assert accumulate.cycles == frame["a"] * frame["u"] * frame["b"] * frame["reuse_factor"]
    assert accumulate.multipliers == frame["multiplier_limit"]
    assert stages["step 0 (frame) round"].cycles == frame["a"] * frame["t"] * frame["b"]
    steps = sorted(key for key in configs if re.fullmatch(rf"config{index}_(tt|ht)\d+", key))
    assert len(steps) == sum(1 for stage in stages if re.fullmatch(r"step \d+", stage))
    for key in steps:
        number = int(re.search(r"(\d+)$", key).group(1))
        step, stage = configs[key], stages[f"step {number}"]
        outputs = (
            step["n_left"] * step["n_out"] * step["n_right"] * step["rank_out"]
            if "n_left" in step
            else step["a"] * step["p"] * step["q"] * step["t"] * step["b"]
        )
        assert stage.cycles == outputs * step["reuse_factor"]
        assert stage.multipliers == step["multiplier_limit"]


@pytest.mark.parametrize("reuse_factor", [1, 3])
@pytest.mark.parametrize("name", FAMILIES)
def test_stage_cycles_and_multipliers_equal_the_generated_configs(name, reuse_factor, tmp_path):
    """Every stage's cycles are its trip count x II and its multipliers the ALLOCATION limit, both
    read back from the written parameters.h (the estimate and the C++ share one schedule)."""
    hls_model = hls_project.convert(
        small_model(name), tmp_path / "prj", io_type="io_stream", reuse_factor=reuse_factor, echo=lambda m: None
    )
    hls_model.write()
    parameters_h = (tmp_path / "prj/firmware/parameters.h").read_text()
    configs = config_constants(parameters_h)
    node = next(n for n in hls_model.get_layers() if type(n).__name__.endswith("LSTMLayer"))
    stages = {stage.name: stage for stage in node.estimate().stages}
    index = node.index
    if isinstance(node, ChainedInputMap):
        check_chain_stages(configs, stages, index)  # other input maps: in their family's tests
    cell = configs[f"config{index}"]
    if "recurrent map" in stages:  # the dense recurrent map
        n, block = cell["n_state"], cell["recurrent_block"]
        assert stages["recurrent map"].cycles == 4 * n * (n // block)
        assert stages["recurrent map"].multipliers == block
    assert stages["state update"].multipliers == cell["state_multiplier_limit"]
    assert stages["state update"].cycles == cell["n_state"] * cell["reuse_factor"]
    # nnet::lstm_call: a family with a recurrent map runs its input half (the map, then the send of
    # 4 * n_state pre-activations into the FIFO) a frame ahead; a fused one runs frame after frame
    fused = re.search(rf"struct config{index} : .*?fused_recurrent = (\w+);", parameters_h, re.S).group(1)
    estimate = node.estimate()
    names = [stage.name for stage in estimate.stages]
    if fused == "true":
        assert estimate.ahead_stages == 0
    else:
        assert names[estimate.ahead_stages - 1] == "pre-activation send"
        assert stages["pre-activation send"].cycles == 4 * cell["n_state"]
        assert "state update" not in names[: estimate.ahead_stages]


def pipelined_calls(ahead: int, rest: int, calls: int) -> int:
    """The finish time of the last of ``calls`` calls through two processes joined by a FIFO: the first
    takes ``ahead`` cycles per call, the second ``rest`` and starts a call once the first has handed it
    over and its own previous call is done (an event-by-event reference for LayerEstimate)."""
    first_done = second_done = 0
    for _ in range(calls):
        first_done += ahead
        second_done = max(first_done, second_done) + rest
    return second_done


@given(
    cycles=st.lists(st.integers(1, 10_000), min_size=1, max_size=6),
    split=st.integers(0, 6),
    calls=st.integers(1, 64),
)
def test_a_call_interval_is_the_slower_half_when_the_input_half_runs_ahead(cycles, split, calls):
    from hls_project.cost import LayerEstimate, Stage

    split = min(split, len(cycles))
    stages = tuple(Stage(f"s{k}", c) for k, c in enumerate(cycles))
    estimate = LayerEstimate("layer", "test", stages, calls, ahead_stages=split)
    expected = pipelined_calls(sum(cycles[:split]), sum(cycles[split:]), calls) if split else calls * sum(cycles)
    assert estimate.cycles_per_call == expected


@pytest.mark.parametrize("name", FAMILIES)
def test_doubling_the_reuse_factor_halves_the_multipliers_and_never_speeds_up(name, tmp_path):
    hls_model = hls_project.convert(small_model(name), tmp_path / "prj", io_type="io_stream", echo=lambda m: None)
    node = next(n for n in hls_model.get_layers() if type(n).__name__.endswith("LSTMLayer"))
    previous = None
    for reuse_factor in (1, 2, 4, 8):
        with_reuse_factor(hls_model, reuse_factor)
        stages = node.estimate().stages
        current = (sum(stage.multipliers for stage in stages), node.estimate().cycles_per_call, len(stages))
        if previous:
            assert current[0] <= previous[0] / 2 + current[2]  # halved, up to one rounding per stage
            assert current[1] >= previous[1]
        previous = current


def test_a_paper_shape_refused_for_pynq_z2_fits_alveo_u250(tmp_path):
    hls_model = hls_project.convert(
        paper_model("tt_lstm"), tmp_path / "prj", io_type="io_stream", reuse_factor=1, echo=lambda m: None
    )
    on_pynq = estimate_network(hls_model, "pynq-z2", 100)
    assert on_pynq.over() and "dsp" in on_pynq.over()
    on_alveo = estimate_network(hls_model, "alveo-u250", 300)
    assert on_alveo.over() == []
    assert on_alveo.frames_per_s > on_pynq.frames_per_s  # same cycles, faster clock
    fits = largest_fitting_setting(hls_model, "pynq-z2", 100, 1)
    assert fits and fits > 1
    with_reuse_factor(hls_model, fits)
    assert estimate_network(hls_model, "pynq-z2", 100).over() == []
    with_reuse_factor(hls_model, fits // 2)
    assert estimate_network(hls_model, "pynq-z2", 100).over() != []


def test_the_physical_limits_bound_the_design(tmp_path):
    """No estimate passes the board's compute limit (every MAC on a DSP every cycle) or I/O limit."""
    for name in FAMILIES:
        hls_model = hls_project.convert(small_model(name), tmp_path / name, io_type="io_stream", echo=lambda m: None)
        for board, part in PARTS.items():
            estimate = estimate_network(hls_model, board, 100)
            summary = estimate.as_dict()
            assert summary["frames_per_s"] <= min(summary["limit_frames_per_s"].values()) * (1 + 1e-9)
            assert summary["available"] == part.available()


def run_overlay(*args):
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "overlay", *args], capture_output=True, text=True, env=env)


def test_overlay_estimate_prints_a_table_and_json(tmp_path):
    small_model("tt_lstm").save(tmp_path / "m.h5")
    table = run_overlay("estimate", "--model", str(tmp_path / "m.h5"), "--board", "pynq-z2")
    assert table.returncode == 0, table.stderr
    assert "estimate" in table.stdout and "bottleneck" in table.stdout and "fits the board" in table.stdout
    result = run_overlay("estimate", "--model", str(tmp_path / "m.h5"), "--board", "zcu102", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    for key in ("board", "clock_mhz", "frames_per_s", "latency_us", "bottleneck", "total", "available"):
        assert key in summary
    assert set(summary["total"]) == set(summary["available"]) == {"dsp", "bram36", "lut", "ff"}
    assert set(summary["limit_frames_per_s"]) == {"compute", "io"} and summary["fits"] is True
    assert [layer["kind"] for layer in summary["layers"]][1:-1] == ["TTLSTM"]
    missing = run_overlay("estimate", "--model", str(tmp_path / "nothing.h5"), "--board", "pynq-z2")
    assert missing.returncode == 2 and "cannot load model" in missing.stderr


def test_build_refuses_a_design_over_the_board_and_force_builds_it(tmp_path):
    paper_model("tt_lstm").save(tmp_path / "paper.h5")
    env = dict(os.environ)
    refused = run_build(tmp_path / "paper.h5", tmp_path / "out", env, "pynq-z2", "--reuse-factor", "1")
    assert refused.returncode == 2
    assert "does not fit pynq-z2 (estimate: dsp" in refused.stderr and "--reuse-factor" in refused.stderr
    assert not (tmp_path / "out/manifest.json").exists()
    forced = run_build(tmp_path / "paper.h5", tmp_path / "out", env, "pynq-z2", "--reuse-factor", "1", "--force")
    assert forced.returncode == 3, forced.stderr  # built; only the vendor tools are missing
    estimate = json.loads((tmp_path / "out/estimate.json").read_text())
    assert estimate["fits"] is False and estimate["board"] == "pynq-z2"
    assert json.loads((tmp_path / "out/manifest.json").read_text())["estimate"] == estimate


REAL_REPORTS = os.path.join(os.path.dirname(__file__), "data", "hls4ml_reports", "Vivado")


def overlay_after_a_vendor_run(overlays, tmp_path):
    """A copy of a built overlay with the stand-in bitstream files of the fake tools (see
    test_overlay.OUTPUTS and conftest.STAND_IN_HWH) and a real Vivado HLS report at the place a
    run leaves it. The report is hls4ml's test data (tests/data/hls4ml_reports/ORIGIN.md): real
    tool output, of another design."""
    out = tmp_path / "overlay"
    shutil.copytree(overlays["clip"]["overlay"], out)
    (out / "hls/impl").mkdir()
    (out / "hls/impl/design_1_wrapper.bit").write_text("bits\n")
    (out / "hls/impl/design_1.hwh").write_text(STAND_IN_HWH)
    report_dir = out / "hls/myproject_prj/solution1/syn/report"
    report_dir.mkdir(parents=True)
    shutil.copyfile(os.path.join(REAL_REPORTS, "myproject_csynth.xml"), report_dir / "myproject_axi_csynth.xml")
    return out


def test_collect_puts_the_tools_figures_next_to_the_estimate(overlays, tmp_path):
    from host.manifest import Manifest
    from overlay.build import collect
    from overlay.reports import read_csynth

    out = overlay_after_a_vendor_run(overlays, tmp_path)
    manifest = collect(out, Manifest.load(out))
    tool = read_csynth(os.path.join(REAL_REPORTS, "myproject_csynth.xml"))["resources"]
    assert manifest.measured["hls"]["resources"] == tool
    estimated = manifest.estimate["total"]
    assert manifest.measured["error"]["dsp"] == pytest.approx((tool["dsp"] - estimated["dsp"]) / tool["dsp"])
    assert Manifest.load(out).measured == manifest.measured


def test_collect_refuses_a_design_that_failed_timing(overlays, tmp_path, monkeypatch):
    """Our decision on a negative slack (the timing parser itself has no real report to be tested
    on: hls4ml keeps none; the placeholder file only marks where a run leaves it)."""
    from host.manifest import Manifest
    from overlay import build, reports

    out = overlay_after_a_vendor_run(overlays, tmp_path)
    timing = out / "hls/myproject_vivado_accelerator/project_1.runs/impl_1"
    timing.mkdir(parents=True)
    (timing / "design_1_wrapper_timing_summary_routed.rpt").write_text("placeholder\n")
    monkeypatch.setattr(reports, "read_wns", lambda path: -0.25)
    with pytest.raises(ValueError, match="failed timing .worst negative slack -0.25 ns"):
        build.collect(out, Manifest.load(out))
    assert not (out / "accelerator.bit").exists()
