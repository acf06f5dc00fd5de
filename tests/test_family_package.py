"""A family from outside this tree: a separate installable package (its own Keras layer, hls4ml
plugin and HLS header, nothing of it in this repository) declares its modules under our entry
point groups (``models.families.ENTRY_POINTS``, ``hls_project.ENTRY_POINTS``) and its header by
path (``LSTMFamilyLayer.headers``). Installed into a folder of its own, it is discovered and runs
through training, save and load, ``convert``, C-simulation equal to its NumPy reference (and Keras
within 1 LSB) and the overlay emulator, in a Python process of its own.

The package's family: a dense input map ``zx = q_acc(x @ W)`` computed by the package's header
(``nnet::pkg_dense_map``), the default dense recurrent map.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "pkg-dense-family"
version = "0.1"

[project.entry-points."compressed_lstm_fpga.families"]
pkg_dense_lstm = "pkg_dense_family.layer"

[project.entry-points."compressed_lstm_fpga.hls_families"]
pkg_dense_lstm = "pkg_dense_family.plugin"

[tool.setuptools]
packages = ["pkg_dense_family"]

[tool.setuptools.package-data]
pkg_dense_family = ["*.h"]
"""

LAYER = '''
"""The Keras side: a dense input map, the default dense recurrent map."""
from dataclasses import dataclass

import numpy as np

from models.lstm_cell import QuantizedLSTMCell, QuantizedRNN


@dataclass(frozen=True)
class DenseMap:
    n_in: int
    n_out: int

    @property
    def n_params(self):
        return self.n_in * self.n_out

    macs = n_params

    def describe(self):
        return f"the dense map takes {self.n_in} values"

    def glorot_stddev(self):
        return float(np.sqrt(2.0 / (self.n_in + self.n_out)))


class PkgDenseLSTMCell(QuantizedLSTMCell):
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

    def get_config(self):
        return {**super().get_config(), "n_in": self.n_in}


class PkgDenseLSTM(QuantizedRNN):
    cell_class = PkgDenseLSTMCell
    family = "pkg_dense_lstm"

    @classmethod
    def for_task(cls, n_features, units, n_modes=4, rank=4, **kwargs):
        return cls(units, n_in=n_features, **kwargs)
'''

PLUGIN = '''
"""The hls4ml side: the IR class, its header given by path."""
from pathlib import Path

from fixedpoint import requantize_raw
from hls_project.cost import Memory, Stage
from hls_project.lstm_cell import LSTMFamilyLayer
from hls_project.sizing import exact_cpp, product_sum_type
from pkg_dense_family.layer import PkgDenseLSTM


class PkgDenseLSTMLayer(LSTMFamilyLayer):
    keras_class = PkgDenseLSTM
    headers = (Path(__file__).resolve().parent / "nnet_pkg_dense_lstm.h",)

    @staticmethod
    def input_map_reference(cell, weights, types, frac):
        return lambda x: requantize_raw(x @ weights[0], frac + types.kernel.frac, types.accumulator)

    def input_map_configs(self):
        types = self.lstm_types
        mac_t = exact_cpp(product_sum_type(self.get_attr("n_in"), types.input, types.kernel))
        return f"struct config{self.index}_dense {{ typedef {mac_t} mac_t; }};\\n"

    def input_map_body(self):
        kernel = self.weight_vars("input_map")[0]
        kernel_call = f"nnet::pkg_dense_map<config{self.index}, config{self.index}_dense"
        reader = f"nnet::join_reader<data_T, config{self.index}>"
        return f"        {kernel_call}, {reader}>(frame, h, zx, {kernel});"

    def input_map_stages(self):
        types, n_in, gates = self.lstm_types, self.get_attr("n_in"), 4 * self.get_attr("n_out")
        kernel = Memory("kernel", n_in * gates, types.kernel.width)
        return [Stage("dense input map", n_in, 1, gates, (types.input.width, types.kernel.width), 32, (kernel,))]
'''

