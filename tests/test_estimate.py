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
from hls_project.cost import pipeline_latency
from hls_project.decomposed import StreamedInputMap
from models.families import project_families
from overlay.estimate import (
    PARTS,
    convert_for_board,
    estimate_network,
    largest_fitting_setting,
    parse_margin,
    with_reuse_factor,
)

FAMILIES = project_families()
PAPER = {  # the UCF11 shapes: 57,600 features -> 4 x 256
    "tt_lstm": (models.TTLSTM, [8, 20, 20, 18], {"tt_ranks": [1, 4, 4, 4, 1]}),
    "ht_lstm": (models.HTLSTM, [8, 20, 20, 18], {"ht_ranks": 4}),
    "fdht_lstm": (models.FDHTLSTM, [8, 19, 20, 20], {"ht_ranks": 6}),
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
                key, _, value = (part.strip() for part in item.partition("="))
                if value.isdigit():  # not hls4ml's expressions (io_type = nnet::io_parallel, ...)
                    constants[key] = int(value)
        structs[name] = constants
    return structs


def step_configs(configs, index) -> dict:
    """``{step number: config}`` of a decomposed input map's steps, ``config<index>_tt<k>`` /
    ``_ht<k>``."""
    steps = {}
    for key, config in configs.items():
        found = re.fullmatch(rf"config{index}_(tt|ht)(\d+)", key)
        if found:
            steps[int(found.group(2))] = config
    return steps


def step_fabric(parameters_h: str, name: str) -> bool:
    """Whether the written step config ``name`` binds its products to LUTs."""
    return re.search(rf"struct {name} : .*?fabric_products = (\w+);", parameters_h, re.S).group(1) == "true"


def check_mode_step(config, stage, frames, fabric):
    """A ``nnet::mode_contract`` step: one pipeline of rows passes, each the longer of a row's
    accumulate iterations (an input pack each) and its rounding (an output pack each, during the
    next pass), entered once, then the last row's rounding at II 1 (its tail); its rows those of
    ``frames`` frames; its products in LUTs as its config says (``fabric``)."""
    steps = config["n_in"] * config["n_right"] * config["rank_in"] * config["trail"] // config["pack_in"]
    outputs = config["n_out"] * config["n_right"] * config["rank_out"] * config["trail"] // config["pack_out"]
    assert stage.iterations == -(-config["rows"] * max(steps, outputs) // frames)
    assert (stage.tail, stage.fill) == (-(-outputs // frames), max(steps, outputs))
    assert (stage.ii, stage.entries) == (config["reuse_factor"], 1)
    assert stage.multipliers == config["multiplier_limit"]
    assert stage.products_per_iteration == config["pack_in"] * config["n_out"] * config["rank_out"]
    assert stage.fabric == fabric and (stage.resources(PARTS["pynq-z2"])["dsp"] == 0 or not fabric)
    acc = next(memory for memory in stage.memories if memory.name.startswith("acc"))
    assert acc.banks == 2 * config["j_banks"] * config["a_banks"] * config["acc_banks"] * config["trail_banks"]


def check_chain_stages(parameters_h, stages, index, whole_call):
    """The decomposed input map's stages against its written step configs: every step of the
    frame pipeline, over the call's frames (``whole_call``) or over one."""
    configs = config_constants(parameters_h)
    steps = step_configs(configs, index)
    assert len(steps) == sum(1 for stage in stages if re.fullmatch(r"step \d+( \(frame\))?", stage)) > 0
    frames = configs[f"config{index}"]["n_timesteps"] if whole_call else 1
    for number, step in steps.items():
        stage = stages["step 0 (frame)" if number == 0 else f"step {number}"]
        name = next(name for name in configs if re.fullmatch(rf"config{index}_(tt|ht){number}", name))
        check_mode_step(step, stage, frames, step_fabric(parameters_h, name))


def bank_loads(step, reuse_factor) -> tuple:
    """The most sums one acc bank takes in an iteration of ``step`` (a ``ModeStep``) at
    ``reuse_factor``, and the most values an output pack reads from one bank, every pack of a row
    walked as ``nnet::pack_cursor`` walks it and every address banked as the written config's
    cyclic partitions bank it (j, p, a, e modulo j_banks, acc_banks, a_banks, trail_banks)."""
    from itertools import product

    j_banks, a_banks = step.sum_banks(reuse_factor, 32)
    banks = (j_banks, step.acc_banks, a_banks, step.trail_banks)

    def most_per_bank(addresses):
        counts = {}
        for address in addresses:
            bank = tuple(index % count for index, count in zip(address, banks, strict=True))
            counts[bank] = counts.get(bank, 0) + 1
        return max(counts.values())

    (_, pp, _, pt), (qj, qp, qa, qt) = step.in_split, step.out_split
    sums = outputs = 0
    for p0, e0 in product(range(0, step.n_right, pp), range(0, step.trail, pt)):  # an input pack's (p, e)
        ps, es = range(p0, p0 + pp), range(e0, e0 + pt)
        sums = max(sums, most_per_bank(product(range(step.n_out), ps, range(step.rank_out), es)))
    for j0, p0, a0, e0 in product(
        range(0, step.n_out, qj), range(0, step.n_right, qp), range(0, step.rank_out, qa), range(0, step.trail, qt)
    ):
        pack = product(range(j0, j0 + qj), range(p0, p0 + qp), range(a0, a0 + qa), range(e0, e0 + qt))
        outputs = max(outputs, most_per_bank(pack))
    return sums, outputs


@pytest.mark.parametrize("reuse_factor", [1, 2, 3, 4, 8])
@pytest.mark.parametrize(
    "shape, packs",
    [
        (dict(rows=4, n_in=5, n_right=6, rank_in=3, n_out=4, rank_out=6, trail=2), (6, 4)),
        (dict(rows=2, n_in=19, n_right=12, rank_in=6, n_out=4, rank_out=6), (3, 6)),
        (dict(rows=3, n_in=8, n_right=4, n_out=6, rank_out=4, trail=2), (2, 8)),
    ],
)
def test_no_acc_bank_takes_more_sums_than_the_ii_has_cycles(shape, packs, reuse_factor):
    """``nnet::mode_contract``'s acc banking (``ModeStep.sum_banks``): every iteration's sums fall
    at most ``reuse_factor`` in a bank (a read and a write per cycle of the II), an output pack's
    values each in a bank of its own (the last row's rounding at II 1), and a reuse factor with
    room to share banks does (fewer banks than at reuse factor 1)."""
    from hls_project.decomposed import ModeStep

    step = ModeStep(**shape, pack_in=packs[0], pack_out=packs[1])
    sums, outputs = bank_loads(step, reuse_factor)
    assert sums <= reuse_factor and outputs == 1
    shared = step.sums("acc", 32, step.sum_banks(reuse_factor, 32)).banks
    single = step.sums("acc", 32, step.sum_banks(1, 32)).banks
    assert shared <= single and (shared < single) == (reuse_factor > 1 and sums > 1)


@pytest.mark.parametrize("reuse_factor", [1, 3])
@pytest.mark.parametrize("name", FAMILIES)
def test_stage_cycles_and_multipliers_equal_the_generated_configs(name, reuse_factor, tmp_path):
    """Every stage's trip count x II and its multipliers (the ALLOCATION limit) equal what the
    written parameters.h says (the estimate and the C++ share one schedule); its cycles add the
    fill and drain of every entry and the II its memory ports allow."""
    hls_model = hls_project.convert(
        small_model(name), tmp_path / "prj", io_type="io_stream", reuse_factor=reuse_factor, echo=lambda m: None
    )
    hls_model.write()
    parameters_h = (tmp_path / "prj/firmware/parameters.h").read_text()
    configs = config_constants(parameters_h)
    node = next(n for n in hls_model.get_layers() if type(n).__name__.endswith("LSTMLayer"))
    stages = {stage.name: stage for stage in node.estimate().stages}
    index = node.index
    if isinstance(node, StreamedInputMap):
        # other input maps: in their family's tests
        check_chain_stages(parameters_h, stages, index, node.call_input_map)
    cell = configs[f"config{index}"]
    if "recurrent map" in stages:  # the dense recurrent map
        n, block = cell["n_state"], cell["recurrent_block"]
        assert stages["recurrent map"].iterations == 4 * n * (n // block)
        assert stages["recurrent map"].multipliers == block
    state = stages["state update"]
    assert state.multipliers == cell["state_multiplier_limit"]
    assert state.iterations * state.ii == cell["n_state"] * cell["reuse_factor"]
    # the gate table read for i and f, its copy for o (a weight of its own): II 1 at reuse factor 1
    assert state.achieved_ii == cell["reuse_factor"]
    call = (tmp_path / "prj/firmware/myproject.cpp").read_text()
    assert f"{node.get_weights('gate_lut').name}, {node.get_weights('output_gate_lut').name}," in call
    assert state.cycles == state.iterations * state.achieved_ii + state.depth - state.achieved_ii
    # nnet::lstm_preactivation: a loop of its own at II 1 (no product), or, fused, in the state update
    fused = re.search(rf"struct config{index} : .*?fused_recurrent = (\w+);", parameters_h, re.S).group(1)
    assert ("preactivation" not in stages) if fused == "true" else stages["preactivation"].ii == 1
    # nnet::lstm_call: a family with a recurrent map runs its input half (the map, then the send of
    # 4 * n_state pre-activations into the FIFO; or, taking a whole call, its pipeline of steps, the
    # last writing the FIFO) a frame ahead; a fused one runs frame after frame
    whole_call = re.search(rf"struct config{index} : .*?call_input_map = (\w+);", parameters_h, re.S)
    estimate = node.estimate()
    names = [stage.name for stage in estimate.stages]
    assert estimate.ahead_pipeline == (whole_call is not None and whole_call.group(1) == "true") == node.call_input_map
    if fused == "true":  # frame after frame: the map's pipeline (its latency), then the cell
        assert estimate.ahead_stages == 0
        assert estimate.pipeline_stages == (len(step_configs(configs, index)) if node.pipelined_input_map else 0)
    elif estimate.ahead_pipeline or re.search(
        rf"struct config{index} : .*?input_map_streams_zx = true;", parameters_h, re.S
    ):
        # its last step, or (input_map_streams_zx) the map's last loop, writes the FIFO itself: no send
        last = estimate.stages[estimate.ahead_stages - 1]
        assert last.memory("pre-activation FIFO").words == 4 * cell["n_state"]
        assert "state update" not in names[: estimate.ahead_stages] and "pre-activation send" not in names
    else:
        assert names[estimate.ahead_stages - 1] == "pre-activation send"
        assert stages["pre-activation send"].iterations == 4 * cell["n_state"]
        assert "state update" not in names[: estimate.ahead_stages]


@pytest.mark.parametrize("name", FAMILIES)
def test_the_folding_pass_meets_a_target_and_the_written_configs_carry_it(name, tmp_path):
    """Folding for a third of the fastest design's frames/s: every stage gets its own reuse factor
    (not all equal), the target is met within the margin, the project converted with that folding
    writes each step's reuse factor and multipliers into parameters.h as the estimate counts them,
    and its estimate is the folding pass's."""
    from hls_project.sizing import recurrent_block
    from overlay.folding import fold

    model = small_model(name)
    hls_model = hls_project.convert(model, tmp_path / "scratch", io_type="io_stream", echo=lambda m: None)
    fastest = fold(hls_model, "pynq-z2", 100)
    target = fastest.estimate.frames_per_s / 3
    result = fold(hls_model, "pynq-z2", 100, target)
    assert result.target_met and result.fits and target <= result.estimate.frames_per_s
    assert result.estimate.frames_per_s < fastest.estimate.frames_per_s
    (layer_name, folding), *_ = result.folding.items()
    assert len(set(folding.values())) > 1  # each stage its own reuse factor
    folded = hls_project.convert(
        model, tmp_path / "prj", io_type="io_stream", folding=result.folding, echo=lambda m: None
    )
    folded.write()
    parameters_h = (tmp_path / "prj/firmware/parameters.h").read_text()
    configs = config_constants(parameters_h)
    node = next(n for n in folded.get_layers() if type(n).__name__.endswith("LSTMLayer"))
    assert node.folding() == folding
    stages = {stage.name: stage for stage in node.estimate().stages}
    if isinstance(node, StreamedInputMap):
        check_chain_stages(parameters_h, stages, node.index, node.call_input_map)
        steps = step_configs(configs, node.index)
        assert {number: step["reuse_factor"] for number, step in steps.items()} == {
            number: folding[f"step {number}"] for number in range(len(node.input_map_folding_stages()))
        }
    cell = configs[f"config{node.index}"]
    assert cell["reuse_factor"] == folding["state update"]
    if "recurrent map" in folding and "recurrent map" in stages:
        assert cell["recurrent_block"] == recurrent_block(cell["n_state"], folding["recurrent map"])
    estimate = estimate_network(folded, "pynq-z2", 100)
    assert estimate.frames_per_s == pytest.approx(result.estimate.frames_per_s)


def test_folding_refuses_unknown_stages_and_layers(tmp_path):
    model = small_model("tt_lstm")
    with pytest.raises(ValueError, match="not an LSTM layer"):
        hls_project.convert(model, tmp_path / "a", folding={"nope": {"step 0": 2}}, echo=lambda m: None)
    with pytest.raises(ValueError, match="stage 'step 0' must be an integer from 1 to 4096, got 0"):
        hls_project.convert(model, tmp_path / "b", folding={"tt_lstm": {"step 0": 0}}, echo=lambda m: None)
    with pytest.raises(ValueError, match="'tt_lstm' has no folding stage 'step 9' .it has: step 0, step 1"):
        hls_project.convert(model, tmp_path / "c", folding={"tt_lstm": {"step 9": 2}}, echo=lambda m: None)


@given(
    ahead=st.lists(st.integers(1, 400), min_size=1, max_size=3),
    independent=st.lists(st.integers(1, 400), max_size=2),
    dependent=st.lists(st.integers(1, 400), max_size=2),
    tokens=st.integers(1, 64),
    calls=st.integers(1, 12),
)
def test_a_call_through_the_two_halves_takes_what_their_token_simulation_takes(
    ahead, independent, dependent, tokens, calls
):
    """An LSTM's call (``calls`` frames) through its input half (stages, then the send of ``tokens``
    pre-activations into a one-frame FIFO) and its recurrent half (independent stages, the
    preactivation reading the tokens, the rest): ``LayerEstimate.cycles_per_call`` against the
    token-by-token simulation of the same stages (``overlay.dataflow_sim``, an independent model of
    the FIFO), up to the cycle each token takes to cross the FIFO."""
    from hls_project.cost import LayerEstimate, Stage
    from overlay.dataflow_sim import layer_processes, simulate

    stages = (
        [Stage(f"a{k}", c) for k, c in enumerate(ahead)]
        + [Stage("pre-activation send", tokens)]
        + [Stage(f"i{k}", c) for k, c in enumerate(independent)]
        + [Stage("preactivation", tokens)]
        + [Stage(f"d{k}", c) for k, c in enumerate(dependent)]
    )
    layer = LayerEstimate(
        "layer",
        "test",
        tuple(stages),
        calls,
        ahead_stages=len(ahead) + 1,
        independent_stages=len(independent),
        recurrent=True,
    )
    halves = layer_processes(layer, 0, 1)  # no input tokens; the output: one token after the call
    simulated = simulate(halves, [tokens], model_calls=1)["ends"][1][0] - 1  # less the output's cycle
    assert abs(simulated - layer.cycles_per_call) <= 2 * calls + 2


@pytest.mark.parametrize("name", FAMILIES)
def test_a_camera_feed_of_one_frame_per_call_gets_the_frames_per_s_of_a_multi_frame_call(name, tmp_path):
    """The top is free-running, so calls overlap as the frames of one call do: the stateful copy
    with one frame per call (``models.train.streaming_copy``, what ``overlay build --stream``
    builds) is estimated at the clip model's frames/s. Were each call to finish before the next
    started, it would be a call's whole latency (``cycles_per_call``), slower."""
    from models.train import streaming_copy

    clip = small_model(name, frames=4)
    estimates = {}
    for form, model in (("clip", clip), ("camera", streaming_copy(clip))):
        hls_model = convert_for_board(model, tmp_path / form, "pynq-z2", reset_port=True, echo=lambda m: None)
        estimates[form] = estimate_network(hls_model, "pynq-z2", 100)
    camera = estimates["camera"]
    assert camera.frames_per_call == 1 and estimates["clip"].frames_per_call == 4
    assert camera.frames_per_s == pytest.approx(estimates["clip"].frames_per_s, rel=0.01)
    lstm = next(layer for layer in camera.layers if layer.recurrent)
    if lstm.ahead_stages:  # the input half is on the next call already: a call every max(halves)
        ahead = [stage.cycles for stage in lstm.stages[: lstm.ahead_stages]]
        rest = sum(stage.cycles for stage in lstm.stages[lstm.ahead_stages :])
        # a frame pipeline (TT) at its slowest step's pace, a sequential input half at their sum
        halves = [max(ahead) if lstm.ahead_pipeline else sum(ahead), rest]
        assert lstm.interval_per_call == max(halves) <= lstm.cycles_per_call
    else:  # fused (FDHT): a frame's map needs h_t-1, nothing of the layer overlaps
        assert lstm.interval_per_call == lstm.cycles_per_call


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
    whole = parse_margin("1")  # every resource up to 100%
    fits = largest_fitting_setting(hls_model, "pynq-z2", 100, 1, whole)
    assert fits and fits > 1
    with_reuse_factor(hls_model, fits)
    assert estimate_network(hls_model, "pynq-z2", 100, whole).over() == []
    with_reuse_factor(hls_model, fits // 2)
    assert estimate_network(hls_model, "pynq-z2", 100, whole).over() != []
    # the default margin leaves room for routing and the block design: nothing more parallel fits
    within_margin = largest_fitting_setting(hls_model, "pynq-z2", 100, 1)
    assert within_margin is None or within_margin >= fits


def test_the_physical_limits_bound_the_design(tmp_path):
    """No estimate passes the board's compute limit (every MAC on a DSP every cycle) or I/O limit."""
    for name in FAMILIES:
        hls_model = hls_project.convert(small_model(name), tmp_path / name, io_type="io_stream", echo=lambda m: None)
        for board, part in PARTS.items():
            estimate = estimate_network(hls_model, board, 100)
            summary = estimate.as_dict()
            assert summary["frames_per_s"] <= min(summary["limit_frames_per_s"].values()) * (1 + 1e-9)
            assert summary["available"] == part.available()


def pipelined_loop_cycles(trips_per_entry: int, entries: int, ii: int, depth: int) -> int:
    """An event-by-event pipelined loop entered ``entries`` times (inside an outer loop): an
    iteration issues every ``ii`` cycles once the previous has, its result ``depth`` cycles after
    it issues, and the next entry starts when the last result of this one is out."""
    clock = 0
    for _ in range(entries):
        issued = [clock + k * ii for k in range(trips_per_entry)]
        clock = issued[-1] + max(depth, ii)
    return clock


@given(
    trips=st.integers(1, 50),
    entries=st.integers(1, 8),
    ii=st.integers(1, 4),
    multipliers=st.integers(0, 64),
    narrow=st.booleans(),
)
def test_stage_cycles_count_fill_and_drain_of_every_entry(trips, entries, ii, multipliers, narrow):
    from hls_project.cost import Stage

    bits = (8, 8) if narrow else (16, 16)
    stage = Stage("s", trips * entries, ii, multipliers, bits, 20, entries=entries)
    assert stage.cycles == pipelined_loop_cycles(trips, entries, ii, stage.depth)
    assert stage.depth > (2 if multipliers else 1)  # read and write, and a product and adder tree when any


def test_an_iteration_reading_one_bank_more_than_twice_is_port_limited():
    from hls_project.cost import Memory, Stage

    table = Memory("table", 512, 10)
    assert Stage("s", 100, 1, memories=(table,), reads=(("table", 3),)).achieved_ii == 2
    assert Stage("s", 100, 1, memories=(table,), reads=(("table", 2),)).achieved_ii == 1
    banked = Memory("z", 64, 12, 4)
    assert Stage("s", 100, 1, memories=(banked,), reads=(("z", 9),)).achieved_ii == 2
    assert Stage("s", 100, 3, memories=(banked,), reads=(("z", 9),)).achieved_ii == 3


def test_fits_means_within_the_margin_of_every_resource():
    from hls_project.cost import LayerEstimate, Memory, Stage
    from overlay.estimate import DEFAULT_MARGIN, NetworkEstimate, parse_margin

    part = PARTS["pynq-z2"]
    dsp_stage = Stage("products", 10, 1, int(part.dsp * 0.95), (16, 16), 20)  # 95% of the DSPs
    io = LayerEstimate("top", "AcceleratorTop", (Stage("beats", 10),))
    layers = (io, LayerEstimate("layer", "test", (dsp_stage,)), io)
    assert NetworkEstimate("pynq-z2", part, 100, 1, layers).over() == ["dsp"]
    assert NetworkEstimate("pynq-z2", part, 100, 1, layers, parse_margin("1")).over() == []
    assert parse_margin("dsp=0.96") == {**DEFAULT_MARGIN, "dsp": 0.96}
    bram = Stage("buffers", 10, memories=(Memory("big", 1024 * 128, 36),))  # 128 BRAM36 of 140: 91%
    assert NetworkEstimate("pynq-z2", part, 100, 1, (io, LayerEstimate("l", "t", (bram,)), io)).over() == ["bram36"]
    for text, message in [("lut=1.5", "fraction"), ("x=0.5", "unknown resource"), ("lut=a", "not a number")]:
        with pytest.raises(ValueError, match=message):
            parse_margin(text)


def test_the_compute_limit_counts_lut_products_next_to_the_dsps(tmp_path):
    """A model whose products are all narrow (8-bit) builds them from LUTs: its compute limit counts
    the LUT multipliers the margin allows next to the DSPs, and still bounds the estimate."""
    layer = FAMILIES["tt_lstm"].for_task(24, 8, 3, 2, name="tt", **quantizers("w8"))
    inputs = tf.keras.Input((3, 24))
    hls_model = hls_project.convert(
        tf.keras.Model(inputs, layer(inputs)), tmp_path / "prj", io_type="io_stream", echo=lambda m: None
    )
    estimate = estimate_network(hls_model, "pynq-z2", 100)
    products = estimate.products_per_frame()
    assert products["lut"] > 0 and estimate.lut_multipliers() > 0
    dsp_only = 100e6 / ((products["dsp"] + products["lut"]) / PARTS["pynq-z2"].dsp)
    assert estimate.limits()["compute"] > dsp_only
    assert estimate.frames_per_s <= min(estimate.limits().values())


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
    assert set(summary["limit_frames_per_s"]) == {"compute", "io", "recurrence"} and summary["fits"] is True
    assert summary["margin"] == {"dsp": 0.9, "bram36": 0.9, "lut": 0.8, "ff": 0.9}
    for stage in (stage for layer in summary["layers"] for stage in layer["stages"]):
        assert {"ii", "trips", "depth", "multipliers", "memories", "cycles"} <= set(stage)
        assert stage["cycles"] >= stage["trips"] * stage["ii"]
    strict = run_overlay(
        "estimate", "--model", str(tmp_path / "m.h5"), "--board", "zcu102", "--json", "--margin", "lut=0.5"
    )
    assert json.loads(strict.stdout)["margin"]["lut"] == 0.5
    bad = run_overlay("estimate", "--model", str(tmp_path / "m.h5"), "--board", "zcu102", "--margin", "luts=2")
    assert bad.returncode == 2 and "unknown resource 'luts'" in bad.stderr and "Traceback" not in bad.stderr
    assert [layer["kind"] for layer in summary["layers"]][1:-1] == ["TTLSTM"]
    assert all(layer["folding"] for layer in summary["layers"] if layer["kind"] == "TTLSTM")
    folded = run_overlay("estimate", "--model", str(tmp_path / "m.h5"), "--board", "pynq-z2", "--target-fps", "1000")
    assert folded.returncode == 0 and "folding of tt_lstm" in folded.stdout and "step 0" in folded.stdout
    both = run_overlay(
        "estimate", "--model", str(tmp_path / "m.h5"), "--board", "pynq-z2", "--target-fps", "9", "--reuse-factor", "2"
    )
    assert both.returncode == 2 and "not both" in both.stderr
    missing = run_overlay("estimate", "--model", str(tmp_path / "nothing.h5"), "--board", "pynq-z2")
    assert missing.returncode == 2 and "cannot load model" in missing.stderr


def test_build_refuses_a_design_over_the_board_and_force_builds_it(tmp_path):
    env = dict(os.environ)
    # with every resource usable up to 100% a uniform reuse factor of the TT-LSTM fits, and the
    # refusal of reuse factor 1 names it, with the estimate's own figure
    paper_model("tt_lstm").save(tmp_path / "tt.h5")
    whole = ("--reuse-factor", "1", "--margin", "1")
    refused = run_build(tmp_path / "tt.h5", tmp_path / "out", env, "pynq-z2", *whole)
    assert refused.returncode == 2
    hls_model = convert_for_board(paper_model("tt_lstm"), tmp_path / "scratch", "pynq-z2", echo=lambda m: None)
    with_reuse_factor(hls_model, 1)
    dsp = estimate_network(hls_model, "pynq-z2", 100).total()["dsp"]
    assert f"does not fit pynq-z2 (estimate: dsp {dsp:,} of 220 (margin 100%)" in refused.stderr
    assert re.search(r"--reuse-factor \d+ fits", refused.stderr)
    assert not (tmp_path / "out/manifest.json").exists()
    # within a margin of 20% of every resource the TT-LSTM's memories do not fit at any folding:
    # the folding pass says so with the numbers
    folded = run_build(tmp_path / "tt.h5", tmp_path / "out", env, "pynq-z2", "--margin", "0.2")
    assert folded.returncode == 2 and "not even the most folded design fits" in folded.stderr
    assert "(margin 20%)" in folded.stderr
    forced = run_build(tmp_path / "tt.h5", tmp_path / "out", env, "pynq-z2", "--reuse-factor", "1", "--force")
    assert forced.returncode == 3, forced.stderr  # built; only the vendor tools are missing
    estimate = json.loads((tmp_path / "out/estimate.json").read_text())
    assert estimate["fits"] is False and estimate["board"] == "pynq-z2"
    assert json.loads((tmp_path / "out/manifest.json").read_text())["estimate"] == estimate


# frames/s on pynq-z2 the paper shapes reach as a camera feeds them: issue 23's targets (TT, HT,
# FDHT) and issue 24's for the row-balanced sparse LSTM
CAMERA_FEED_FPS = {"tt_lstm": 7_000, "ht_lstm": 7_000, "fdht_lstm": 4_000, "rbs_lstm": 5_000}


@pytest.mark.parametrize("name", CAMERA_FEED_FPS)
def test_the_paper_lstms_fit_the_pynq_z2_as_a_camera_feeds_them(name, tmp_path):
    """The UCF11 TT-LSTM (ranks 4), HT-LSTM (every rank 4), FDHT-LSTM (rank 6) and row-balanced
    sparse LSTM (99.9% / 90%), 57,600 -> 4 x 256, 8-bit weights, 9-bit input, 12-bit state, a
    QDense head, stateful, one frame per call: the folding pass's fastest design fits the pynq-z2
    within the margin at ``CAMERA_FEED_FPS`` and within the board's I/O limit (estimates). A tensor
    family's input map is a frame pipeline: TT's and HT's a call ahead, at its slowest step's pace;
    FDHT's within each frame, at its latency. The sparse input map runs a frame ahead, its store
    then its products, which write the zx FIFO themselves (no send)."""
    from benchmarks.estimate_boards import paper_classifier
    from models.train import streaming_copy
    from overlay.folding import fold

    camera = streaming_copy(paper_classifier(name))
    hls_model = convert_for_board(camera, tmp_path / "prj", "pynq-z2", reset_port=True, echo=lambda m: None)
    result = fold(hls_model, "pynq-z2", 100)
    estimate = result.estimate
    assert result.fits and not estimate.over() and estimate.frames_per_call == 1
    assert CAMERA_FEED_FPS[name] <= estimate.frames_per_s <= estimate.limits()["io"]
    lstm = estimate.bottleneck
    if name == "fdht_lstm":
        pipeline = lstm.stages[: lstm.pipeline_stages]
        cell = sum(stage.cycles for stage in lstm.stages[lstm.pipeline_stages :])
        assert lstm.pipeline_stages and lstm.interval_per_call == pipeline_latency(pipeline) + cell
        assert max(stage.cycles for stage in pipeline) < pipeline_latency(pipeline) < sum(s.cycles for s in pipeline)
    elif name == "rbs_lstm":
        ahead = [stage.name for stage in lstm.stages[: lstm.ahead_stages]]
        assert ahead == ["input map store input", "input map products"] and not lstm.ahead_pipeline
        input_half = sum(stage.cycles for stage in lstm.stages[: lstm.ahead_stages])
        assert lstm.interval_per_call == max(input_half, lstm.recurrence_cycles)
    else:
        slowest = max(stage.cycles for stage in lstm.stages[: lstm.ahead_stages])
        assert lstm.ahead_pipeline and lstm.interval_per_call == slowest


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
