"""QKeras-style compressed LSTM layers, training and video data sets."""

from models.lstm_cell import QuantizedLSTMCell, QuantizedRNN
from models.tt_lstm import TTLSTM, LSTMCost, TTLSTMCell, tt_lstm_cost


def custom_objects() -> dict:
    """Everything ``tf.keras.models.load_model`` needs for our layers and QKeras' own."""
    from qkeras.utils import _add_supported_quantized_objects

    objects = {"TTLSTM": TTLSTM, "TTLSTMCell": TTLSTMCell}
    _add_supported_quantized_objects(objects)
    return objects


__all__ = [
    "LSTMCost",
    "QuantizedLSTMCell",
    "QuantizedRNN",
    "TTLSTM",
    "TTLSTMCell",
    "custom_objects",
    "tt_lstm_cost",
]
