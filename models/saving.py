"""Loading saved models (``.h5`` and ``.keras``) with our layers.

``.keras`` files name Keras classes by public API name (``keras.Sequential``) and Keras 2.15
resolves those names through TensorFlow's export registry. QKeras imports
tensorflow-model-optimization, which imports ``tf_keras`` and re-registers every ``keras.*``
name to tf_keras' classes, so a plain ``load_model`` rebuilds the model from tf_keras classes that
cannot hold our (Keras 2.15) layers. ``load_model`` resolves those names against ``tf.keras``
while it loads.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import tensorflow as tf
from tensorflow.python.util import tf_export


@contextlib.contextmanager
def _keras_names_from_tf_keras_api():
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


def load_model(path, compile: bool = True):
    """``tf.keras.models.load_model`` with ``models.custom_objects()``, for ``.h5`` and ``.keras``."""
    from models import custom_objects

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {path} does not exist")
    with _keras_names_from_tf_keras_api():
        return tf.keras.models.load_model(path, custom_objects=custom_objects(), compile=compile)
