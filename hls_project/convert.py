"""Keras model -> hls4ml model, with every type taken from the layers' quantizers."""

from __future__ import annotations

import hls4ml

from hls_project.lstm_cell import FAMILY_LAYERS
from models.quantization import LSTMTypes


def family_layers(model) -> list:
    """The model's layers of a registered LSTM family, in order."""
    return [layer for layer in model.layers if type(layer).__name__ in FAMILY_LAYERS]


def convert(
    model,
    output_dir,
    backend="Vivado",
    io_type="io_parallel",
    board=None,
    precision=None,
    reuse_factor=1,
    clock_period=None,
    echo=print,
):
    """Convert a Keras model holding our LSTM layers; returns the (uncompiled) hls4ml model.

    The model input gets the first LSTM layer's input type (same rounding as Keras).
    ``precision`` is only the default for stock layers without quantizers (e.g. a float
    ``Dense``); it defaults to hls4ml's ``ap_fixed<16,6>``. ``clock_period``: the HLS clock in ns
    (hls4ml's default, 5 ns, when None). Datapath types derived from the four
    QKeras quantizers (``models.quantization.derive_datapath_types``) are printed with ``echo``.
    """
    layers = family_layers(model)
    if not layers:
        names = ", ".join(sorted({type(layer).__name__ for layer in model.layers}))
        raise ValueError(f"model '{model.name}' has no {' / '.join(sorted(FAMILY_LAYERS))} layer (it has: {names})")
    if io_type not in ("io_parallel", "io_stream"):
        raise ValueError(f"io_type must be 'io_parallel' or 'io_stream', got {io_type!r}")
    if int(reuse_factor) < 1:
        raise ValueError(f"reuse_factor must be >= 1, got {reuse_factor}")
    for layer in layers:
        for name, reason in layer.cell.derived_types.items():
            echo(f"[convert] layer '{layer.name}': {name} not set -> {layer.cell.fixed_types[name].cpp()} ({reason})")
    config = hls4ml.utils.config_from_keras_model(
        model,
        granularity="name",
        backend=backend,
        default_precision=precision or "ap_fixed<16,6>",
        default_reuse_factor=int(reuse_factor),
    )
    first, input_name = layers[0], model.input_names[0]
    if first.input is model.input and input_name in config["LayerName"]:
        # the C-sim rounds floats into the input type exactly as the layer's input_quantizer does
        input_type = LSTMTypes.from_fixed_types(first.cell.fixed_types, first.name).input
        config["LayerName"][input_name]["Precision"] = input_type.cpp()
    kwargs = {"board": board} if backend == "VivadoAccelerator" and board else {}
    if clock_period is not None:
        kwargs["clock_period"] = clock_period
    return hls4ml.converters.convert_from_keras_model(
        model,
        output_dir=str(output_dir),
        backend=backend,
        io_type=io_type,
        hls_config=config,
        project_name="myproject",
        **kwargs,
    )
