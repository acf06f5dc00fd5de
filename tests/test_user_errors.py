"""Mistakes a user makes (issue 15): an edited manifest, an overlay whose data the host cannot
guess, bad arguments, non-finite input. Each is refused with one clear message, never a traceback
or a silently different answer."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import small_classifier

import hls_project
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
        Accelerator(overlay, backend="emulated")
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
    with Accelerator(overlays["frames"]["overlay"], backend="emulated") as accelerator:
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
    (["--epochs", "0"], "--epochs"),
    (["--learning-rate", "-0.01"], "--learning-rate"),
    (["--learning-rate", "nan"], "--learning-rate"),
    (["--models", "ht_lstm", "--rank", "100"], "ht_lstm"),
    (["--out", "{tmp}/file"], "--out"),
]


@pytest.mark.parametrize("arguments, named", BAD_TRAIN_ARGUMENTS)
def test_train_refuses_bad_arguments_before_any_work(tmp_path, capsys, arguments, named):
    from models.train import main

    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("")
    out = ["--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_info:
        main(["--clips", "8", "--models", "tt_lstm", *out, *[a.format(tmp=tmp_path) for a in arguments]])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert named in error.splitlines()[-1] and "Traceback" not in error
    assert not (tmp_path / "out").exists()


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
