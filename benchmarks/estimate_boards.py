"""``make bench``: the hardware estimate of every family on the UCF11 paper shape, on every board.

For each family (57,600 features -> 4 x 256, the papers' modes and ranks; block-circulant at
block size 256, recurrent 16; row-balanced sparse at 99.9% / 90%; a QDense(11) head) and
each board: the folding pass's fastest design within the margin (``overlay.folding``: a reuse
factor per stage) and at it the estimate (DSP, BRAM36, LUT, frames/s, latency per frame, the
bottleneck) as a share of the board's compute, I/O and recurrence limits (``overlay.estimate``),
next to the most parallel uniform reuse factor that fits and its frames/s. Every figure is an
estimate from our schedules, not a tool run; the published anchors printed below come from
../shared/REFERENCE.md and are labelled published. Then the calibration: our estimate of the
stock layers (Dense + activation) behind hls4ml's own Vivado / Vitis synthesis baselines (real
tool results, tests/data/hls4ml_reports), with the error per resource. Writes
``estimate_boards.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.run import argument_parser, output_folder, table  # noqa: E402

PAPER = {  # constructor arguments after units=256 (57,600 features per frame)
    "tt_lstm": dict(input_modes=[8, 20, 20, 18], output_modes=[4, 4, 4, 4], tt_ranks=[1, 4, 4, 4, 1]),
    "ht_lstm": dict(input_modes=[8, 20, 20, 18], output_modes=[4, 4, 4, 4], ht_ranks=4),
    "fdht_lstm": dict(input_modes=[8, 19, 20, 20], output_modes=[4, 4, 4, 4], ht_ranks=6),
    "bc_lstm": dict(block_size=256, recurrent_block_size=16),
    "rbs_lstm": dict(input_sparsity=0.999, recurrent_sparsity=0.9),
}
PUBLISHED = [  # ../shared/REFERENCE.md, hardware anchors (published, not ours)
    ("ESE (FPGA 2017)", "XCKU060, 200 MHz: 282 GOPS sparse LSTM, 41 W"),
    ("C-LSTM (FPGA 2018)", "KU060, 200 MHz, 16-bit: up to 18.8x ESE's performance"),
    ("FDHT-LSTM hardware (seeds/000)", "vs TIE on LSTM-UCF: 1.9x throughput, 1.83x energy efficiency"),
]


def lstm_quantizers(weights: tuple, inputs: tuple, state: tuple) -> dict:
    """A family layer's quantizer arguments from ``(bits, integer bits)`` of its weights (kernel,
    recurrent, bias), its input and its state."""
    from qkeras import quantized_bits

    weight = quantized_bits(*weights, alpha=1)
    return dict(
        kernel_quantizer=weight,
        recurrent_quantizer=weight,
        bias_quantizer=weight,
        input_quantizer=quantized_bits(*inputs, alpha=1),
        state_quantizer=quantized_bits(*state, alpha=1),
    )


def paper_classifier(name: str):
    import tensorflow as tf
    from qkeras import QDense

    from models.families import project_families

    quantizers = lstm_quantizers((8, 0), (9, 1), (12, 3))
    layer = project_families()[name](256, **PAPER[name], **quantizers)
    inputs = tf.keras.Input((8, 57_600))
    weight = quantizers["kernel_quantizer"]
    head = QDense(11, kernel_quantizer=weight, bias_quantizer=weight)
    return tf.keras.Model(inputs, head(layer(inputs)))


BASELINES = Path(__file__).resolve().parent.parent / "tests/data/hls4ml_reports/baselines"
# hls4ml's test_keras_api models behind its synthesis baselines (its test/pytest/test_keras_api.py):
# test_dense: Dense(2) on 1 input + ELU; test_activations: Dense(64) on 1 input + the activation.
BASELINE_NAME = r"test_keras_api_(test_dense|test_activations)_(io_\w+?)-(Vivado|Vitis)(?:-(\w+))?"
BASELINE_MODELS = {
    "test_dense": (2, "elu"),
    "test_activations": (64, None),  # the activation is the file name's last part
}


def baseline_model(test: str, activation_name: str | None):
    import tensorflow as tf

    units, fixed = BASELINE_MODELS[test]
    name = fixed or activation_name
    activation = {
        "relu": tf.keras.layers.Activation("relu"),
        "sigmoid": tf.keras.layers.Activation("sigmoid"),
        "elu": tf.keras.layers.ELU(alpha=1.0),
        "leaky_relu": tf.keras.layers.LeakyReLU(alpha=1.0),
        "prelu": tf.keras.layers.PReLU(alpha_initializer="zeros"),
    }[name]
    return tf.keras.Sequential([tf.keras.Input((1,)), tf.keras.layers.Dense(units, name="Dense"), activation])


def calibration(scratch: Path) -> list:
    """Our estimate of the stock layers behind each of hls4ml's Vivado / Vitis synthesis baselines
    of a Dense model (the layer our classifier heads use), next to the tool's figures."""
    import re

    import hls4ml

    from hls_project.cost import Part
    from overlay.estimate import PARTS, layer_estimate, relative_errors, total_resources

    part: Part = PARTS["alveo-u250"]  # the baselines' part: 12,288 DSP available
    results = []
    for path in sorted(BASELINES.glob("Vi*/*/*.json")):
        match = re.fullmatch(
            r"test_keras_api_(test_dense|test_activations)_(io_\w+?)-(Vivado|Vitis)(?:-(\w+))?", path.stem
        )
        if not match:
            continue
        test, io_type, backend, activation = match.groups()
        model = baseline_model(test, activation)
        hls_model = hls4ml.converters.convert_from_keras_model(
            model,
            hls_config=hls4ml.utils.config_from_keras_model(model),
            output_dir=str(scratch / path.stem),
            backend=backend,
            io_type=io_type,
        )
        layers = [estimate for node in hls_model.get_layers() if (estimate := layer_estimate(node)) is not None]
        ours = total_resources(layers, part)
        ours["bram18"] = ours.pop("bram36") * 2
        report = json.loads(path.read_text())["CSynthesisReport"]
        tool = {
            "dsp": int(report["DSP"]),
            "bram18": int(report["BRAM_18K"]),
            "ff": int(report["FF"]),
            "lut": int(report["LUT"]),
        }
        errors = relative_errors(tool, ours)
        results.append({"baseline": str(path.relative_to(BASELINES)), "tool": tool, "estimate": ours, "error": errors})
    return results


