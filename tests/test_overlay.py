"""``python -m overlay build``: project, block design, emulator, manifest; vendor tools faked."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    STAND_IN_HWH,
    family_model,
    quantizers,
    random_weights,
    run_build,
    tcl_is_complete,
    warnings_in_our_code,
)

import hls_project
import models
from host.manifest import Manifest
from models.families import project_families


def test_build_without_vivado_writes_everything_and_names_the_tool(overlays):
    for built in overlays.values():
        result, out = built["result"], built["overlay"]
        assert result.returncode == 3, result.stderr
        assert "error" not in result.stderr and "no bitstream built here" in result.stdout
        assert "vivado_hls" in result.stdout and "build_prj.tcl" in result.stdout and "design.tcl" in result.stdout
        for path in ["hls/build_prj.tcl", "hls/design.tcl", "hls/firmware/myproject_axi.cpp", "manifest.json"]:
            assert (out / path).exists(), path
        manifest = Manifest.load(out)
        assert manifest.board == "pynq-z2" and "bitstream" not in manifest.files
        assert manifest.verified_path("emulator", out).exists()


def test_a_build_checks_the_emulator_against_keras(overlays):
    """Both overlays (a whole clip; one frame per call of a stateful model) record the emulator's
    expected outputs against Keras': within 1 LSB of the output type."""
    for built in overlays.values():
        manifest = Manifest.load(built["overlay"])
        check = manifest.keras_check
        assert check["within_1_lsb"] is True and check["differing_outputs"] == 0, check
        assert check["lsb"] == manifest.output_type.lsb and check["max_abs_diff"] <= check["lsb"]
        assert check["outputs"] == 2 * (4 if manifest.stateful else 1) * manifest.n_outputs
        assert "the emulator equals the Keras model within 1 LSB" in built["result"].stdout


def test_generated_cpp_has_no_warnings_in_our_code(overlays):
    for built in overlays.values():
        assert warnings_in_our_code(built["overlay"]) == []


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh is not installed")
def test_tcl_scripts_are_complete_tcl(overlays):
    for script in sorted((overlays["clip"]["overlay"] / "hls").glob("*.tcl")):
        assert tcl_is_complete(script), script


OUTPUTS = {
    "vivado_hls": "true",
    "vivado": 'mkdir -p impl && echo bits > impl/design_1_wrapper.bit && cp "$(dirname "$0")/stand_in.hwh" impl/',
    "v++": "echo xclbin > myproject_kernel.xclbin",
}


def fake_tools(directory, fail=None):
    """vivado_hls / vivado / v++ stand-ins that leave their outputs behind (or fail with exit 1);
    vivado's .hwh is ``STAND_IN_HWH``."""
    directory.mkdir()
    (directory / "stand_in.hwh").write_text(STAND_IN_HWH)
    for tool, output in OUTPUTS.items():
        body = "exit 1" if tool == fail else output
        script = directory / tool
        script.write_text(
            f'#!/bin/sh\nif [ "$1" = "-version" ]; then echo "{tool} v2020.1 (fake)"; exit 0; fi\n{body}\n'
        )
        script.chmod(0o755)
    return {**os.environ, "PATH": f"{directory}:/usr/bin:/bin"}


