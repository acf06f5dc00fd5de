"""``make bench``: the hardware estimate of every family on the UCF11 paper shape, on every board.

For each family (57,600 features -> 4 x 256, the papers' modes and ranks, a QDense(11) head) and
each board: the most parallel LSTM reuse factor whose estimate fits, and at it the estimate (DSP,
BRAM36, LUT, FF, frames/s, latency per frame) and its fraction of the board's physical limit
(``overlay.estimate``). Every figure is an estimate from our schedules, not a tool run; the
published anchors printed below come from ../shared/REFERENCE.md and are labelled published.
Writes ``estimate_boards.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.run import table  # noqa: E402

PAPER = {
    "tt_lstm": ([8, 20, 20, 18], {"tt_ranks": [1, 4, 4, 4, 1]}),
    "ht_lstm": ([8, 20, 20, 18], {"ht_ranks": 4}),
    "fdht_lstm": ([8, 20, 20, 19], {"ht_ranks": 6}),
}
PUBLISHED = [  # ../shared/REFERENCE.md, hardware anchors (published, not ours)
    ("ESE (FPGA 2017)", "XCKU060, 200 MHz: 282 GOPS sparse LSTM, 41 W"),
    ("C-LSTM (FPGA 2018)", "KU060, 200 MHz, 16-bit: up to 18.8x ESE's performance"),
    ("FDHT-LSTM hardware (seeds/000)", "vs TIE on LSTM-UCF: 1.9x throughput, 1.83x energy efficiency"),
]


def paper_classifier(name: str):
    import tensorflow as tf
    from qkeras import QDense, quantized_bits

    from models.families import project_families

    modes, ranks = PAPER[name]
    quantizer = quantized_bits(8, 0, alpha=1)
    layer = project_families()[name](
        256,
        input_modes=modes,
        output_modes=[4, 4, 4, 4],
        kernel_quantizer=quantizer,
        recurrent_quantizer=quantizer,
        bias_quantizer=quantizer,
        input_quantizer=quantized_bits(9, 1, alpha=1),
        state_quantizer=quantized_bits(12, 3, alpha=1),
        **ranks,
    )
    inputs = tf.keras.Input((8, 57_600))
    head = QDense(11, kernel_quantizer=quantizer, bias_quantizer=quantizer)
    return tf.keras.Model(inputs, head(layer(inputs)))


def main(argv=None) -> int:
    import hls_project
    from overlay.build import BOARD_CLOCK_MHZ, BOARDS
    from overlay.estimate import estimate_network, largest_fitting_setting, with_reuse_factor

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="build/bench", help="folder for estimate_boards.json")
    args = parser.parse_args(argv)
    rows, results = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for name in PAPER:
            model = paper_classifier(name)
            for board in BOARDS:
                clock = BOARD_CLOCK_MHZ[board]
                hls_model = hls_project.convert(
                    model,
                    Path(scratch) / f"{name}_{board}",
                    backend="VivadoAccelerator",
                    io_type="io_stream",
                    board=board,
                    clock_period=1000 / clock,
                    echo=lambda message: None,
                )
                reuse_factor = largest_fitting_setting(hls_model, board, clock, 1)
                if reuse_factor is None:
                    rows.append([name, board, "none fits", "", "", "", "", "", "", ""])
                    results.append({"family": name, "board": board, "fits": False})
                    continue
                with_reuse_factor(hls_model, reuse_factor)
                summary = estimate_network(hls_model, board, clock).as_dict()
                total = summary["total"]
                rows.append(
                    [
                        name,
                        board,
                        reuse_factor,
                        total["dsp"],
                        f"{total['bram36']:.1f}",
                        total["lut"],
                        total["ff"],
                        f"{summary['frames_per_s']:,.0f}",
                        f"{summary['latency_us']:,.0f}",
                        f"{summary['fraction_of_limit']:.1%}",
                    ]
                )
                results.append({"family": name, "reuse_factor": reuse_factor, **summary})
    table(
        "Estimate (from our schedules, not a tool run): UCF11 shape + QDense(11), 8 frames per call, "
        "the most parallel LSTM reuse factor that fits",
        ["family", "board", "RF", "DSP", "BRAM36", "LUT", "FF", "frames/s", "us/frame", "of limit"],
        rows,
    )
    table("Published anchors (../shared/REFERENCE.md; not comparable one to one)", ["work", "figure"], PUBLISHED)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "estimate_boards.json").write_text(json.dumps(results, indent=1))
    print(f"\nwritten: {out / 'estimate_boards.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