def short_folding(folding: dict) -> str:
    """A layer's folding as ``stage:RF`` pairs, the stage names shortened."""
    short = {"recurrent map": "rec", "state update": "state", "input map": "in"}
    return " ".join(f"{short.get(stage, stage.replace('step ', 's'))}:{factor}" for stage, factor in folding.items())


TVLSI = ("Wang et al. TVLSI 2017 (seeds/002)", 1.71)  # us per step of their 512 x 512 LSTM (ASIC, 90 nm)
TVLSI_BOARD = "zcu102"


def tvlsi_model():
    """The 512 x 512 block-circulant LSTM of Wang et al. (TVLSI 2017): 512 inputs, 512 units,
    blocks of 32 in both maps, 16-bit weights, input and state; one frame per call."""
    import tensorflow as tf

    from models.bc_lstm import BlockCirculantLSTM

    quantizers = lstm_quantizers((16, 0), (16, 3), (16, 3))
    layer = BlockCirculantLSTM(512, block_size=32, recurrent_block_size=32, **quantizers)
    inputs = tf.keras.Input((1, 512))
    return tf.keras.Model(inputs, layer(inputs))


def tvlsi_row(scratch: Path) -> tuple:
    """Our estimate of that LSTM on ``TVLSI_BOARD`` (the folding pass's fastest design that fits):
    the LSTM layer's latency per frame (one frame per call) next to the published ASIC's."""
    from host import boards
    from overlay.estimate import convert_for_board, estimate_network
    from overlay.folding import fold, with_folding

    clock = boards.board(TVLSI_BOARD).clock_mhz
    hls_model = convert_for_board(tvlsi_model(), scratch / "tvlsi", TVLSI_BOARD, echo=lambda message: None)
    result = fold(hls_model, TVLSI_BOARD, clock)
    with_folding(hls_model, result.folding)
    summary = estimate_network(hls_model, TVLSI_BOARD, clock).as_dict()
    lstm = next(layer for layer in summary["layers"] if layer["folding"])
    latency = lstm["cycles_per_call"] / clock
    row = [
        f"512 x 512, block 32, 16 bit ({TVLSI_BOARD}, {clock:g} MHz)",
        short_folding(lstm["folding"]),
        lstm["dsp"],
        f"{lstm['bram36']:.1f}",
        f"{latency:,.2f}",
        f"{TVLSI[1]:.2f}",
        f"{latency / TVLSI[1]:.1f}x",
    ]
    record = {"estimate": True, "published": {"work": TVLSI[0], "us_per_frame": TVLSI[1]}, "lstm_us_per_frame": latency}
    return row, {**record, "fits": result.fits, **summary}


