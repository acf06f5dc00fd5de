"""Shared helpers: quantizer presets and small models for every LSTM family's tests."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

_KERAS_CHOICE = os.environ.get("TF_USE_LEGACY_KERAS")
from qkeras import quantized_bits  # noqa: E402

# QKeras' import sets TF_USE_LEGACY_KERAS=1 (tensorflow-model-optimization does) after this process
# chose Keras 2.15: put it back, so that xdist workers and the processes tests start (command lines,
# notebook kernels) use the Keras a user's fresh process uses, not tf_keras (which AutoGraph
# converts on every trace: training runs several times slower).
if _KERAS_CHOICE is None:
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
else:
    os.environ["TF_USE_LEGACY_KERAS"] = _KERAS_CHOICE

# name -> (bits, integer) per quantizer; "w8" keeps every type at 8 bits or fewer.
PRESETS = {
    "w8": dict(
        kernel=(8, 1), recurrent=(8, 0), bias=(8, 2), state=(8, 2), input=(8, 1), accumulator=(8, 3), activation=(8, 0)
    ),
    "w12": dict(
        kernel=(10, 0),
        recurrent=(10, 0),
        bias=(10, 2),
        state=(12, 3),
        input=(10, 2),
        accumulator=(12, 4),
        activation=(10, 1),
    ),
    "w16": dict(
        kernel=(16, 2),
        recurrent=(16, 1),
        bias=(16, 4),
        state=(16, 4),
        input=(16, 3),
        accumulator=(14, 4),
        activation=(12, 1),
    ),
}


# "qkeras4": only the four quantizers a QKeras QLSTM takes; the datapath types are derived.
PRESETS["qkeras4"] = {k: v for k, v in PRESETS["w12"].items() if k in ("kernel", "recurrent", "bias", "state")}


def pynq_python() -> Path:
    """The interpreter of the pynq environment (``.venv-pynq``, or ``$PYNQ_PYTHON``), which ``make test`` builds."""
    python = Path(os.environ.get("PYNQ_PYTHON", Path(__file__).parents[1] / ".venv-pynq" / "bin" / "python"))
    assert python.exists(), f"{python} is missing: 'make test' builds the pynq environment"
    return python


def quantizers(preset: str) -> dict:
    """Keyword arguments with one ``quantized_bits`` per quantizer of ``PRESETS[preset]``."""
    return {
        f"{name}_quantizer": quantized_bits(bits, integer, alpha=1) for name, (bits, integer) in PRESETS[preset].items()
    }


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def set_layer_config(path, class_suffix: str, **changes) -> None:
    """Hand-edit a saved ``.h5`` model: ``changes`` into the config of every layer whose class name
    ends with ``class_suffix`` (a file whose weights no longer fit its config)."""
    import json

    import h5py

    with h5py.File(path, "r+") as file:
        config = json.loads(file.attrs["model_config"])
        for layer in config["config"]["layers"]:
            if layer["class_name"].endswith(class_suffix):
                layer["config"].update(changes)
        file.attrs["model_config"] = json.dumps(config)


def random_weights(layer, rng, scale=1.0):
    """Replace a built layer's weights with random values spread over several quantizer steps
    (integer structure weights, e.g. sparse indices, are kept)."""
    layer.set_weights(
        [rng.normal(0.0, scale, w.shape).astype(np.float32) if w.dtype.kind == "f" else w for w in layer.get_weights()]
    )


def small_classifier(frames, stateful=False, preset="w12", classes=3):
    """Input (frames, 24) -> TTLSTM(8) -> QDense(classes): the shape of a deployed model."""
    import tensorflow as tf
    from qkeras import QDense

    import models

    layer = models.TTLSTM(
        8,
        input_modes=[2, 3, 4],
        output_modes=[2, 2, 2],
        tt_ranks=[1, 3, 2, 1],
        stateful=stateful,
        name="tt_lstm",
        **quantizers(preset),
    )
    head_q = quantized_bits(10, 2, alpha=1)
    inputs = tf.keras.Input((frames, 24), batch_size=1 if stateful else None)
    model = tf.keras.Model(inputs, QDense(classes, kernel_quantizer=head_q, bias_quantizer=head_q)(layer(inputs)))
    random_weights(layer, np.random.default_rng(7), 0.6)
    return model


def trained_tiny_dense_classifier() -> tuple:
    """``(model, (x, y, x_test, y_test))``: a dense LSTM classifier (8 units) trained a little on a
    tiny synthetic task (96 clips of 4 frames of 8 x 8 pixels: 64 features), and its data; seconds,
    for the compressions' tests (``models.admm``, ``models.pruning``)."""
    import tensorflow as tf

    from models.train import build_dense_classifier, fit, load_data

    tf.keras.utils.set_random_seed(0)
    x, y, x_test, y_test, description = load_data("synthetic", 96, 0, 4, 8, 8, 1)
    model = build_dense_classifier(4, x.shape[-1], len(description["class_names"]), units=8)
    fit(model, x, y, x_test, y_test, 3, 16, 5e-3, "dense")
    return model, (x, y, x_test, y_test)


