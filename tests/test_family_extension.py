"""The declared hooks are enough: a whole new family defined in this file (as hls4ml's
test_extensions.py does for a custom layer) runs through training, save/load, convert, C-sim
(== its NumPy reference, Keras within 1 LSB) and the overlay, with no edit to shared code.

The toy family: a dense input map ``zx = q_acc(x @ W)`` and a compressed recurrent map, one
weight per gate and unit, ``zh[g*H + k] = h[k] * d[g, k]`` (exact).
"""

from dataclasses import dataclass

import numpy as np
import pytest
import tensorflow as tf
from conftest import check_csim, quantizers, random_weights

import hls_project
import models
from fixedpoint import requantize_raw
from hls_project.cost import Memory, Stage
from hls_project.lstm_cell import LSTMFamilyLayer
from hls_project.sizing import exact_cpp, product_sum_type
from models.families import discover
from models.lstm_cell import QuantizedLSTMCell, QuantizedRNN


@dataclass(frozen=True)
class DenseMap:
    n_in: int
    n_out: int

    @property
    def n_params(self) -> int:
        return self.n_in * self.n_out

    macs = n_params

    def describe(self) -> str:
        return f"the dense map takes {self.n_in} values"

    def glorot_stddev(self) -> float:
        return float(np.sqrt(2.0 / (self.n_in + self.n_out)))


class ToyLSTMCell(QuantizedLSTMCell):
    def __init__(self, units, n_in, **kwargs):
        super().__init__(units, **kwargs)
        self.n_in = int(n_in)

    @property
    def decomposition(self):
        return DenseMap(self.n_in, 4 * self.units)

    def input_map_weight_shapes(self):
        return {"kernel": (self.n_in, 4 * self.units)}

    def input_map(self, x, weights):
        return self.quantize(x @ weights[0], "accumulator_quantizer")

    def decompose(self, matrix):
        return [matrix], 0.0

    def recurrent_map_weight_shapes(self):
        return {"diagonal": (4, self.units)}

    def recurrent_map(self, h, weights):
        return tf.tile(h, [1, 4]) * tf.reshape(weights[0], [-1])

    def decompose_recurrent(self, matrix):
        h = self.units
        diagonal = np.stack([np.diag(matrix[:, g * h : (g + 1) * h]) for g in range(4)])
        rest = matrix - np.concatenate([np.diag(d) for d in diagonal], axis=1)
        return [diagonal], float(np.linalg.norm(rest) / np.linalg.norm(matrix))

    def get_config(self):
        return {**super().get_config(), "n_in": self.n_in}


class ToyLSTM(QuantizedRNN):
    cell_class = ToyLSTMCell
    family = "toy_lstm"

    @classmethod
    def for_task(cls, n_features, units, n_modes=4, rank=4, **kwargs):
        return cls(units, n_in=n_features, **kwargs)


class ToyLSTMLayer(LSTMFamilyLayer):
    keras_class = ToyLSTM

    @staticmethod
    def input_map_reference(cell, weights, types, frac):
        return lambda x: requantize_raw(x @ weights[0], frac + types.kernel.frac, types.accumulator)

    @staticmethod
    def recurrent_map_reference(cell, weights, types):
        return lambda h: (np.tile(h, 4) * weights[0].reshape(-1), types.state.frac + types.recurrent.frac)

    def input_map_configs(self):
        return ""

    def input_map_body(self):
        types = self.lstm_types
        mac_t = exact_cpp(product_sum_type(self.get_attr("n_in"), types.input, types.kernel))
        kernel = self.weight_vars("input_map")[0]
        return f"""        nnet::join_reader<data_T, config{self.index}> reader;
        {mac_t} acc[4 * n_state];
        for (unsigned i = 0; i < n_join; i++) {{
            const join_t x = reader.next(frame, h);
            for (unsigned j = 0; j < 4 * n_state; j++) {{
                acc[j] = (i == 0 ? {mac_t}(0) : acc[j]) + x * {kernel}[i * 4 * n_state + j];
            }}
        }}
        for (unsigned j = 0; j < 4 * n_state; j++) zx[j] = acc[j];"""

    def recurrent_map_type(self):
        types = self.lstm_types
        return product_sum_type(1, types.state, types.recurrent)

    dense_recurrent_map = False  # a diagonal recurrent map of its own

    def recurrent_map_body(self):
        diagonal = self.weight_vars("recurrent_map")[0]
        return f"        for (unsigned j = 0; j < 4 * n_state; j++) zh[j] = h[j % n_state] * {diagonal}[j];"

    def input_map_stages(self):
        types, n_in, gates = self.lstm_types, self.get_attr("n_in"), 4 * self.get_attr("n_out")
        product = (types.input.width, types.kernel.width)
        kernel = Memory("kernel", n_in * gates, types.kernel.width)
        return [Stage("dense input map", n_in, 1, gates, product, 32, (kernel,))]

    def recurrent_map_stages(self):
        types, gates = self.lstm_types, 4 * self.get_attr("n_out")
        return [Stage("diagonal", gates, 1, 1, (types.state.width, types.recurrent.width), 32)]


