"""Mistakes a user makes (issue 15): an edited manifest, an overlay whose data the host cannot
guess, bad arguments, non-finite input. Each is refused with one clear message, never a traceback
or a silently different answer."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import refusal, small_classifier

import hls_project
import host
from host import Accelerator, Manifest


def _copy(overlays, tmp_path, name: str):
    copy = tmp_path / name
    shutil.copytree(overlays[name]["overlay"], copy)
    return copy


def _edit_json(overlay, edit) -> None:
    """Edit ``manifest.json`` by hand, as a user would (no hash updated)."""
    path = overlay / "manifest.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))


def _set_fields(overlay, **fields) -> None:
    """Rewrite the manifest through ``Manifest.save``, as ``overlay build`` does."""
    manifest = Manifest.load(overlay)
    for name, value in fields.items():
        setattr(manifest, name, value)
    manifest.save(overlay)


def _stream(overlay, *options):
    command = [sys.executable, "-m", "host.stream", "--overlay", str(overlay), "--backend", "emulated", "--quiet"]
    return subprocess.run([*command, *options], capture_output=True, text=True)


def _assert_refused(result, *words) -> None:
    """Exit code 2, one line on stderr holding every one of ``words``, no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert all(word in result.stderr for word in words), result.stderr


# 4: the manifest's own content is covered by a hash written by Manifest.save


def _with_integer_bits(manifest: dict) -> dict:
    manifest["input_type"]["integer"] += 2
    return manifest


def _not_stateful(manifest: dict) -> dict:
    manifest["stateful"] = False
    return manifest


def _without_hash(manifest: dict) -> dict:
    return {key: value for key, value in manifest.items() if key != "content_sha256"}


@pytest.mark.parametrize("edit", [_with_integer_bits, _not_stateful, _without_hash])
def test_an_edited_manifest_is_refused(overlays, tmp_path, edit):
    overlay = _copy(overlays, tmp_path, "frames")
    _edit_json(overlay, edit)
    with pytest.raises(ValueError, match=rf"{re.escape(str(overlay / 'manifest.json'))} (was edited|has no content)"):
        host.open(overlay, backend="emulated")
    _assert_refused(_stream(overlay), "manifest.json")


def test_fields_set_after_the_first_save_are_covered_too(overlays, tmp_path):
    """``overlay build`` saves, then sets ``tools`` / ``measured`` and saves again."""
    overlay = _copy(overlays, tmp_path, "clip")
    _set_fields(overlay, tools={"vivado": "v2020.1"}, measured={"wns_ns": 0.5})
    assert Manifest.load(overlay).measured == {"wns_ns": 0.5}

    def faster(manifest):
        manifest["measured"]["wns_ns"] = 2.0
        return manifest

    _edit_json(overlay, faster)
    with pytest.raises(ValueError, match="edited"):
        Manifest.load(overlay)


# 6: synthetic clips follow the overlay's manifest (frames, features, classes)


def test_synthetic_clips_for_an_overlay_trained_on_a_folder(overlays, tmp_path):
    """Labels of the synthetic task (4 motions) are not the folder's 3 classes: clips of 3 motions, no accuracy."""
    overlay = _copy(overlays, tmp_path, "frames")
    dataset = {"kind": "folder", "height": 4, "width": 6, "channels": 1, "frames": 5, "class_names": ["a", "b", "c"]}
    _set_fields(overlay, dataset=dataset)
    result = _stream(overlay, "--clips", "4")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": 5 frames") == 4 and "clips correct" not in result.stdout


