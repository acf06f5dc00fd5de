"""The converter handler of every family (hls4ml's Keras handler): a family layer of a Keras model
as the attributes of its IR node (sizes, flags, the Keras config the cell is rebuilt from, every
weight on its grid)."""

from __future__ import annotations

import numpy as np

from fixedpoint import FixedType
from hls_project.families import keras_cell
from models.quantization import LSTMTypes


def weight_grid(values, ftype: FixedType) -> np.ndarray:
    """Weights rounded exactly as the Keras layer rounds them (float64 on the type's grid)."""
    return ftype.quantize(np.asarray(values, np.float64))


def read_weight(data_reader, layer_name: str, weight: str) -> np.ndarray:
    data = data_reader.get_weights_data(layer_name, f"/{weight}:")  # '/' and ':' so core_1 is not core_10
    if data is None:
        raise ValueError(f"layer '{layer_name}': no weight '{weight}' in the model's weights")
    return data


def parse_lstm_family(keras_layer, input_names, input_shapes, data_reader):
    """The converter handler of every family: sizes, flags, the Keras config and every weight."""
    config = keras_layer["config"]
    name = config["name"]
    shape = input_shapes[0]
    if len(shape) != 3 or shape[1] is None:
        raise ValueError(
            f"layer '{name}': the model input must be (frames, features) with a fixed number of "
            f"frames for hardware, got {shape[1:]}"
        )
    if config.get("return_state") or config.get("go_backwards"):
        raise ValueError(f"layer '{name}': return_state and go_backwards are not supported in hardware")
    cell = keras_cell(keras_layer)
    types = LSTMTypes.from_fixed_types(cell.fixed_types, name)
    units = cell.units
    layer = {
        "name": name,
        "class_name": keras_layer["class_name"],
        "keras_layer": {"class_name": keras_layer["class_name"], "config": config},
        "n_in": int(shape[2]),
        "n_out": units,
        "n_timesteps": int(shape[1]),
        "return_sequences": bool(config.get("return_sequences", False)),
        "stateful": bool(config.get("stateful", False)),
    }
    parts = [("input_map", cell.input_map_weight_shapes(), types.kernel)]
    parts.append(("recurrent_map", {} if cell.fused_recurrent else cell.recurrent_map_weight_shapes(), types.recurrent))
    for part, shapes, ftype in parts:
        layer[f"{part}_weight_names"] = list(shapes)
        for weight in shapes:
            data = read_weight(data_reader, name, weight)
            is_index = weight in cell.index_weight_names
            layer[f"{weight}_data"] = np.asarray(data, np.int64) if is_index else weight_grid(data, ftype)
    cell.check_index_weights({weight: layer[f"{weight}_data"] for weight in cell.index_weight_names}, name)
    layer["bias_data"] = weight_grid(read_weight(data_reader, name, "bias"), types.bias)
    if input_names is not None:
        layer["inputs"] = input_names
    out_shape = [shape[0], shape[1], units] if layer["return_sequences"] else [shape[0], units]
    return layer, out_shape
