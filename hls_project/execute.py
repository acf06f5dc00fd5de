"""Bit-accurate NumPy execution of a Keras family layer, as the HLS kernel computes it (FINN's
``execute_node``): the family's reference maps (``input_map_reference``,
``recurrent_map_reference``) around ``hls_project.reference.lstm_sequence``."""

from __future__ import annotations

import numpy as np

from fixedpoint import FixedType
from hls_project.families import family_layer_of
from hls_project.lstm_cell import cell_activations
from hls_project.reference import join_raw, lstm_sequence
from hls_project.sizing import map_input_type
from models.quantization import LSTMTypes


def raw_weight(weight, ftype: FixedType) -> np.ndarray:
    """A Keras weight as the kernel holds it: raw integers of ``ftype``, or an index weight as is."""
    return np.asarray(weight.numpy(), np.int64) if weight.dtype.is_integer else ftype.to_raw(weight.numpy())


def execute(layer, x, state=None):
    """Bit-accurate NumPy execution of a Keras family layer, as the HLS kernel computes it.

    x: (batch, T, n_in) floats. Returns ``(outputs as float64, (h, c) raw)``; pass the state back
    to continue a stateful stream.
    """
    family = family_layer_of(layer)
    cell = layer.cell
    types = LSTMTypes.from_fixed_types(cell.fixed_types, layer.name)
    kernels = [raw_weight(w, types.kernel) for w in cell.input_map_weights]
    input_map = family.input_map_reference(cell, kernels, types, map_input_type(types, cell.fused_recurrent).frac)
    if cell.fused_recurrent:
        n_join = cell.decomposition.n_in
        x_map, recurrent_map = (lambda x_raw, h_raw: input_map(join_raw(x_raw, h_raw, n_join, types))), None
    else:
        recurrent = [raw_weight(w, types.recurrent) for w in cell.recurrent_map_weights]
        x_map, recurrent_map = (
            (lambda x_raw, h_raw: input_map(x_raw)),
            family.recurrent_map_reference(cell, recurrent, types),
        )
    out, state = lstm_sequence(
        types.input.to_raw(x),
        x_map,
        recurrent_map,
        types.bias.to_raw(cell.bias.numpy()),
        types,
        cell_activations(types, cell),
        state=state,
        return_sequences=bool(layer.return_sequences),
    )
    return types.state.from_raw(out), state
