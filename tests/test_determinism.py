"""Determinism (issue 13): the same seed trains the same weights, the same model writes byte-identical
HLS projects (no timestamps, random stamps or absolute paths: ``hls_project.reproducible``), and the
same project computes the same outputs."""

from __future__ import annotations

import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_build, small_classifier

import hls_project
import models


def tree(root) -> dict:
    """{relative path: bytes} of every file under ``root``."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_same_tree(first, second) -> None:
    a, b = tree(first), tree(second)
    assert sorted(a) == sorted(b)
    assert [name for name in a if a[name] != b[name]] == []
    for root in (first, second):  # nothing names the folder it was written to
        assert [name for name, data in a.items() if str(root).encode() in data] == []


def write_project(model, out, **options):
    hls_model = hls_project.convert(model, out, echo=lambda line: None, **options)
    hls_model.write()
    return hls_model


@pytest.mark.parametrize(
    "options",
    [{}, {"backend": "VivadoAccelerator", "board": "pynq-z2", "io_type": "io_stream"}],
    ids=["vivado", "accelerator"],
)
def test_the_same_model_writes_byte_identical_projects(tmp_path, options):
    """Two writes more than a second apart (Keras dates its model file to the second) into two folders."""
    model = small_classifier(3)
    write_project(model, tmp_path / "first", **options)
    time.sleep(1.1)
    write_project(model, tmp_path / "second", **options)
    assert_same_tree(tmp_path / "first", tmp_path / "second")
    assert (tmp_path / "first/keras_model.keras").exists() and (tmp_path / "first/build_lib.sh").exists()


def test_the_projects_copy_of_the_model_still_loads(tmp_path, rng):
    model = small_classifier(3)
    write_project(model, tmp_path / "p")
    loaded = models.load_model(tmp_path / "p/keras_model.keras")
    x = rng.uniform(-1, 1, (2, 3, 24)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_the_stamp_follows_the_sources(tmp_path):
    """The library's name changes with any source (a weight here), so a process never reuses a library
    compiled from other sources; it is the same for the same sources."""
    model = small_classifier(3)
    stamps = [write_project(model, tmp_path / "a").config.get_config_value("Stamp")]
    weights = model.get_layer("tt_lstm").get_weights()
    weights[-1] = weights[-1] + 0.25  # the bias
    model.get_layer("tt_lstm").set_weights(weights)
    stamps.append(write_project(model, tmp_path / "b").config.get_config_value("Stamp"))
    stamps.append(write_project(model, tmp_path / "c").config.get_config_value("Stamp"))
    assert stamps[0] != stamps[1] and stamps[1] == stamps[2]
    assert f"LIB_STAMP={stamps[2]}\n" in (tmp_path / "c/build_lib.sh").read_text()


def train(out, seed: int) -> tf.keras.Model:
    """``python -m models.train`` (a small task, one epoch) from a fresh Keras session; the saved model."""
    from models.train import main

    tf.keras.backend.clear_session()  # layer names count from zero again, as in a new process
    arguments = ["--clips", "8", "--frames", "3", "--height", "4", "--width", "6", "--units", "8", "--epochs", "1"]
    arguments += ["--models", "tt_lstm", "--modes", "2", "--rank", "2", "--seed", str(seed), "--out", str(out)]
    assert main(arguments) == 0
    return models.load_model(out / "tt_lstm.h5")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two small training runs with seed 5."""
    root = tmp_path_factory.mktemp("trained")
    return root, [train(root / name, 5) for name in ("a", "b")]


def test_the_same_seed_trains_the_same_weights_and_writes_the_same_project(trained):
    """One test, so that both checks share one pair of training runs under pytest-xdist."""
    root, (first, second) = trained
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    write_project(first, root / "project_a")
    write_project(second, root / "project_b")
    assert_same_tree(root / "project_a", root / "project_b")


@pytest.mark.slow
def test_the_same_seed_gives_the_same_csim_outputs(trained, rng):
    """Both projects compiled (two C-simulation builds): the same outputs, equal to the NumPy reference."""
    root, (first, second) = trained
    x = rng.uniform(0, 1, (4, 3, 24)).astype(np.float32)
    outputs = []
    for model, name in ((first, "csim_a"), (second, "csim_b")):
        hls_model = hls_project.convert(model, root / name, echo=lambda line: None)
        hls_model.compile()
        outputs.append(np.asarray(hls_model.predict(x)))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert np.count_nonzero(outputs[0]) > outputs[0].size // 2


@pytest.mark.slow
def test_overlay_build_is_deterministic(tmp_path):
    """``python -m overlay build`` twice (two processes, two folders): the same HLS project, Tcl, weights,
    emulator library, testbench, manifest and compile log (its g++ command names files relative to
    the project)."""
    model = small_classifier(6)
    model.save(tmp_path / "model.h5")
    for name in ("first", "second"):
        result = run_build(tmp_path / "model.h5", tmp_path / name, None, "pynq-z2", "--io-type", "io_parallel")
        assert result.returncode == 3, result.stderr[-2000:]
    a, b = tree(tmp_path / "first"), tree(tmp_path / "second")
    differ = sorted(name for name in set(a) | set(b) if a.get(name) != b.get(name))
    assert differ == [], differ