def refusal(main, arguments, tmp_path, capsys, before=()) -> str:
    """The message of a command line ``main`` that refuses ``arguments`` (``{tmp}`` is ``tmp_path``,
    which holds a file ``file`` and a folder ``empty``) given after ``before`` and ``--out
    tmp_path/out``: it exits with code 2, no traceback, before any work (no ``out``). Returns the
    last line on stderr."""
    (tmp_path / "file").write_text("")
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main([*before, "--out", str(out), *[argument.format(tmp=tmp_path) for argument in arguments]])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in error and not out.exists(), error
    return error.splitlines()[-1]


def failure(main, arguments, tmp_path, capsys) -> str:
    """The one line on stderr of a command line ``main`` that fails given ``arguments`` and ``--out
    tmp_path/out`` (``tmp_path`` empty before): exit code 2, no traceback, nothing written (no
    ``out``, no staging folder next to it)."""
    code = main([*arguments, "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and "Traceback" not in error[0], error
    assert list(tmp_path.iterdir()) == []
    return error[0]


def qlstm_classifier(x, y, **options):
    """Input (``x``'s frames and features) -> QKeras ``QLSTM(8)`` (8-bit weights, ``options``) ->
    ``QDense`` logits of ``y``'s classes: the QKeras classifier ``models.admm`` and
    ``models.pruning`` take as they take a Keras ``LSTM`` one."""
    import tensorflow as tf
    from qkeras import QLSTM, QDense

    q = quantized_bits(8, 1, alpha=1)
    inputs = tf.keras.Input(x.shape[1:])
    hidden = QLSTM(8, kernel_quantizer=q, recurrent_quantizer=q, bias_quantizer=q, name="qlstm", **options)(inputs)
    return tf.keras.Model(inputs, QDense(int(y.max()) + 1, kernel_quantizer=q, name="head")(hidden))


# A stand-in .hwh with only what ``overlay collect`` checks: XML naming our accelerator top's VLNV in
# a MODULE element, as a Vivado hardware handoff does. Written by the tests, not Vivado output.
STAND_IN_HWH = (
    "<EDKSYSTEM><!-- stand-in written by the tests, not Vivado output --><MODULES>"
    '<MODULE FULLNAME="/hier_0/myproject_axi_0" VLNV="xilinx.com:hls:myproject_axi:1.0"/>'
    "</MODULES></EDKSYSTEM>\n"
)


def run_build(model_path, out, env=None, board="zcu102", *options):
    """``python -m overlay build`` in a subprocess (``env`` None: this process's environment)."""
    import subprocess
    import sys

    command = [
        sys.executable,
        "-m",
        "overlay",
        "build",
        "--model",
        str(model_path),
        "--board",
        board,
        "--out",
        str(out),
    ]
    return subprocess.run([*command, *options], capture_output=True, text=True, env=env)


def tcl_is_complete(path) -> bool:
    """Whether tclsh finds the script at ``path`` complete Tcl (``info complete``)."""
    import subprocess

    check = f'set f [open "{path}"]; set s [read $f]; close $f; if {{![info complete $s]}} {{exit 1}}'
    return subprocess.run(["tclsh"], input=check, text=True).returncode == 0


@pytest.fixture(scope="session")
def overlays(tmp_path_factory):
    """Two overlays built through the CLI without Vivado: whole-clip io_parallel, stateful io_stream."""
    built = {}
    for name, frames, stateful, io_type in [("clip", 6, False, "io_parallel"), ("frames", 1, True, "io_stream")]:
        root = tmp_path_factory.mktemp(name)
        model = small_classifier(frames, stateful)
        model.save(root / "model.h5")
        env = {**os.environ, "PATH": "/usr/bin:/bin"}
        result = run_build(root / "model.h5", root / "overlay", env, "pynq-z2", "--io-type", io_type)
        built[name] = dict(model=model, root=root, overlay=root / "overlay", result=result)
    return built


def family_model(layer_class, steps, input_modes, output_modes, batch_size=None, n_features=None, **kwargs):
    """Input (steps, n_features) -> one family layer; ``n_features`` defaults to prod(input_modes)."""
    import tensorflow as tf

    units = int(np.prod(output_modes))
    layer = layer_class(units, input_modes=input_modes, output_modes=output_modes, **kwargs)
    inputs = tf.keras.Input((steps, n_features or int(np.prod(input_modes))), batch_size=batch_size)
    return tf.keras.Model(inputs, layer(inputs)), layer


def check_csim(model, layer, x, output_dir, keras_lsb=True, **convert_kwargs):
    """Compile the C-sim; assert it equals ``hls_project.execute`` (the NumPy reference) on every
    element and Keras within 1 LSB of the state type. Returns the hls4ml model."""
    import hls_project

    hls_model = hls_project.convert(model, output_dir, **convert_kwargs)
    hls_model.compile()
    expected, _ = hls_project.execute(layer, x)
    csim = np.asarray(hls_model.predict(x)).reshape(expected.shape)
    np.testing.assert_array_equal(csim, expected)
    if keras_lsb:
        assert np.max(np.abs(csim - model.predict(x, verbose=0))) <= layer.cell.fixed_types["state_quantizer"].lsb
    assert np.count_nonzero(csim) > csim.size // 2  # the data exercises the datapath
    return hls_model


class CountedProducts:
    """A number that counts every multiplication it takes part in (for object-array einsum)."""

    count = 0

    def __init__(self, value):
        self.value = value

    def __mul__(self, other):
        CountedProducts.count += 1
        return CountedProducts(self.value * getattr(other, "value", other))

    def __add__(self, other):
        return CountedProducts(self.value + getattr(other, "value", other))

    __rmul__, __radd__ = __mul__, __add__


def counted_products(schedule, contract, core_shapes: dict, n_in: int) -> int:
    """Products a schedule actually performs on one frame: ``contract(step, buffer, core)`` run on
    counting objects (independent of any MAC formula). ``core_shapes``: step -> core shape."""
    start = CountedProducts.count

    def counting(shape):
        return np.array([CountedProducts(1) for _ in range(int(np.prod(shape)))], dtype=object).reshape(shape)

    buffer = counting((1, n_in))
    for step in schedule:
        buffer = contract(step, buffer, counting(core_shapes(step)))
    return CountedProducts.count - start


def warnings_in_our_code(overlay_dir) -> list:
    """The compiler warnings about our C++ (headers, accelerator top, bridge) in an overlay's
    emulator build log; hls4ml's own headers are not ours to fix."""
    from hls_project import HEADERS

    ours = (*(path.name for path in HEADERS.glob("nnet_*.h")), "myproject_axi.cpp", "emulator_bridge.cpp")
    log = (overlay_dir / "hls/emulator/compile.log").read_text()
    assert "-Wall" in log
    return [line for line in log.splitlines() if "warning:" in line and any(name in line for name in ours)]


def check_threaded_testbench(hls_dir) -> dict:
    """Run an overlay's testbench on the threaded C-simulation (``run_threaded_testbench``): it
    passes (every beat equal to the sequential emulator's), consecutive transfers overlap (the
    free-running top takes the next transfer in before the previous one's output has left), and
    each FIFO of the top holds at most its declared depth. Returns ``{(name, depth): largest
    occupancy}`` of the bounded FIFOs."""
    from overlay.axi_wrapper import FIFO_DEPTH
    from overlay.testbench import fifo_occupancy, run_threaded_testbench

    result = run_threaded_testbench(hls_dir)
    assert result.returncode == 0 and "PASS: 5 transfers, 0 mismatches" in result.stdout, result.stderr
    # free-running: each transfer's first value beat went in while the previous one's last beat was held back
    overlaps = [f"overlap: transfer {k} entered before transfer {k - 1} ended: yes" for k in range(1, 5)]
    assert [line for line in result.stdout.splitlines() if line.startswith("overlap:")] == overlaps
    occupancy = fifo_occupancy(result.stdout)
    assert {("x", FIFO_DEPTH), ("y", FIFO_DEPTH), ("status", 2)} <= set(occupancy)
    assert all(1 <= most <= depth for (_, depth), most in occupancy.items()), occupancy
    return occupancy
