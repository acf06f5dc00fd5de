"""The model inputs of our LSTM layers: a narrow frame stream, and a reset port for overlays.

hls4ml streams a tensor one last-axis row per element: a ``(frames, features)`` input becomes a
stream of ``nnet::array<T, features>``, which HLS splits into one FIFO per value (a 57,600-value
frame: 57,600 FIFOs). Our LSTM layers read their input value by value (``nnet::join_reader``), so
when every consumer of the model input is one of them, ``NarrowInputStream`` repacks that stream
into elements of at most ``ELEMENT_BITS`` (the largest number of values that divides a frame and
fits): hls4ml's ``PackedType`` with ``unpack``, i.e. ``nnet::array<T, features / n_pack>``.

``AddResetPort`` (overlay builds only, ``convert(..., reset_port=True)``) gives every stateful
layer its reset as an argument: a second model input ``lstm_reset``, one bit per call.
"""

from __future__ import annotations

from hls4ml.model.layers import Input
from hls4ml.model.optimizer import OptimizerPass
from hls4ml.model.types import PackedType

ELEMENT_BITS = 64  # one AXI-stream beat of the accelerator top (host.protocol.BEAT_BITS)
PASS_NAME = "narrow_lstm_input_stream"


def element_values(n_values: int, width: int, max_bits: int = ELEMENT_BITS) -> int:
    """The most values of ``width`` bits, dividing ``n_values``, that fit in ``max_bits`` (at least 1)."""
    fit = max(1, max_bits // width)
    return max(d for d in range(1, min(fit, n_values) + 1) if n_values % d == 0)


def stream_element_values(variable) -> int:
    """Values per element of an io_stream variable (after hls4ml's type transformation)."""
    packed = variable.type
    return packed.n_elem // packed.n_pack if packed.unpack else packed.n_elem * packed.n_pack


class NarrowInputStream(OptimizerPass):
    """Repack the model input's stream when every layer reading it is an LSTM family layer."""

    def match(self, node):
        if not isinstance(node, Input) or node.get_attr("narrow_stream_done", False):
            return False
        if node.model.config.get_config_value("IOType") != "io_stream":
            return False
        packed = node.get_output_variable().type
        if not isinstance(packed, PackedType) or packed.unpack or packed.n_pack != 1:
            return False  # not yet a stream (runs after hls4ml's transform_types), or packed by hls4ml
        from hls_project.lstm_cell import LSTMFamilyLayer

        readers = [other for other in node.model.graph.values() if node.outputs[0] in other.inputs]
        return bool(readers) and all(isinstance(reader, LSTMFamilyLayer) for reader in readers)

    def transform(self, model, node):
        variable = node.get_output_variable()
        packed = variable.type
        values = element_values(packed.n_elem, packed.precision.width)
        packed.n_pack, packed.unpack = packed.n_elem // values, True
        variable.pragma = ("stream", variable.size() // values)
        node.set_attr("narrow_stream_done", True)
        return False  # the graph is unchanged


RESET_PASS_NAME = "lstm_reset_port"
RESET_INPUT = "lstm_reset"
RESET_CONFIG_KEY = "LSTMResetPort"  # in hls_config["Model"], set by ``convert(..., reset_port=True)``


class AddResetPort(OptimizerPass):
    """Give every stateful LSTM family layer its reset as an argument: a second model input
    ``lstm_reset`` (one 1-bit value per call), which the accelerator top drives from its control
    word. Only when the config asks for it (overlay builds): the C-simulation keeps one input."""

    def match(self, node):
        from hls_project.lstm_cell import LSTMFamilyLayer

        return (
            isinstance(node, LSTMFamilyLayer)
            and bool(node.model.config.get_config_value("HLSConfig", {}).get("Model", {}).get(RESET_CONFIG_KEY))
            and bool(node.get_attr("stateful"))
            and len(node.inputs) == 1
        )

    def transform(self, model, node):
        from collections import OrderedDict

        from hls4ml.model.types import IntegerPrecisionType

        if RESET_INPUT not in model.graph:
            reset = model.make_node(Input, RESET_INPUT, {"input_shape": [1], "type_name": "reset_t"}, ["input"])
            reset.get_output_variable().type.precision = IntegerPrecisionType(width=1, signed=False)
            model.graph = OrderedDict([(RESET_INPUT, reset), *model.graph.items()])
            model.inputs.append(RESET_INPUT)
        node.inputs.append(RESET_INPUT)
        return True
