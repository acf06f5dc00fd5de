"""Loading model files (issue 13): Keras' safe deserialization for ``.h5`` and ``.keras``, clear errors on
truncated or corrupt files, and hand-edited files whose names Keras itself refuses (quotes, ``$(...)``,
backticks, newlines): refused with the file named, or loaded and converted with nothing executed.

Covered elsewhere: a stored weight of the wrong shape (``tests/test_bc_lstm.py``, ``tests/test_rbs_lstm.py``),
an edited or malformed manifest and weight or library files whose hashes differ from it
(``tests/test_user_errors.py``, ``tests/test_host.py``), plain ``.keras`` loads (``tests/test_keras_loading.py``).
"""

from __future__ import annotations

import json
import shutil
import zipfile

import h5py
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_classifier

import hls_project
import models
from hls_project.names import cpp_comment


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The deployed shape saved as ``.h5`` and ``.keras``: {suffix: path}, and the model."""
    root = tmp_path_factory.mktemp("saved")
    model = small_classifier(3)
    paths = {suffix: root / f"model{suffix}" for suffix in (".h5", ".keras")}
    for path in paths.values():
        model.save(path)
    return paths, model


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_a_lambda_layer_runs_only_when_the_user_opts_in(tmp_path, suffix):
    """A ``Lambda`` holding a Python ``lambda`` whose call leaves a file: refused by default (the file is
    never written), loaded with ``safe_mode=False``. Keras applies safe mode to ``.keras`` only."""
    marker = tmp_path / "lambda_ran"
    inputs = tf.keras.Input((4,))
    where = str(marker)  # the lambda's closure is saved with it
    touch = tf.keras.layers.Lambda(lambda x: (open(where, "w").close(), x * 2.0)[1], name="touch")  # noqa: SIM115
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(2, name="dense")(touch(inputs)))
    path = tmp_path / f"lambda{suffix}"
    model.save(path)
    marker.unlink()
    with pytest.raises(ValueError, match=rf"{path.name} cannot be loaded: .*Lambda layer .*safe_mode=False"):
        models.load_model(path)
    assert not marker.exists()
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    loaded = models.load_model(path, safe_mode=False)
    assert marker.exists()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _garbage(data: bytes) -> bytes:
    return bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8))


def _empty(data: bytes) -> bytes:
    return b""


def _zeroed_middle(data: bytes) -> bytes:
    third = len(data) // 3
    return data[:third] + bytes(third) + data[2 * third :]


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("damage", [_truncated, _garbage, _empty, _zeroed_middle])
def test_a_damaged_file_is_a_clear_error(saved, tmp_path, suffix, damage):
    paths, _ = saved
    path = tmp_path / f"damaged{suffix}"
    path.write_bytes(damage(paths[suffix].read_bytes()))
    with pytest.raises(ValueError, match=rf"model file {path}"):
        models.load_model(path)


def test_a_keras_file_with_a_broken_config_is_a_clear_error(saved, tmp_path):
    paths, _ = saved
    path = tmp_path / "broken.keras"
    _edit_keras_zip(paths[".keras"], path, lambda text: text[: len(text) // 2])
    with pytest.raises(ValueError, match=rf"model file {path}"):
        models.load_model(path)


def test_a_folder_or_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.h5 does not exist"):
        models.load_model(tmp_path / "missing.h5")
    with pytest.raises(ValueError, match=f"model file {tmp_path} is not a file"):
        models.load_model(tmp_path)


# Hand-edited files: names Keras refuses when building a model, with shell syntax that would leave a file
# if anything ever ran it.


def _edit_keras_zip(source, target, edit) -> None:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as edited:
        for info in original.infolist():
            data = original.read(info)
            edited.writestr(info, edit(data.decode()).encode() if info.filename == "config.json" else data)


def _edit_h5_config(source, target, edit) -> None:
    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as file:
        config = file.attrs["model_config"]
        file.attrs["model_config"] = edit(config.decode() if isinstance(config, bytes) else config)


EDITORS = {".h5": _edit_h5_config, ".keras": _edit_keras_zip}


def odd_name(tmp_path) -> str:
    return f"q'\"$(touch {tmp_path}/ran)`touch {tmp_path}/ran2`\nx;rm -rf {tmp_path}"


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("which", ["input", "lstm", "head", "model"])
def test_names_keras_refuses_are_refused_or_converted_and_never_run(saved, tmp_path, suffix, which):
    """A hand-edited name on one layer (or the model): loading refuses it naming the file (Keras checks
    layer names as it rebuilds the graph), or the model loads and converts with the name only in escaped
    comments and reports; no command in it runs, nothing is written outside the output folder."""
    paths, model = saved
    old = {"input": model.layers[0], "lstm": model.layers[1], "head": model.layers[2], "model": model}[which].name
    name = odd_name(tmp_path)
    path = tmp_path / f"edited{suffix}"
    EDITORS[suffix](paths[suffix], path, lambda text: text.replace(json.dumps(old), json.dumps(name)))
    try:
        loaded = models.load_model(path)
    except ValueError as err:
        assert str(path) in str(err) and "not a valid" in str(err)
    else:
        assert name in [layer.name for layer in loaded.layers] + [loaded.name]
        before = set(tmp_path.rglob("*"))
        out = tmp_path / "project"
        hls_project.convert(loaded, out, echo=lambda line: None).write()
        assert all(p == out or out in p.parents for p in set(tmp_path.rglob("*")) - before)
        source = (out / "firmware/myproject.cpp").read_text()
        assert "$(touch" not in source.replace(cpp_comment(name), "")
    assert not (tmp_path / "ran").exists() and not (tmp_path / "ran2").exists()
