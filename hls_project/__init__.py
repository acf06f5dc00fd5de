"""hls4ml plugins for the compressed LSTM families, and ``convert`` for a Keras model.

Importing this package registers, with hls4ml's extension API, each family's converter handler,
IR layer, config/function templates and HLS headers on the Vivado, Vitis and
VivadoAccelerator backends. Importing (or calling ``register``) again does nothing.
"""

from __future__ import annotations

from pathlib import Path

import hls4ml

from hls_project import ht_lstm, tt_lstm

BACKENDS = ("Vivado", "Vitis", "VivadoAccelerator")
HEADERS = Path(__file__).parent / "nnet_utils"
FAMILIES = {
    # Keras class name: (handler, IR layer, config template, function template)
    "FDHTLSTM": (
        ht_lstm.parse_ht_lstm,
        ht_lstm.FDHTLSTMLayer,
        ht_lstm.FDHTLSTMConfigTemplate,
        ht_lstm.FDHTLSTMFunctionTemplate,
    ),
    "HTLSTM": (
        ht_lstm.parse_ht_lstm,
        ht_lstm.HTLSTMLayer,
        ht_lstm.HTLSTMConfigTemplate,
        ht_lstm.HTLSTMFunctionTemplate,
    ),
    "TTLSTM": (
        tt_lstm.parse_tt_lstm,
        tt_lstm.TTLSTMLayer,
        tt_lstm.TTLSTMConfigTemplate,
        tt_lstm.TTLSTMFunctionTemplate,
    ),
}


def register():
    """Register every family with hls4ml (idempotent)."""
    handlers = hls4ml.converters.get_supported_keras_layers()
    for name, (handler, layer, config_template, function_template) in FAMILIES.items():
        if name in handlers:
            continue
        hls4ml.model.layers.register_layer(name, layer)
        for backend_name in BACKENDS:
            backend = hls4ml.backends.get_backend(backend_name)
            backend.register_template(config_template)
            backend.register_template(function_template)
        hls4ml.converters.register_keras_v2_layer_handler(name, handler)
    for backend_name in BACKENDS:
        backend = hls4ml.backends.get_backend(backend_name)
        for header in sorted(HEADERS.glob("nnet_*.h")):
            backend.register_source(header.resolve())


register()

from hls_project.convert import convert  # noqa: E402  (needs the registration above)

__all__ = ["convert", "register"]
