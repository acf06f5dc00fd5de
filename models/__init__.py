"""QKeras-style compressed LSTM layers, training and video data sets.

Attributes load lazily, so ``models.datasets`` (NumPy/OpenCV only) works without TensorFlow,
e.g. for ``host.stream`` on a board. A family's public names (``TTLSTM``, ``tt_lstm_cost``, ...)
are looked up in the family modules that ``models.families`` discovers; nothing lists them here.
"""

import importlib
import importlib.util

_SHARED = {
    "QuantizedLSTMCell": "models.lstm_cell",
    "QuantizedRNN": "models.lstm_cell",
    "LSTMCost": "models.lstm_cell",
    "load_model": "models.saving",
}


def __getattr__(name):
    missing = AttributeError(f"module 'models' has no attribute {name!r}")
    if name in _SHARED:
        return getattr(importlib.import_module(_SHARED[name]), name)
    if name.startswith("_"):
        raise missing
    if importlib.util.find_spec(f"models.{name}") is not None:  # a submodule (`from models import datasets`)
        return importlib.import_module(f"models.{name}")
    from models.families import family_modules

    for stem in family_modules():
        module = importlib.import_module(f"models.{stem}")
        value = vars(module).get(name)
        if getattr(value, "__module__", None) == module.__name__:  # defined there, not imported
            return value
    raise missing


def custom_objects() -> dict:
    """Everything ``tf.keras.models.load_model`` needs for our layers (every registered family,
    layer and cell), QKeras' own, and ``models.saving.MODEL_CLASSES`` for ``.keras`` files."""
    from qkeras.utils import _add_supported_quantized_objects

    from models.families import discover
    from models.saving import MODEL_CLASSES

    objects = dict(MODEL_CLASSES)
    for layer in discover().values():
        objects[layer.__name__] = layer
        objects[layer.cell_class.__name__] = layer.cell_class
    _add_supported_quantized_objects(objects)
    return objects


__all__ = [*_SHARED, "custom_objects"]