def test_synthetic_clips_take_the_overlays_frames_per_call(overlays, tmp_path):
    """A whole-clip overlay of 6 frames whose data set does not say its frames: 6-frame clips, not 16."""
    overlay = _copy(overlays, tmp_path, "clip")
    _set_fields(overlay, dataset={"height": 4, "width": 6, "channels": 1})
    result = _stream(overlay, "--clips", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("clip 0: 6 frames") == 1 and "clip 1: class" in result.stdout


def test_an_overlay_without_a_data_set_description_says_what_it_needs(overlays, tmp_path):
    overlay = _copy(overlays, tmp_path, "clip")
    _set_fields(overlay, dataset={})
    _assert_refused(_stream(overlay), "24 features", "--height")
    _assert_refused(_stream(overlay, "--height", "4", "--width", "4", "--channels", "1"), "16 features", "24")
    result = _stream(overlay, "--height", "4", "--width", "6", "--channels", "1", "--clips", "1")
    assert result.returncode == 0 and "clip 0: 6 frames" in result.stdout, result.stderr


# 10: host.stream and run_clip refuse what they cannot use, in one line


def test_stream_refuses_a_manifest_that_is_not_an_object(overlays, tmp_path):
    overlay = _copy(overlays, tmp_path, "clip")
    _edit_json(overlay, lambda manifest: [manifest])
    _assert_refused(_stream(overlay), "manifest.json", "JSON object")


def test_stream_names_a_malformed_manifest_field(overlays, tmp_path):
    overlay = _copy(overlays, tmp_path, "clip")
    _edit_json(overlay, lambda manifest: {**manifest, "input_shape": ["6", "x"]})
    _assert_refused(_stream(overlay), "manifest.json", "input_shape")


def test_stream_refuses_a_folder_as_video(overlays, tmp_path):
    overlay = _copy(overlays, tmp_path, "clip")
    _set_fields(overlay, dataset={"height": 4, "width": 6, "channels": 1})
    _assert_refused(_stream(overlay, "--video", str(tmp_path)), "--video", "folder")


def test_stream_a_video_through_a_whole_clip_overlay(overlays, tmp_path):
    """A 10-frame video into a 6-frame whole-clip overlay: 6 frames sampled over it, as in training."""
    import cv2

    overlay = _copy(overlays, tmp_path, "clip")
    _set_fields(overlay, dataset={"height": 4, "width": 6, "channels": 1})
    video = tmp_path / "ten.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (12, 8))
    for frame in np.random.default_rng(0).integers(0, 255, (10, 8, 12, 3), dtype=np.uint8):
        writer.write(frame)
    writer.release()
    result = _stream(overlay, "--video", str(video))
    assert result.returncode == 0, result.stderr
    assert "clip 0: 6 frames" in result.stdout


def test_run_clip_without_frames(overlays):
    with host.open(overlays["frames"]["overlay"], backend="emulated") as accelerator:
        with pytest.raises(ValueError, match="at least one frame"):
            accelerator.run_clip(np.zeros((0, 24)))


# 11 and 15: models.train validates its arguments before any work and documents every option


def _class_folders(root, videos: bool):
    for name in ("left", "right"):
        (root / name).mkdir(parents=True)
        if videos:
            (root / name / "clip.avi").write_bytes(b"\0" * 64)
    return root


BAD_TRAIN_ARGUMENTS = [
    (["--data", "{tmp}/missing"], "--data"),
    (["--data", ""], "--data"),
    (["--data", "{tmp}/empty"], "--data"),
    (["--rank", "0"], "--rank"),
    (["--modes", "0"], "--modes"),
    (["--height", "3"], "--height"),
    (["--frames", "1"], "--frames"),
    (["--units", "0"], "--units"),
    (["--clips", "1"], "--clips"),
    (["--clips", "2"], "--clips 2 is too few for the 4 classes"),
    (["--clips", "7"], "--clips 7 is too few for the 4 classes"),
    (["--epochs", "0"], "--epochs"),
    (["--learning-rate", "-0.01"], "--learning-rate"),
    (["--learning-rate", "nan"], "--learning-rate"),
    (["--models", "ht_lstm", "--rank", "100"], "ht_lstm"),
    (["--out", "{tmp}/file"], "--out"),
]


@pytest.mark.parametrize("arguments, named", BAD_TRAIN_ARGUMENTS)
def test_train_refuses_bad_arguments_before_any_work(tmp_path, capsys, arguments, named):
    from models.train import main

    assert named in refusal(main, arguments, tmp_path, capsys, before=["--clips", "8", "--models", "tt_lstm"])


@pytest.mark.parametrize("videos", [False, True])
def test_train_refuses_a_folder_it_cannot_read(tmp_path, capsys, videos):
    """Class folders without videos, or with files OpenCV cannot read: one line, exit 2, nothing saved."""
    from models.train import main

    data = _class_folders(tmp_path / "data", videos)
    assert main(["--data", str(data), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and str(data) in error
    assert not (tmp_path / "out").exists()


def test_train_help_documents_every_option_and_its_default():
    from models.train import build_parser

    parser = build_parser()
    undocumented = [action.dest for action in parser._actions if not action.help]
    assert not undocumented
    text = " ".join(parser.format_help().split())
    assert "(default: build/models)" in text and "(default: 0.005)" in text


# 12: the converted model's C-simulation refuses non-finite input, as the host does


def test_csim_predict_refuses_non_finite_input(tmp_path, rng):
    hls_model = hls_project.convert(small_classifier(6), tmp_path / "csim", echo=lambda line: None)
    hls_model.compile()
    clips = rng.uniform(-3, 3, (2, 6, 24)).astype(np.float32)
    expected = np.asarray(hls_model.predict(clips))
    for value in (np.nan, np.inf, -np.inf):
        broken = clips.copy()
        broken[1, 2, 3] = value
        with pytest.raises(ValueError, match="NaN or infinity"):
            hls_model.predict(broken)
    np.testing.assert_array_equal(hls_model.predict(clips), expected)
    assert type(hls_model).__name__ == "ModelGraph"


# issue 25: nothing silently wrong, nothing of the user's deleted


def _overlay_main(capsys, *argv):
    """``python -m overlay`` in this process: (exit code, stdout, stderr)."""
    from overlay.__main__ import main

    code = main([str(argument) for argument in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _files(folder) -> list:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def _model_inside_out(tmp_path):
    """``--out w`` with the model at ``w/build/models/tt_lstm.h5`` (``build`` is a board-package name)."""
    out = tmp_path / "w"
    (out / "build/models").mkdir(parents=True)
    (out / "build/models/tt_lstm.h5").write_bytes(b"the user's model")
    (out / "build/models/train_report.json").write_text("{}")
    return out, out / "build/models/tt_lstm.h5"


def _user_project(tmp_path):
    """A user's Python project: only names an overlay folder also has (pyproject.toml, package/)."""
    out = tmp_path / "mylib"
    (out / "package/mylib").mkdir(parents=True)
    (out / "package/mylib/core.py").write_text("VALUE = 1\n")
    (out / "pyproject.toml").write_text("[project]\nname = 'mylib'\n")
    return out, tmp_path / "model.h5"


def _foreign_manifest(tmp_path):
    """A folder whose manifest.json is another tool's."""
    out = tmp_path / "site"
    (out / "package").mkdir(parents=True)
    (out / "manifest.json").write_text(json.dumps({"name": "my web app", "icons": []}))
    return out, tmp_path / "model.h5"


@pytest.mark.parametrize(
    "make, named",
    [(_model_inside_out, "holds the model"), (_user_project, "no overlay"), (_foreign_manifest, "not this flow's")],
)
def test_build_never_clears_a_folder_that_is_not_an_overlay(tmp_path, capsys, make, named):
    out, model = make(tmp_path)
    before = _files(out)
    code, stdout, stderr = _overlay_main(capsys, "build", "--model", model, "--board", "pynq-z2", "--out", out)
    assert code == 2 and named in stderr and str(out) in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and "loading" not in stdout
    assert _files(out) == before


def test_build_refuses_an_overlay_folder_holding_the_model(overlays, tmp_path):
    """Even a real overlay folder is not cleared when the model to build lies in it."""
    from overlay import build_overlay

    out = _copy(overlays, tmp_path, "clip")
    (out / "build").mkdir()
    shutil.copyfile(overlays["clip"]["root"] / "model.h5", out / "build" / "model.h5")
    before = _files(out)
    with pytest.raises(ValueError, match="holds the model"):
        build_overlay(out / "build" / "model.h5", "pynq-z2", out)
    assert _files(out) == before


def test_a_second_build_into_a_folder_being_built_fails_at_once(overlays, tmp_path):
    """While one build holds ``--out`` (its lock held here), another build into it is refused at
    once, naming the folder, and touches nothing of it."""
    from overlay import build_overlay
    from overlay.build import locked_output_folder

    out = _copy(overlays, tmp_path, "clip")
    (out / "estimate.json").unlink()  # mid-build: files of one build, not yet all of them
    before = _files(out)
    with locked_output_folder(out):
        with pytest.raises(ValueError, match=rf"{re.escape(str(out))}: another build is running"):
            build_overlay(overlays["clip"]["root"] / "model.h5", "pynq-z2", out)
        assert _files(out) == before
    with locked_output_folder(out):  # released by the refused build and by the first holder
        pass


def _report(tmp_path, models: dict, dataset=None):
    """A ``train_report.json`` beside ``tmp_path/tt_lstm.h5`` listing ``models`` (name -> entry)."""
    model = tmp_path / "tt_lstm.h5"
    model.write_bytes(b"this run's model")
    report = {"dataset": dataset or {"kind": "synthetic", "height": 4, "width": 6, "channels": 1}, "models": models}
    (tmp_path / "train_report.json").write_text(json.dumps(report))
    return model


def test_a_train_report_of_another_run_is_ignored_with_a_warning(tmp_path, capsys):
    from host.manifest import sha256_of
    from overlay.build import training_dataset

    other = _report(tmp_path, {"ht_lstm": {"path": "runs/b/ht_lstm.h5"}})
    assert training_dataset(other) == {}
    assert "does not name tt_lstm.h5" in capsys.readouterr().out
    stale = _report(tmp_path, {"tt_lstm": {"path": "runs/b/tt_lstm.h5", "sha256": "0" * 64}})
    assert training_dataset(stale) == {}
    assert "another tt_lstm.h5" in capsys.readouterr().out
    current = _report(tmp_path, {"tt_lstm": {"path": "runs/b/tt_lstm.h5", "sha256": sha256_of(stale)}})
    assert training_dataset(current)["height"] == 4
    older = _report(tmp_path, {"tt_lstm": {"path": "runs/b/tt_lstm.h5"}})  # written before reports had hashes
    assert training_dataset(older)["height"] == 4 and capsys.readouterr().out == ""


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"dataset": {}, "models": []}', '{"models": {}}'])
def test_a_corrupt_train_report_is_refused_naming_it(tmp_path, capsys, text):
    model = tmp_path / "model.h5"
    model.write_bytes(b"a model")  # the report is read before the model
    (tmp_path / "train_report.json").write_text(text)
    code, _, stderr = _overlay_main(capsys, "build", "--model", model, "--board", "pynq-z2", "--out", tmp_path / "o")
    assert code == 2 and str(tmp_path / "train_report.json") in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def _vendor_run(overlays, tmp_path, hwh_text: str):
    """A copy of an overlay after a (faked) vendor run: a stand-in bitstream and ``hwh_text`` as its .hwh."""
    out = _copy(overlays, tmp_path, "clip")
    (out / "hls/impl").mkdir()
    (out / "hls/impl/design_1_wrapper.bit").write_bytes(b"stand-in bitstream")
    (out / "hls/impl/design_1.hwh").write_text(hwh_text)
    return out


FOREIGN_HWH = '<EDKSYSTEM><MODULES><MODULE VLNV="xilinx.com:hls:resize_accel:1.0"/></MODULES></EDKSYSTEM>'


@pytest.mark.parametrize("hwh_text, named", [("hwh\n", "not XML"), (FOREIGN_HWH, "myproject_axi")])
def test_collect_refuses_a_hwh_that_is_not_our_block_design(overlays, tmp_path, capsys, hwh_text, named):
    out = _vendor_run(overlays, tmp_path, hwh_text)
    code, _, stderr = _overlay_main(capsys, "collect", "--out", out)
    assert code == 2 and named in stderr and "design_1.hwh" in stderr, stderr
    assert not (out / "accelerator.bit").exists() and "bitstream" not in Manifest.load(out).files


def test_collect_without_the_vivado_reports_says_the_bitstream_is_unchecked(overlays, tmp_path, capsys):
    from conftest import STAND_IN_HWH

    out = _vendor_run(overlays, tmp_path, STAND_IN_HWH)
    code, stdout, _ = _overlay_main(capsys, "collect", "--out", out)
    assert code == 0 and (out / "accelerator.bit").exists()
    assert "unchecked" in stdout and "timing summary" in stdout, stdout


BUILD = ["build", "--model", "m.h5", "--board", "pynq-z2", "--out", "o"]
ESTIMATE = ["estimate", "--model", "m.h5", "--board", "pynq-z2"]
BAD_REUSE_FACTORS = [
    ([*BUILD, "--reuse-factor", "3000000000"], "--reuse-factor"),
    ([*BUILD, "--head-reuse-factor", "0"], "--head-reuse-factor"),
    ([*BUILD, "--head-reuse-factor", "-2"], "--head-reuse-factor"),
    ([*ESTIMATE, "--reuse-factor", "4097"], "--reuse-factor"),
    ([*ESTIMATE, "--head-reuse-factor", "0"], "--head-reuse-factor"),
    (["explore", "--family", "tt_lstm", "--board", "pynq-z2", "--reuse-factors", "1", "8192"], "--reuse-factors"),
]


@pytest.mark.parametrize("arguments, named", BAD_REUSE_FACTORS)
def test_overlay_refuses_reuse_factors_out_of_range(tmp_path, capsys, arguments, named):
    code, stdout, stderr = _overlay_main(capsys, *arguments)
    assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert f"{named} must be an integer from 1 to 4096" in stderr and "loading" not in stdout


@pytest.mark.parametrize(
    "options, named",
    [
        ({"reuse_factor": 3e9}, "reuse_factor"),
        ({"head_reuse_factor": 0}, "head_reuse_factor"),
        ({"reuse_factor": 2.5}, "reuse_factor"),
    ],
)
def test_convert_refuses_reuse_factors_out_of_range(tmp_path, options, named):
    with pytest.raises(ValueError, match=rf"{named} must be an integer from 1 to 4096"):
        hls_project.convert(small_classifier(6), tmp_path / "csim", echo=lambda line: None, **options)
    assert not (tmp_path / "csim").exists()


# issue 25, item 2: nothing the hardware computes differently from Keras, unannounced


def _float_head_classifier(frames=6, **head):
    """``small_classifier``'s TT-LSTM with a float ``Dense(4)`` head (no quantizers) taking ``head``."""
    import tensorflow as tf

    model = small_classifier(frames)
    dense = tf.keras.layers.Dense(4, name="float_head", **head)
    return tf.keras.Model(model.input, dense(model.get_layer("tt_lstm").output))


def test_convert_refuses_a_float_dense_softmax_head_naming_it(tmp_path):
    """A float ``Dense(4, activation="softmax")`` head took hls4ml's default types and its softmax put
    every class at 0.25 (Keras: the right class); an explicit ``precision`` takes them unchecked."""
    model = _float_head_classifier(activation="softmax")
    with pytest.raises(ValueError, match=r"layer 'float_head' \(Dense\) has no quantizers: .*QDense.*precision="):
        hls_project.convert(model, tmp_path / "csim", echo=lambda line: None)
    assert not (tmp_path / "csim").exists()
    hls_project.convert(model, tmp_path / "explicit", precision="ap_fixed<16,6>", echo=lambda line: None)


def test_convert_refuses_a_softmax_on_a_quantized_head(tmp_path):
    import tensorflow as tf

    model = small_classifier(6)
    softmax = tf.keras.layers.Activation("softmax", name="probabilities")
    model = tf.keras.Model(model.input, softmax(model.output))
    with pytest.raises(ValueError, match=r"layer 'probabilities' \(Activation\) computes a softmax: .*logits"):
        hls_project.convert(model, tmp_path / "csim", echo=lambda line: None)
    assert not (tmp_path / "csim").exists()


@pytest.mark.parametrize("layer, value", [("tt_lstm", np.nan), ("dense", np.inf)])
def test_convert_refuses_a_non_finite_weight_naming_the_layer(tmp_path, layer, value):
    """A NaN weight was written as -3.6e16: the hardware gave finite logits where Keras gives NaN."""
    model = small_classifier(6)
    target = model.get_layer(layer) if layer == "tt_lstm" else model.layers[-1]
    weights = target.get_weights()
    weights[0].flat[1] = value
    target.set_weights(weights)
    weight = re.escape(target.weights[0].name)
    with pytest.raises(ValueError, match=rf"layer '{target.name}': weight '{weight}' holds 1 NaN or infinite value"):
        hls_project.convert(model, tmp_path / "csim", echo=lambda line: None, precision="ap_fixed<16,6>")
    assert not (tmp_path / "csim").exists()


def _emulator_off_by(lsbs: int):
    """``Accelerator.run_clip`` with each clip's first output ``lsbs`` LSBs of the output type away from the
    emulator's: hardware that differs from Keras."""
    run_clip = Accelerator.run_clip

    def off(self, clip):
        outputs = run_clip(self, clip)
        outputs.flat[0] += lsbs * self.manifest.output_type.lsb
        return outputs

    return off


def test_a_build_whose_emulator_differs_from_keras_is_refused(overlays, tmp_path, capsys, monkeypatch):
    """Refused with the largest difference and the count (nothing left behind); with ``--force`` built,
    the disagreement in the manifest's ``keras_check``."""
    monkeypatch.setattr(Accelerator, "run_clip", _emulator_off_by(3))
    model, out = overlays["clip"]["root"] / "model.h5", tmp_path / "o"
    code, _, stderr = _overlay_main(capsys, "build", "--model", model, "--board", "pynq-z2", "--out", out)
    assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert re.search(r"differs from the Keras model by up to [\d.e-]+ \(2 of 6 outputs by more than 1 LSB", stderr)
    assert "--force" in stderr and not out.exists()
    code, _, stderr = _overlay_main(capsys, "build", "--model", model, "--board", "pynq-z2", "--out", out, "--force")
    assert code == 3, stderr
    check = Manifest.load(out).keras_check
    assert check["within_1_lsb"] is False and check["differing_outputs"] == 2
    assert 2 * check["lsb"] < check["max_abs_diff"] <= 4 * check["lsb"]


def test_a_failed_compile_shows_its_errors_first_and_keeps_the_whole_log(tmp_path):
    """g++'s warnings come before its errors: the message shows the error lines (not the last
    4,000 characters of warnings) and names the whole log, kept outside the output folder."""
    from overlay.axi_wrapper import compile_top

    firmware = tmp_path / "hls/firmware"
    firmware.mkdir(parents=True)
    warnings = "".join(f"int unused{k}(int x) {{ int y{k}; return x; }}\n" for k in range(200))
    (firmware / "myproject.cpp").write_text(warnings + "int broken( {\n")
    (firmware / "myproject_axi.cpp").write_text("")
    with pytest.raises(RuntimeError) as failure:
        compile_top(tmp_path / "hls", [], tmp_path / "hls/accel.so", "-fPIC", "-shared")
    message = str(failure.value)
    shown = message.splitlines()[1:]
    assert shown and all("error: " in line for line in shown)
    assert "myproject.cpp:201" in shown[0] and "warning" not in message
    log = Path(re.search(r"the whole log is (\S+)\)", message).group(1))
    assert log.exists() and "unused variable" in log.read_text() and not log.is_relative_to(tmp_path)
    log.unlink()


def _interrupted(command: list, ready: str, env=None):
    """Start ``python -m <command>``, send it SIGINT (Ctrl-C) once its output shows ``ready``, and
    return ``(exit code, stderr)``."""
    import os
    import signal

    environment = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", *map(str, command)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        # the default SIGINT disposition, whatever this test runner's is: Python then raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen = ""
    for line in process.stdout:
        seen += line
        if ready in line:
            process.send_signal(signal.SIGINT)
            break
    _, stderr = process.communicate(timeout=120)
    assert ready in seen, seen + stderr
    return process.returncode, stderr


FRAME_4X6 = ["--height", "4", "--width", "6", "--channels", "1"]  # the overlays' models take 24 features
INTERRUPTED_COMMANDS = {
    "host.stream": (
        ["host.stream", "--overlay", "{frames}", "--backend", "emulated", "--clips", "3000", *FRAME_4X6],
        "clip 0:",
    ),
    "models.train": (["models.train", "--out", "{tmp}/models", "--models", "tt_lstm"], "[train] data"),
    "overlay": (["overlay", "build", "--model", "{model}", "--board", "pynq-z2", "--out", "{tmp}/o"], "[overlay]"),
    "hls_project": (
        ["hls_project", "profile", "--model", "{model}", "--clips", "100000", *FRAME_4X6],
        "[profile] model",
    ),
}


@pytest.mark.parametrize("name", INTERRUPTED_COMMANDS)
def test_ctrl_c_ends_a_command_line_with_one_line_and_exit_130(overlays, tmp_path, name):
    """Ctrl-C while a command works: "interrupted" on one line, exit code 130 (128 + SIGINT), no traceback."""
    command, ready = INTERRUPTED_COMMANDS[name]
    paths = {"frames": overlays["frames"]["overlay"], "model": overlays["clip"]["root"] / "model.h5", "tmp": tmp_path}
    code, stderr = _interrupted([part.format(**paths) for part in command], ready, {"PATH": "/usr/bin:/bin"})
    assert code == 130 and stderr.strip().endswith("interrupted") and "Traceback" not in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


def _without_tf_log_level() -> dict:
    """This environment without ``TF_CPP_MIN_LOG_LEVEL`` (a user's shell does not set it)."""
    import os

    return {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}


def test_the_command_lines_print_no_tensorflow_start_up_lines(overlays, tmp_path):
    """``python -m hls_project`` and ``overlay collect`` import TensorFlow (hls4ml does): its start-up
    log (CUDA plug-ins, oneDNN, CPU features) is not shown, only what the command says."""
    from conftest import STAND_IN_HWH

    missing = tmp_path / "missing.h5"
    profile = [sys.executable, "-m", "hls_project", "profile", "--model", missing, "--out", tmp_path / "p.json"]
    result = subprocess.run(list(map(str, profile)), capture_output=True, text=True, env=_without_tf_log_level())
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"[profile] error: --model {missing}: model file {missing} does not exist"
    ], result.stderr
    out = _vendor_run(overlays, tmp_path, STAND_IN_HWH)
    collect = [sys.executable, "-m", "overlay", "collect", "--out", str(out)]
    result = subprocess.run(collect, capture_output=True, text=True, env=_without_tf_log_level())
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_train_splits_a_folder_data_set_by_class(tmp_path, capsys):
    """Every class of a folder is trained on, every class with 2 clips or more is held out too,
    whatever the seed; a class of one clip is said to be trained on only."""
    from test_datasets import _square_clip, _write_video

    from models.train import load_data

    for name, count in {"alone": 1, "many": 5, "pair": 2, "twins": 2}.items():
        (tmp_path / "data" / name).mkdir(parents=True)
        for clip in range(count):
            _write_video(tmp_path / "data" / name / f"{clip}.avi", _square_clip(4, clip, (255, 255, 255)), "MJPG")
    for seed in range(8):
        _, y, _, y_test, description = load_data(str(tmp_path / "data"), 0, seed, 4, 4, 4, 1)
        assert description["class_names"] == ["alone", "many", "pair", "twins"]
        assert sorted(set(y)) == [0, 1, 2, 3] and sorted(set(y_test)) == [1, 2, 3], (seed, y, y_test)
    assert "class 'alone' has 1 clip: it is trained on, not held out" in capsys.readouterr().out


def test_train_trains_a_model_listed_twice_once(tmp_path, capsys):
    from models.train import parse_args

    args = parse_args(["--models", "tt_lstm", "dense_lstm", "tt_lstm", "--out", str(tmp_path / "out")])
    assert args.models == ["tt_lstm", "dense_lstm"]
    assert "--models lists tt_lstm 2 times: it is trained once" in capsys.readouterr().out
