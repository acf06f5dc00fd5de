"""``make bench``: E-RNN phase I, the block size of a block-circulant LSTM against accuracy and hardware.

On the synthetic video task, one dense LSTM per seed, then for every block size ``k`` (input
matrix; the recurrent matrix takes ``min(k, units)``): ADMM towards block-circulant, hard
projection and fine-tune (``models.admm.compress``, quantization-aware). Per ``k``: held-out
accuracy (mean ± std over seeds), parameters and MACs per frame of the LSTM layer
(``bc_lstm_cost``), and the on-chip memory of the LSTM layer *as estimated* by
``overlay.estimate`` on the model converted by ``hls_project.convert`` for pynq-z2 at the board
clock and ``--reuse-factor`` (weight-vector bits, all the layer's memory bits, BRAM36, LUT). The
estimate comes from our schedules, not from a tool run. Writes ``bc_block_size.json`` and
``bc_block_size.png``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.run import add_admm_arguments, save_results, table, training_command  # noqa: E402

BOARD = "pynq-z2"


def hardware_estimate(model, scratch: Path, reuse_factor: int) -> dict:
    """The LSTM layer's memory and the network's totals from ``overlay.estimate`` (an estimate)."""
    from hls_project.lstm_cell import LSTMFamilyLayer
    from host import boards
    from overlay.estimate import PARTS, convert_for_board, estimate_network, layer_estimate

    clock = boards.board(BOARD).clock_mhz
    hls_model = convert_for_board(model, scratch, BOARD, reuse_factor=reuse_factor, echo=lambda message: None)
    lstm = next(node for node in hls_model.get_layers() if isinstance(node, LSTMFamilyLayer))
    layer = layer_estimate(lstm)
    memories = [memory for stage in layer.stages for memory in stage.memories]
    resources = layer.resources(PARTS[BOARD])
    network = estimate_network(hls_model, BOARD, clock)
    return {
        "estimate": True,
        "board": BOARD,
        "clock_mhz": clock,
        "reuse_factor": reuse_factor,
        "lstm_vector_bits": sum(m.words * m.width for m in memories if m.name.endswith("vectors")),
        "lstm_memory_bits": sum(m.words * m.width for m in memories),
        "lstm_bram36": resources["bram36"],
        "lstm_lut": resources["lut"],
        "network_bram36": network.total()["bram36"],
        "network_dsp": network.total()["dsp"],
        "frames_per_s": network.frames_per_s,
    }


def run(args) -> list:
    import tensorflow as tf
    from qkeras import quantized_bits

    from benchmarks.run import admm_config, dense_baseline
    from models.admm import compress
    from models.bc_lstm import bc_lstm_cost
    from models.train import CLASSIFIER_QUANTIZER, FineTune, quantizer_kwargs

    config = admm_config(args)
    head = quantized_bits(*CLASSIFIER_QUANTIZER, alpha=1)
    accuracies = {k: [] for k in args.block_sizes}
    hardware = {}
    with tempfile.TemporaryDirectory() as scratch:
        for seed in range(args.seeds):
            (x, y, x_test, y_test), _, dense, _ = dense_baseline(args, seed)
            n_features = x.shape[-1]
            for k in args.block_sizes:
                tf.keras.utils.set_random_seed(seed)
                result = compress(
                    dense, x, y, x_test, y_test, k, min(k, args.units), config,
                    FineTune(args.finetune_epochs, quantizer_kwargs(), head), label=f"admm seed {seed}",
                )  # fmt: skip
                accuracies[k].append(result.held_out_accuracy)
                if k not in hardware:  # the structure, not the weights, sets the estimate
                    hardware[k] = hardware_estimate(result.model, Path(scratch) / f"k{k}", args.reuse_factor)
    rows = []
    for k in args.block_sizes:
        cost = bc_lstm_cost(n_features, args.units, k, min(k, args.units))
        rows.append(
            dict(
                block_size=k,
                recurrent_block_size=min(k, args.units),
                lstm_params=cost.params,
                compression=cost.compression,
                macs_per_frame=cost.input_map_macs + cost.recurrent_macs,
                accuracy_mean=float(np.mean(accuracies[k])),
                accuracy_std=float(np.std(accuracies[k])),
                accuracies=accuracies[k],
                hardware_estimate=hardware[k],
            )
        )
    return rows


def plot(rows, path: Path) -> None:
    from benchmarks.run import save_figure, subplots

    ks = [r["block_size"] for r in rows]
    figure, (top, bottom) = subplots(2, 1, figsize=(6, 6), sharex=True)
    top.errorbar(ks, [r["accuracy_mean"] for r in rows], yerr=[r["accuracy_std"] for r in rows], marker="o", capsize=3)
    top.set_ylabel("held-out accuracy")
    top.set_title("Block-circulant LSTM (ADMM + fine-tune), synthetic video")
    bottom.plot(ks, [r["lstm_params"] for r in rows], marker="o", label="LSTM parameters")
    bottom.plot(ks, [r["macs_per_frame"] for r in rows], marker="s", label="MACs per frame")
    bottom.plot(
        ks, [r["hardware_estimate"]["lstm_memory_bits"] / 8 for r in rows], marker="^", label="LSTM memory, bytes (est)"
    )
    bottom.set_xscale("log", base=2)
    bottom.set_yscale("log")
    bottom.set_xlabel("block size k (recurrent: min(k, units))")
    bottom.legend()
    save_figure(figure, path)


def main(argv=None) -> int:
    parser = training_command(__doc__, "bc_block_size.json and .png", "seeds per block size")
    parser.add_argument(
        "--block-sizes",
        type=int,
        nargs="+",
        default=[1, 2, 4, 8, 16],
        help="input block sizes (past --units, padding wastes MACs)",
    )
    add_admm_arguments(parser)
    parser.add_argument("--reuse-factor", type=int, default=16, help="LSTM reuse factor of the hardware estimate")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = run(args)
    table(
        f"Block size exploration (E-RNN phase I), synthetic video, {args.seeds} seeds; memory, BRAM36 and LUT are "
        f"estimates (overlay.estimate, {BOARD}, reuse factor {args.reuse_factor}), not a tool run",
        ["k (in/rec)", "LSTM params", "compression", "MACs/frame", "held-out accuracy", "vector kbit",
         "LSTM memory kbit", "LSTM BRAM36", "LSTM LUT", "net BRAM36"],
        [
            [
                f"{r['block_size']}/{r['recurrent_block_size']}",
                f"{r['lstm_params']:,}",
                f"{r['compression']:.1f}x",
                f"{r['macs_per_frame']:,}",
                f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f}",
                f"{r['hardware_estimate']['lstm_vector_bits'] / 1000:,.1f}",
                f"{r['hardware_estimate']['lstm_memory_bits'] / 1000:,.1f}",
                f"{r['hardware_estimate']['lstm_bram36']:g}",
                f"{r['hardware_estimate']['lstm_lut']:,}",
                f"{r['hardware_estimate']['network_bram36']:g}",
            ]
            for r in rows
        ],
    )  # fmt: skip
    save_results(args, "bc_block_size", {"rows": rows}, lambda path: plot(rows, path), start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
