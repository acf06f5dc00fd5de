"""The registry of LSTM families: each family's IR class (``hls_project.lstm_cell.LSTMFamilyLayer``
with ``keras_class`` set) by its Keras class name, registered with hls4ml's extension API (IR
layer, converter handler, config and function templates) on every backend in ``BACKENDS`` when
the class is defined."""

from __future__ import annotations

from pathlib import Path

import hls4ml

BACKENDS = ("Vivado", "Vitis", "VivadoAccelerator")
FAMILY_LAYERS: dict = {}  # Keras class name -> LSTMFamilyLayer subclass


def keras_cell(keras_layer: dict):
    """The Keras cell of a family layer, rebuilt (unbuilt, no weights) from its class name and config."""
    return FAMILY_LAYERS[keras_layer["class_name"]].keras_class.from_config(keras_layer["config"]).cell


def register_family(layer_class) -> None:
    """Register one family's IR class with hls4ml: layer, handler, templates and the family's own
    headers (``headers`` given as absolute paths), once per name."""
    from hls_project.lstm_handler import parse_lstm_family  # they import the IR base, which registers here
    from hls_project.lstm_templates import LSTMConfigTemplate, LSTMFunctionTemplate

    name = layer_class.keras_class.__name__
    known = FAMILY_LAYERS.get(name)
    if known is not None:
        if known.__qualname__ != layer_class.__qualname__:
            raise ValueError(f"Keras class {name} is lowered by {known.__module__}.{known.__qualname__} already")
        FAMILY_LAYERS[name] = layer_class
        return
    FAMILY_LAYERS[name] = layer_class
    hls4ml.model.layers.register_layer(name, layer_class)
    templates = [
        type(f"{layer_class.__name__}{base.__name__[4:]}", (base,), {"layer_class": layer_class})
        for base in (LSTMConfigTemplate, LSTMFunctionTemplate)
    ]
    own_headers = [Path(header) for header in layer_class.headers if Path(header).is_absolute()]
    for backend_name in BACKENDS:
        backend = hls4ml.backends.get_backend(backend_name)
        for template in templates:
            backend.register_template(template)
        for header in own_headers:  # a package's own header: written into every project's nnet_utils
            backend.register_source(header)
    hls4ml.converters.register_keras_v2_layer_handler(name, parse_lstm_family)


def family_layer_of(layer):
    """The IR class that lowers Keras layer ``layer``; a ValueError when none does."""
    family = FAMILY_LAYERS.get(type(layer).__name__)
    if family is not None and family.keras_class is type(layer):
        return family
    raise ValueError(f"layer '{layer.name}' ({type(layer).__name__}) is not a registered LSTM family")
