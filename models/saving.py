"""Loading saved models (``.h5`` and ``.keras``) with our layers.

``.keras`` files name Keras classes by public API name (``keras.layers.InputLayer``) and Keras 2.15
resolves those names through TensorFlow's export registry. QKeras imports
tensorflow-model-optimization, which imports ``tf_keras`` and re-registers every ``keras.*``
name to tf_keras' classes. A plain ``tf.keras.models.load_model`` then rebuilds a functional
model's ``InputLayer`` from tf_keras, which Keras 2.15's graph reconstruction does not recognise
as an input layer: it re-queues the next layer's call forever, spinning at 100% CPU.

``custom_objects()`` therefore maps ``Functional`` (the class a functional model's config names)
to a stand-in that rebuilds the model, and later its optimizer, while ``keras.*`` names resolve
against ``tf.keras``, so ``tf.keras.models.load_model(path, custom_objects=models.custom_objects())``
loads functional ``.keras`` models. A ``Sequential`` model's config names ``keras.Sequential``
itself, which ``custom_objects`` cannot override: only ``load_model``, which resolves the names
around the whole load, loads those."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import tempfile
import zipfile
from pathlib import Path

import tensorflow as tf
from tensorflow.python.util import tf_export


@contextlib.contextmanager
def keras_names_from_tf_keras_api():
    """Within it, ``keras.*`` names (layers, initializers, ...) resolve against ``tf.keras``
    (Keras 2.15), not the tf_keras classes QKeras' import registered under them: what a model
    built from configs must use to get the objects a loaded model has."""
    original = tf_export.get_symbol_from_name

    def resolve(name):
        if name.startswith("keras."):
            target = tf.keras
            for part in name.split(".")[1:]:
                target = getattr(target, part, None)
                if target is None:
                    break
            if target is not None:
                return target
        return original(name)

    tf_export.get_symbol_from_name = resolve
    try:
        yield
    finally:
        tf_export.get_symbol_from_name = original


def _resolving_keras_names(method):
    @functools.wraps(method)
    def resolving(*args, **kwargs):
        with keras_names_from_tf_keras_api():
            return method(*args, **kwargs)

    return resolving


class _Functional:
    """Stands in for ``Functional`` in ``custom_objects()``: rebuilds a functional model from its config while
    ``keras.*`` names resolve against ``tf.keras``, and so does the model's ``compile_from_config`` (which Keras
    calls next for a compiled ``.keras`` file, to rebuild its optimizer)."""

    @staticmethod
    def from_config(config, custom_objects=None):
        """``tf.keras.Model.from_config`` with the layers' ``keras.*`` names resolved against ``tf.keras``."""
        with keras_names_from_tf_keras_api():
            model = tf.keras.Model.from_config(config, custom_objects=custom_objects)
        model.compile_from_config = _resolving_keras_names(model.compile_from_config)
        return model


MODEL_CLASSES = {"Functional": _Functional}


def load_model(path, compile: bool = True, safe_mode: bool = True):
    """``tf.keras.models.load_model`` with ``models.custom_objects()``, for ``.h5`` and ``.keras``.

    ``safe_mode``: Keras' safe deserialization, for ``.h5`` files too (Keras itself applies it to
    ``.keras`` files only, and would rebuild a ``Lambda`` layer's Python bytecode from an ``.h5``):
    a ``Lambda`` layer holding a Python ``lambda`` is refused; pass False only for a file you
    trust. A file that is missing, truncated, corrupt or not a Keras model, or whose layers or
    weights do not fit together, is a ``ValueError`` (``FileNotFoundError`` if missing) naming
    the file and what Keras found."""
    from models import custom_objects

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {path} does not exist")
    if not path.is_file():
        raise ValueError(f"model file {path} is not a file")
    with keras_names_from_tf_keras_api(), _safe_mode_scope(safe_mode):
        try:
            model = tf.keras.models.load_model(
                path, custom_objects=custom_objects(), compile=compile, safe_mode=safe_mode
            )
        except ValueError as err:
            if "Shape mismatch" in str(err):  # Keras names the variable (layer/cell/weight) and both shapes
                raise ValueError(
                    f"model file {path}: a stored weight does not fit its layer's configuration: {err}"
                ) from None
            raise ValueError(f"model file {path} cannot be loaded: {err}") from err
        except (OSError, KeyError, TypeError, zipfile.BadZipFile) as err:
            raise ValueError(f"model file {path} is not a readable Keras model (truncated or corrupt?): {err}") from err
    check_index_weights(model, path)
    return model


def _safe_mode_scope(safe_mode: bool):
    """Keras' ``SafeModeScope`` of the package ``tf.keras`` loads with: Keras 2.15, or tf_keras when
    ``TF_USE_LEGACY_KERAS`` was set before ``tf.keras`` was first used (tensorflow-model-optimization
    sets it when QKeras is imported)."""
    package = tf.keras.models.load_model.__module__.split(".")[0]
    return importlib.import_module(f"{package}.src.saving.serialization_lib").SafeModeScope(safe_mode)


def check_index_weights(model, path) -> None:
    """Every family layer's stored index weights (e.g. sparse column indices), checked by its cell."""
    from models.lstm_cell import QuantizedLSTMCell

    for layer in model.layers:
        cell = getattr(layer, "cell", None)
        if isinstance(cell, QuantizedLSTMCell):
            try:
                cell.check_index_weights(cell.stored_index_weights(), layer.name)
            except ValueError as err:
                raise ValueError(f"model file {path}: {err}") from None


def write_staged(out, writers: dict) -> None:
    """Write every file of ``writers`` (``{file name: function(path)}``) into ``out`` or none:
    each is written into a staging folder next to ``out`` first, and moved in only once all
    were written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.staging-") as scratch:
        staged = Path(scratch)
        for name, write in writers.items():
            write(staged / name)
        out.mkdir(parents=True, exist_ok=True)
        for name in writers:
            os.replace(staged / name, out / name)