def tcl_value(project_tcl, variable) -> str:
    """What Tcl makes of a variable set in a generated script (tclsh sources the file)."""
    script = f'source "{project_tcl}"; puts ${variable}'
    return subprocess.run(["tclsh"], input=script, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh is not installed")
@pytest.mark.parametrize("name", ["clip", "frames"])
def test_the_builds_folding_is_in_the_manifest_and_in_parameters_h(overlays, name):
    """The folding the build chose (no --reuse-factor: the folding pass) is written per stage in
    the manifest's estimate and, per step, into the generated parameters.h."""
    from test_estimate import config_constants

    from hls_project.sizing import recurrent_block

    overlay = overlays[name]["overlay"]
    lstm = next(layer for layer in Manifest.load(overlay).estimate["layers"] if layer["folding"])
    folding = lstm["folding"]
    assert set(folding) == {"step 0", "step 1", "step 2", "recurrent map", "state update"}
    configs = config_constants((overlay / "hls/firmware/parameters.h").read_text())
    cell = next(config for key, config in configs.items() if "recurrent_block" in config)
    frame = next(config for key, config in configs.items() if key.endswith("_tt0"))  # the TT's frame step
    assert cell["reuse_factor"] == folding["state update"]
    assert cell["recurrent_block"] == recurrent_block(cell["n_state"], folding["recurrent map"])
    assert frame["reuse_factor"] == folding["step 0"]
    steps = [stage for stage in lstm["stages"] if stage["fold"]]
    assert all(stage["pragma_ii"] == folding[stage["fold"]] for stage in steps if stage["name"] != "recurrent map")


def test_hls_clock_is_the_boards(overlays, tmp_path):
    from host import boards

    assert (
        float(tcl_value(overlays["clip"]["overlay"] / "hls/project.tcl", "clock_period"))
        == 1000 / boards.board("pynq-z2").clock_mhz
    )
    result = run_build(overlays["clip"]["root"] / "model.h5", tmp_path / "out", dict(os.environ), board="alveo-u250")
    assert result.returncode == 3, result.stderr
    period = float(tcl_value(tmp_path / "out/hls/project.tcl", "clock_period"))
    assert period == pytest.approx(1000 / boards.board("alveo-u250").clock_mhz) and "HLS clock 300 MHz" in result.stdout


@pytest.mark.parametrize(
    "io_type, role, what, input_modes, output_modes",
    [
        ("io_parallel", "input", "port", [10, 10, 6], [2, 2, 2]),  # 600 inputs in one word
        ("io_stream", "output", "stream element", [2, 2, 2], [8, 8, 8]),  # 512 units in one element
    ],
)
def test_a_top_interface_wider_than_hls_takes_is_refused_with_the_numbers(
    io_type, role, what, input_modes, output_modes, tmp_path
):
    """The input of our LSTM layers streams narrow whatever the frame size, but a whole-call port
    (io_parallel) or a stream element of stock width (the LSTM's output row) is refused."""
    model, layer = family_model(models.TTLSTM, 1, input_modes, output_modes, tt_ranks=2, **quantizers("w12"))
    model.save(tmp_path / "wide.h5")
    result = run_build(tmp_path / "wide.h5", tmp_path / "out", dict(os.environ), "pynq-z2", "--io-type", io_type)
    assert result.returncode == 2
    values = int(np.prod(input_modes if role == "input" else output_modes))
    width = layer.cell.fixed_types["input_quantizer" if role == "input" else "state_quantizer"].width
    assert f"{role} {what}" in result.stderr
    assert f"{values * width:,} bits ({values} values x {width} bits)" in result.stderr
    assert not (tmp_path / "out/manifest.json").exists()


PAPER_SHAPES = {
    "tt_lstm": (models.TTLSTM, [8, 20, 20, 18], {"tt_ranks": [1, 4, 4, 4, 1]}),
    "ht_lstm": (models.HTLSTM, [8, 20, 20, 18], {"ht_ranks": 4}),
    "fdht_lstm": (models.FDHTLSTM, [8, 19, 20, 20], {"ht_ranks": 6}),
}


@pytest.mark.parametrize("name", PAPER_SHAPES)
def test_paper_shapes_build_for_pynq_z2(name, tmp_path, rng):
    """57,600 features -> 4 x 256 (UCF11 frames): the interface check passes (the input streams
    narrow), and the accelerator top equals the reference on a clip. Each (a frame pipeline) fits
    the xc7z020 within the margin, so the default build goes on to the vendor tools."""
    import host
    from overlay import MissingToolError, build_overlay

    layer_class, modes, ranks = PAPER_SHAPES[name]
    model, layer = family_model(layer_class, 2, modes, [4, 4, 4, 4], n_features=57_600, **ranks, **quantizers("w12"))
    model.save(tmp_path / "paper.h5")
    with pytest.raises(MissingToolError):
        build_overlay(tmp_path / "paper.h5", "pynq-z2", tmp_path / "overlay")
    assert warnings_in_our_code(tmp_path / "overlay") == []
    clip = rng.uniform(0, 1, (2, 57_600)).astype(np.float32)
    expected, _ = hls_project.execute(layer, clip[None])
    with host.open(tmp_path / "overlay", backend="emulated") as accelerator:
        assert accelerator.manifest.io_type == "io_stream"
        assert accelerator.manifest.estimate["fits"] is True
        np.testing.assert_array_equal(accelerator.run_clip(clip), expected)


@pytest.mark.parametrize("n_values", [1, 7, 24, 600, 57_600, 60_800, 257])
@pytest.mark.parametrize("width", [1, 6, 9, 10, 16, 33, 64, 65])
def test_the_input_stream_element_is_the_widest_that_divides_a_frame_and_fits_a_beat(n_values, width):
    from hls_project.input_stream import ELEMENT_BITS, element_values

    values = element_values(n_values, width)
    assert n_values % values == 0
    assert values * width <= ELEMENT_BITS or values == 1
    wider = [d for d in range(values + 1, n_values + 1) if n_values % d == 0 and d * width <= ELEMENT_BITS]
    assert wider == []


def test_build_with_tools_collects_the_bitstream(overlays, tmp_path):
    result = run_build(overlays["clip"]["root"] / "model.h5", tmp_path / "out", fake_tools(tmp_path / "bin"))
    assert result.returncode == 0, result.stderr
    manifest = Manifest.load(tmp_path / "out")
    assert manifest.verified_path("bitstream", tmp_path / "out").read_text() == "bits\n"
    assert manifest.verified_path("hwh", tmp_path / "out").exists()
    assert manifest.tools["vivado"].startswith("vivado v2020.1")


def test_a_rebuild_never_certifies_the_previous_models_bitstream(overlays, tmp_path):
    """Model A built with the vendor tools, then model B into the same folder without them: B's
    manifest names no bitstream, A's is gone, and collect finds nothing to certify."""
    out = tmp_path / "out"
    result = run_build(overlays["clip"]["root"] / "model.h5", out, fake_tools(tmp_path / "bin"))
    assert result.returncode == 0 and (out / "accelerator.bit").exists(), result.stderr
    result = run_build(overlays["frames"]["root"] / "model.h5", out, {**os.environ, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 3, result.stderr
    assert "bitstream" not in Manifest.load(out).files and not (out / "accelerator.bit").exists()
    assert not list(out.glob("hls/**/*.bit"))
    collect = subprocess.run(
        [sys.executable, "-m", "overlay", "collect", "--out", str(out)], capture_output=True, text=True
    )
    assert collect.returncode == 2 and "no **/*.bit" in collect.stderr
    assert "bitstream" not in Manifest.load(out).files


def test_an_output_folder_with_other_files_is_refused_before_any_work(overlays, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = run_build(overlays["clip"]["root"] / "model.h5", out, dict(os.environ))
    assert result.returncode == 2 and "notes.txt" in result.stderr and "loading" not in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("")
    result = run_build(overlays["clip"]["root"] / "model.h5", tmp_path / "file", dict(os.environ))
    assert result.returncode == 2 and "is a file" in result.stderr
    result = run_build(overlays["clip"]["root"] / "model.h5", tmp_path / "file/sub/out", dict(os.environ))
    assert result.returncode == 2 and "lies under" in result.stderr and "loading" not in result.stdout


def test_a_failed_build_leaves_nothing_behind(tmp_path):
    """A model that fails after the output folder was made (here: refused by the board-fit check
    after its conversion): the folder it created is gone; a folder that existed is left empty."""
    model, _ = family_model(
        models.TTLSTM, 1, [8, 20, 20, 18], [4, 4, 4, 4], tt_ranks=[1, 4, 4, 4, 1], **quantizers("w12")
    )
    model.save(tmp_path / "big.h5")
    for existed in (False, True):
        out = tmp_path / f"out_{existed}"
        if existed:
            out.mkdir()
        result = run_build(tmp_path / "big.h5", out, dict(os.environ), "pynq-z2", "--reuse-factor", "1")
        assert result.returncode == 2 and "does not fit" in result.stderr
        assert (list(out.iterdir()) == []) if existed else not out.exists()


def test_the_commands_printed_without_tools_run_as_printed(overlays, tmp_path):
    """The collect hint is shell-quoted (a path with a space), the Alveo commands make the folders
    they cd into, and collect before any vendor run says that no bitstream was produced."""
    import shlex

    out = tmp_path / "my overlay"
    no_tools = {**os.environ, "PATH": "/usr/bin:/bin"}
    result = run_build(overlays["clip"]["root"] / "model.h5", out, no_tools, "alveo-u250")
    assert result.returncode == 3
    assert f"collect --out {shlex.quote(str(out))}" in result.stdout
    assert "mkdir -p xo_files xclbin_files && cd xclbin_files" in result.stdout
    collect = subprocess.run(
        [sys.executable, "-m", "overlay", "collect", "--out", str(out)], capture_output=True, text=True
    )
    assert collect.returncode == 2 and "have not produced a bitstream" in collect.stderr


def test_stream_builds_the_frame_by_frame_copy_of_a_whole_clip_model(overlays, tmp_path):
    result = run_build(overlays["clip"]["root"] / "model.h5", tmp_path / "out", dict(os.environ), "pynq-z2", "--stream")
    assert result.returncode == 3, result.stderr
    manifest = Manifest.load(tmp_path / "out")
    assert manifest.input_shape[0] == 1 and manifest.stateful
    assert overlays["clip"]["model"].input_shape[1] == 6  # the file itself is a whole-clip model


def test_build_output_is_quiet_and_says_where_compiler_warnings_come_from(overlays):
    """No TensorFlow start-up noise, no legacy-format or quantizer-serialization warning (with
    TensorFlow's own log level unset); the g++ warnings are summarized by origin, none in our code."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    command = ["estimate", "--model", str(overlays["clip"]["root"] / "model.h5"), "--board", "pynq-z2"]
    result = subprocess.run([sys.executable, "-m", "overlay", *command], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    noises = ("Unable to register", "oneDNN", "TensorRT", "cpu_feature_guard", "constraints.serialize()", "HDF5")
    for noise in noises:
        assert noise not in result.stdout + result.stderr, noise
    for built in overlays.values():
        output = built["result"].stdout + built["result"].stderr
        assert re.search(r"g\+\+ -Wall -Wextra (warnings: \d+ in ap_types|: no warnings)", output)
        assert "in ours" not in output


def test_quiet_imports_keep_every_message_that_is_not_known_to_be_harmless(tmp_path):
    (tmp_path / "noisy.py").write_text(
        "import os\n"
        "os.write(2, b'E cuda_dnn.cc] Unable to register cuDNN factory: already registered\\n')\n"
        "os.write(2, b'a real problem\\n')\n"
    )
    code = "from models.quiet import quiet_imports; quiet_imports(('noisy',))"
    env = {**os.environ, "PYTHONPATH": f"{os.getcwd()}:{tmp_path}"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0 and result.stderr.strip() == "a real problem"


def test_build_help_documents_the_exit_codes_and_options():
    result = subprocess.run([sys.executable, "-m", "overlay", "build", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for text in ("exit codes", "3 the project is written", "--stream", "--force", ".keras", "registered LSTM family"):
        assert text in " ".join(result.stdout.split()), text


def test_alveo_build_runs_vitis_and_collects_the_xclbin(overlays, tmp_path):
    env = fake_tools(tmp_path / "bin")
    result = run_build(overlays["clip"]["root"] / "model.h5", tmp_path / "out", env, board="alveo-u250")
    assert result.returncode == 0, result.stderr
    manifest = Manifest.load(tmp_path / "out")
    assert manifest.verified_path("xclbin", tmp_path / "out").read_text() == "xclbin\n"
    assert "bitstream" not in manifest.files and manifest.board == "alveo-u250"


def test_a_failing_tool_fails_the_build(overlays, tmp_path):
    result = run_build(
        overlays["clip"]["root"] / "model.h5", tmp_path / "out", fake_tools(tmp_path / "bin", fail="vivado")
    )
    assert result.returncode == 2
    assert "vivado -mode batch -source design.tcl" in result.stderr and "exit code 1" in result.stderr


def test_model_without_our_layer_is_refused(tmp_path):
    model = tf.keras.Sequential([tf.keras.Input((4, 3)), tf.keras.layers.LSTM(2)])
    model.save(tmp_path / "plain.h5")
    result = run_build(tmp_path / "plain.h5", tmp_path / "out", dict(os.environ))
    assert result.returncode == 2 and "has no " in result.stderr
    named = result.stderr.split("has no ")[1].split(" layer")[0].split(" / ")
    assert set(named) == {cls.__name__ for cls in project_families().values()}
    result = run_build(tmp_path / "missing.h5", tmp_path / "out", dict(os.environ))
    assert result.returncode == 2 and "missing.h5 does not exist" in result.stderr


def test_bad_board_is_refused(tmp_path):
    result = run_build("m.h5", tmp_path, board="ultra96")
    assert result.returncode == 2 and "ultra96" in result.stderr


def test_two_overlays_in_one_process_keep_their_statics_apart(overlays, tmp_path, rng):
    """Both projects name their layer config2 with the same types, so their statics (state,
    buffers) must stay apart when both emulator libraries are loaded in one process."""
    from qkeras import QDense, quantized_bits

    import host
    from overlay import MissingToolError, build_overlay

    model, layer = family_model(models.HTLSTM, 4, [2, 3, 4], [2, 2, 2], ht_ranks=[3, 2, 3, 4, 1], **quantizers("w12"))
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
        host.open(overlays["clip"]["overlay"], backend="emulated") as tt_accelerator,
        host.open(tmp_path / "overlay", backend="emulated") as accelerator,
    ):
        tt_before = tt_accelerator.run_clip(np.ones((6, 24)))
        emulated = np.stack([accelerator.run_clip(clip)[0] for clip in clips])
        np.testing.assert_array_equal(tt_accelerator.run_clip(np.ones((6, 24))), tt_before)
    np.testing.assert_array_equal(emulated, csim)


@pytest.mark.parametrize("name", ["clip", "frames"])
def test_cosim_testbench_passes_on_the_real_top_and_catches_a_wrong_beat(overlays, name, tmp_path):
    """The testbench written with the overlay compiles against the accelerator top (g++) and
    passes; with one expected beat changed it fails and names the beat."""
    from overlay.testbench import BEATS_OUT, run_testbench

    hls_dir = tmp_path / "hls"
    shutil.copytree(overlays[name]["overlay"] / "hls", hls_dir)
    result = run_testbench(hls_dir)
    assert result.returncode == 0 and "PASS: 5 transfers, 0 mismatches" in result.stdout, result.stderr
    expected = (hls_dir / BEATS_OUT).read_text()
    assert (hls_dir / "tb_data/csim_results.log").read_text() == expected
    lines = expected.splitlines()
    beats = lines[1].split()
    beats[0] = str(int(beats[0]) ^ 1)
    (hls_dir / BEATS_OUT).write_text("\n".join([lines[0], " ".join(beats), *lines[2:]]) + "\n")
    result = run_testbench(hls_dir)
    assert result.returncode == 1 and "transfer 1, beat 0" in result.stderr