def board_rows(name: str, model, board: str, scratch: Path) -> tuple:
    """One family on one board: the folding pass's design (the fastest that fits the margin) next to
    the most parallel uniform reuse factor that fits; ``(table row, JSON record)``."""
    from host import boards
    from overlay.estimate import convert_for_board, estimate_network, largest_fitting_setting, with_reuse_factor
    from overlay.folding import fold, with_folding

    clock = boards.board(board).clock_mhz
    hls_model = convert_for_board(model, scratch / f"{name}_{board}", board, echo=lambda message: None)
    uniform = largest_fitting_setting(hls_model, board, clock, 1)
    uniform_fps = None
    if uniform is not None:
        with_reuse_factor(hls_model, uniform)
        uniform_fps = estimate_network(hls_model, board, clock).frames_per_s
    result = fold(hls_model, board, clock)
    if not result.fits:
        return [name, board, "none fits", *[""] * 8], {"family": name, "board": board, "fits": False}
    with_folding(hls_model, result.folding)
    summary = estimate_network(hls_model, board, clock).as_dict()
    total, limits, fps = summary["total"], summary["limit_frames_per_s"], summary["frames_per_s"]
    lstm = next(layer for layer in summary["layers"] if layer["folding"])
    row = [
        name,
        board,
        short_folding(lstm["folding"]),
        total["dsp"],
        f"{total['bram36']:.1f}",
        total["lut"],
        f"{fps:,.0f}",
        f"{uniform} / {uniform_fps:,.0f}" if uniform else "none fits",
        " ".join(f"{key[:3]} {fps / value:.0%}" for key, value in limits.items()),
        summary["bottleneck"],
        f"{summary['latency_us']:,.0f}",
    ]
    record = {"family": name, "uniform_reuse_factor": uniform, "uniform_frames_per_s": uniform_fps, **summary}
    return row, record


def main(argv=None) -> int:
    from host import boards

    parser = argument_parser(__doc__, "estimate_boards.json", description=__doc__)
    args = parser.parse_args(argv)
    rows, results = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for name in PAPER:
            model = paper_classifier(name)
            for board in boards.BOARDS:
                row, record = board_rows(name, model, board, Path(scratch))
                rows.append(row)
                results.append(record)
    table(
        "Estimate (from our schedules, not a tool run): UCF11 shape + QDense(11), 8 frames per call; the folding "
        "pass's fastest design within the margin (reuse factor per stage) next to the most parallel uniform reuse "
        "factor that fits; frames/s as a share of the compute, I/O and recurrence limits",
        [
            "family",
            "board",
            "folding",
            "DSP",
            "BRAM36",
            "LUT",
            "frames/s",
            "uniform RF / fps",
            "of limits",
            "bottleneck",
            "us/frame",
        ],
        rows,
    )
    with tempfile.TemporaryDirectory() as scratch:
        tvlsi, tvlsi_record = tvlsi_row(Path(scratch))
    table(
        f"Estimate vs {TVLSI[0]}'s ASIC (TSMC 90 nm, published): the LSTM layer's latency per frame, one "
        "frame per call, the folding pass's fastest design (not comparable one to one: a 90 nm ASIC at its own "
        "clock against an FPGA estimate)",
        ["LSTM", "folding", "DSP", "BRAM36", "us/frame (estimate)", "us/frame (ASIC)", "ratio"],
        [tvlsi],
    )
    with tempfile.TemporaryDirectory() as scratch:
        calibrated = calibration(Path(scratch))
    shown = lambda error: "n/a" if error is None else f"{error:+.0%}"  # noqa: E731
    table(
        "Calibration: our estimate of hls4ml's stock layers vs hls4ml's own synthesis baselines "
        "(tests/data/hls4ml_reports; error = (tool - estimate) / tool; a figure, not a threshold)",
        [
            "baseline",
            "DSP tool/est",
            "BRAM18 tool/est",
            "FF tool/est",
            "LUT tool/est",
            "DSP err",
            "BRAM err",
            "FF err",
            "LUT err",
        ],
        [
            [
                row["baseline"].replace("test_keras_api_", ""),
                *(f"{row['tool'][k]}/{row['estimate'][k]:g}" for k in ("dsp", "bram18", "ff", "lut")),
                *(shown(row["error"][k]) for k in ("dsp", "bram18", "ff", "lut")),
            ]
            for row in calibrated
        ],
    )
    table("Published anchors (../shared/REFERENCE.md; not comparable one to one)", ["work", "figure"], PUBLISHED)
    out = output_folder(args)
    written = {"boards": results, "tvlsi": tvlsi_record, "calibration": calibrated}
    (out / "estimate_boards.json").write_text(json.dumps(written, indent=1))
    print(f"\nwritten: {out / 'estimate_boards.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