def toy_model(frames, **kwargs):
    layer = ToyLSTM.for_task(10, 4, name="toy", **quantizers("w12"), **kwargs)
    inputs = tf.keras.Input((frames, 10))
    model = tf.keras.Model(inputs, layer(inputs))
    random_weights(layer, np.random.default_rng(3), 0.6)
    return model, layer


def test_defining_the_classes_registers_the_family():
    assert discover()["toy_lstm"] is ToyLSTM
    assert hls_project.discover()["ToyLSTM"] is ToyLSTMLayer
    assert models.custom_objects()["ToyLSTMCell"] is ToyLSTMCell


def test_registering_again_is_harmless_and_a_second_lowering_is_refused():
    from hls_project.families import register_family

    before = hls_project.discover()
    register_family(ToyLSTMLayer)  # the same class again: nothing new
    assert hls_project.discover() == before
    with pytest.raises(ValueError, match="ToyLSTM is lowered by .*ToyLSTMLayer already"):

        class OtherToyLSTMLayer(ToyLSTMLayer):
            keras_class = ToyLSTM


def test_a_family_that_misses_a_hook_cannot_be_built():
    class Incomplete(QuantizedLSTMCell):
        def input_map_weight_shapes(self):
            return {}

    with pytest.raises(TypeError, match="abstract methods? .*decompos"):
        Incomplete(4)


def test_the_diagonal_recurrent_map_matches_keras_lstm_where_it_can(rng):
    """From a dense LSTM whose recurrent matrix is gate-wise diagonal, the toy family is exact."""
    dense = tf.keras.layers.LSTM(4, return_sequences=True)
    dense_model = tf.keras.Sequential([tf.keras.Input((5, 10)), dense])
    kernel, recurrent, bias = dense.get_weights()
    recurrent = np.concatenate([np.diag(rng.normal(size=4)) for _ in range(4)], axis=1)
    dense.set_weights([kernel, recurrent, bias])
    layer, error = ToyLSTM.from_dense(kernel, recurrent, bias, n_in=10, return_sequences=True)
    assert error == 0.0
    model = tf.keras.Sequential([tf.keras.Input((5, 10)), layer])
    x = rng.normal(size=(3, 5, 10)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), dense_model.predict(x, verbose=0), atol=1e-5)


@pytest.mark.parametrize("io_type", ["io_parallel", "io_stream"])
def test_toy_family_csim_equals_reference_and_keras(io_type, tmp_path, rng):
    model, layer = toy_model(6, return_sequences=True)
    x = rng.uniform(-3, 3, (8, 6, 10)).astype(np.float32)
    hls_model = check_csim(model, layer, x, tmp_path / "prj", io_type=io_type)
    assert "recurrent_map" in (tmp_path / "prj" / "firmware" / "parameters.h").read_text()
    assert hls_model.graph["toy"].class_name == "ToyLSTMLayer"


def test_toy_family_trains_saves_and_goes_through_the_overlay(tmp_path, rng):
    import host
    from overlay import MissingToolError, build_overlay

    model, layer = toy_model(4)
    x = rng.uniform(-1, 1, (16, 4, 10)).astype(np.float32)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, rng.uniform(-0.5, 0.5, (16, 4)), epochs=1, verbose=0)
    model.save(tmp_path / "toy.h5")
    loaded = models.load_model(tmp_path / "toy.h5")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(MissingToolError):
        build_overlay(tmp_path / "toy.h5", "pynq-z2", tmp_path / "overlay")
    expected, _ = hls_project.execute(layer, x[:5])
    with host.open(tmp_path / "overlay", backend="emulated") as accelerator:
        emulated = np.stack([accelerator.run_clip(clip)[0] for clip in x[:5]])
    np.testing.assert_array_equal(emulated, expected)
