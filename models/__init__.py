"""QKeras-style compressed LSTM layers, training and video data sets.

Attributes load lazily, so ``models.datasets`` and ``models.tt`` (NumPy/OpenCV only) can be
used without importing TensorFlow (e.g. by ``host.stream`` on a board).
"""

import importlib

_LAZY = {
    "QuantizedLSTMCell": "models.lstm_cell",
    "QuantizedRNN": "models.lstm_cell",
    "LSTMCost": "models.lstm_cell",
    "TTLSTM": "models.tt_lstm",
    "TTLSTMCell": "models.tt_lstm",
    "tt_lstm_cost": "models.tt_lstm",
    "HTLSTM": "models.ht_lstm",
    "HTLSTMCell": "models.ht_lstm",
    "ht_lstm_cost": "models.ht_lstm",
    "FDHTLSTM": "models.ht_lstm",
    "FDHTLSTMCell": "models.ht_lstm",
    "fdht_lstm_cost": "models.ht_lstm",
    "load_model": "models.saving",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")


def custom_objects() -> dict:
    """Everything ``tf.keras.models.load_model`` needs for our layers and QKeras' own."""
    from qkeras.utils import _add_supported_quantized_objects

    from models.ht_lstm import FDHTLSTM, HTLSTM, FDHTLSTMCell, HTLSTMCell
    from models.tt_lstm import TTLSTM, TTLSTMCell

    layers = (TTLSTM, TTLSTMCell, HTLSTM, HTLSTMCell, FDHTLSTM, FDHTLSTMCell)
    objects = {layer.__name__: layer for layer in layers}
    _add_supported_quantized_objects(objects)
    return objects


__all__ = [*_LAZY, "custom_objects"]