HEADER = """
#ifndef NNET_PKG_DENSE_LSTM_H_
#define NNET_PKG_DENSE_LSTM_H_

#include "nnet_lstm_cell.h"

namespace nnet {

// zx = x W (exact sums, rounded once), x read a value at a time by reader_T.
template <class LSTM_T, class DENSE_T, class reader_T, class source_T, class kernel_T>
void pkg_dense_map(source_T &frame, const typename LSTM_T::state_t h[LSTM_T::n_state],
                   typename LSTM_T::accum_t zx[4 * LSTM_T::n_state], const kernel_T kernel[]) {
    typename DENSE_T::mac_t acc[4 * LSTM_T::n_state];
    reader_T reader;
    for (unsigned i = 0; i < LSTM_T::n_in; i++) {
        typename reader_T::value_t x[1];
        reader.read(frame, h, x);
        for (unsigned j = 0; j < 4 * LSTM_T::n_state; j++) {
            acc[j] = (i == 0 ? typename DENSE_T::mac_t(0) : acc[j]) + x[0] * kernel[i * 4 * LSTM_T::n_state + j];
        }
    }
    for (unsigned j = 0; j < 4 * LSTM_T::n_state; j++) {
        zx[j] = acc[j];
    }
}

} // namespace nnet

#endif
"""

RUN = """
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
from conftest import check_csim, quantizers, random_weights

import hls_project
import host
import models
from models.families import discover
from overlay import MissingToolError, build_overlay
from pkg_dense_family.layer import PkgDenseLSTM
from pkg_dense_family.plugin import PkgDenseLSTMLayer

out = Path(sys.argv[1])
assert discover()["pkg_dense_lstm"] is PkgDenseLSTM
assert hls_project.discover()["PkgDenseLSTM"] is PkgDenseLSTMLayer
rng = np.random.default_rng(5)
layer = PkgDenseLSTM.for_task(10, 4, name="pkg", **quantizers("w12"))
inputs = tf.keras.Input((4, 10))
model = tf.keras.Model(inputs, layer(inputs))
random_weights(layer, rng, 0.6)
x = rng.uniform(-1, 1, (16, 4, 10)).astype(np.float32)
model.compile(optimizer="adam", loss="mse")
model.fit(x, rng.uniform(-0.5, 0.5, (16, 4)), epochs=1, verbose=0)
model.save(out / "pkg.h5")
loaded = models.load_model(out / "pkg.h5")
np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
for io_type in ("io_parallel", "io_stream"):
    check_csim(model, layer, x, out / io_type, io_type=io_type)
    assert (out / io_type / "firmware/nnet_utils/nnet_pkg_dense_lstm.h").exists()
try:
    build_overlay(out / "pkg.h5", "pynq-z2", out / "overlay")
except MissingToolError:
    pass
expected, _ = hls_project.execute(layer, x[:5])
with host.open(out / "overlay", backend="emulated") as accelerator:
    emulated = np.stack([accelerator.run_clip(clip)[0] for clip in x[:5]])
np.testing.assert_array_equal(emulated, expected)
print("the package family ran through")
"""


def write_package(folder: Path) -> Path:
    package = folder / "pkg_dense_family"
    package.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(PYPROJECT)
    (package / "__init__.py").write_text("")
    (package / "layer.py").write_text(textwrap.dedent(LAYER))
    (package / "plugin.py").write_text(textwrap.dedent(PLUGIN))
    (package / "nnet_pkg_dense_lstm.h").write_text(HEADER)
    return folder


def test_a_family_package_installed_elsewhere_runs_through_the_whole_flow(tmp_path):
    source = write_package(tmp_path / "source")
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*install, "--target", str(site), str(source)], check=True, capture_output=True, text=True)
    assert not (ROOT / "pkg_dense_family").exists()  # nothing of it in this tree
    (tmp_path / "run.py").write_text(RUN)
    (tmp_path / "out").mkdir()
    path = ":".join(str(p) for p in (site, ROOT, ROOT / "tests"))
    result = subprocess.run(
        [sys.executable, str(tmp_path / "run.py"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": path},
        timeout=840,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the package family ran through" in result.stdout
