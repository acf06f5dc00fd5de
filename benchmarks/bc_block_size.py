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

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.run import table  # noqa: E402

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

    from models.admm import ADMMConfig, compress
    from models.bc_lstm import bc_lstm_cost
    from models.train import CLASSIFIER_QUANTIZER, build_dense_classifier, fit, load_data, quantizer_kwargs

    config = ADMMConfig(
        iterations=args.iterations,
        epochs_per_iteration=args.epochs_per_iteration,
        rho=args.rho,
        rho_growth=args.rho_growth,
    )
    head = quantized_bits(*CLASSIFIER_QUANTIZER, alpha=1)
    accuracies = {k: [] for k in args.block_sizes}
    hardware = {}
    with tempfile.TemporaryDirectory() as scratch:
        for seed in range(args.seeds):
            x, y, x_test, y_test, description = load_data("synthetic", args.clips, seed, args.frames, 16, 16, 1)
            classes, n_features = len(description["class_names"]), x.shape[-1]
            tf.keras.utils.set_random_seed(seed)
            dense = build_dense_classifier(x.shape[1], n_features, classes, args.units)
            fit(dense, x, y, x_test, y_test, args.dense_epochs, 32, 5e-3, f"dense seed {seed}")
            for k in args.block_sizes:
                tf.keras.utils.set_random_seed(seed)
                result = compress(
                    dense, x, y, x_test, y_test, k, min(k, args.units), config, args.finetune_epochs,
                    quantizer_kwargs(), head, label=f"admm seed {seed}",
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [r["block_size"] for r in rows]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(6, 6), sharex=True)
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
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv=None) -> int:
    import warnings

    from models.admm import INITIALIZER_WARNING
    from models.quiet import quiet_imports

    quiet_imports()
    warnings.filterwarnings("ignore", message=INITIALIZER_WARNING)  # heads built from a Dense's config
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="build/bench", help="folder for bc_block_size.json and .png")
    parser.add_argument(
        "--block-sizes",
        type=int,
        nargs="+",
        default=[1, 2, 4, 8, 16],
        help="input block sizes (past --units, padding wastes MACs)",
    )
    parser.add_argument("--seeds", type=int, default=2, help="seeds per block size")
    parser.add_argument("--clips", type=int, default=800, help="synthetic clips (train + held-out)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--units", type=int, default=16, help="LSTM hidden units")
    parser.add_argument("--dense-epochs", type=int, default=5, help="dense epochs before ADMM")
    parser.add_argument("--iterations", type=int, default=4, help="ADMM iterations")
    parser.add_argument("--epochs-per-iteration", type=int, default=1, help="epochs between ADMM updates")
    parser.add_argument("--finetune-epochs", type=int, default=6, help="epochs after the hard projection")
    parser.add_argument("--rho", type=float, default=0.005, help="ADMM's first penalty")
    parser.add_argument("--rho-growth", type=float, default=3.0, help="rho's factor per iteration")
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
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {key: value for key, value in vars(args).items() if key != "out"}
    (out / "bc_block_size.json").write_text(json.dumps({"settings": settings, "rows": rows}, indent=2) + "\n")
    plot(rows, out / "bc_block_size.png")
    print(f"written: {out / 'bc_block_size.json'}, {out / 'bc_block_size.png'} ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
