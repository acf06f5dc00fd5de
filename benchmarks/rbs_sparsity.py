"""``make bench``: row-balanced sparse LSTM (BRDS), dual-ratio against single-ratio pruning at the same memory.

On the synthetic video task, for each seed: a dense LSTM (``--dense-epochs``), then for each
dual-ratio pair ``(input, recurrent)`` of ``--pairs`` and for the single ratio (both matrices
alike) whose memory is the closest to that pair's: gradual row-balanced pruning
(``models.pruning``: ``--steps`` x ``--epochs-per-step`` epochs, ``--hold-epochs`` more), conversion
to ``RowBalancedSparseLSTM`` (``models.train``'s quantizers, QDense head) and ``--finetune-epochs``
of quantization-aware fine-tuning. Memory is the LSTM layer's: ``rbs_lstm_cost(...).memory_bits``
at the quantizers' widths (values and column indices of both matrices, the bias).

For reference (``--reference-seeds`` seeds, 0 to skip): every other registered family at inner
rank ``--rank`` trained from scratch for the same number of epochs (``models.train``'s recipe);
its memory is its input map's, recurrent map's and bias' parameters times the kernel, recurrent
and bias quantizers' bits (no indices). The float dense LSTM is listed with its parameters at the
kernel quantizer's width. Prints the table, writes ``rbs_sparsity.json`` and ``rbs_sparsity.png``
(accuracy against memory).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.run import dense_baseline, save_results, table, training_command  # noqa: E402

DEFAULT_PAIRS = ("0.75/0.95", "0.9/0.5", "0.9/0.95")
SUBJECT = "rbs_lstm"


def pair(text: str) -> tuple:
    """An argparse type: ``input/recurrent`` sparsity ratios, each in [0, 1)."""
    from host.argument_types import sparsity_ratio

    parts = text.split("/")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected input/recurrent ratios such as 0.9/0.5, got {text!r}")
    return tuple(sparsity_ratio(part) for part in parts)


def bits_of(quantizers) -> tuple:
    """``(kernel, recurrent, bias)`` bits of ``quantizers`` (layer keyword arguments)."""
    return tuple(int(quantizers[f"{name}_quantizer"].bits) for name in ("kernel", "recurrent", "bias"))


def matched_single_ratio(memory, n_in, units, quantizers) -> float:
    """The single ratio ``r`` (both matrices; one of ``1 - k / n_in``, an exact input ``nnz``) whose
    memory is the closest to ``memory`` (ties: the smaller ``r``)."""
    from models.pruning import memory_bits

    candidates = [1 - k / n_in for k in range(n_in, 0, -1)]
    return min(candidates, key=lambda r: abs(memory_bits(n_in, units, r, r, quantizers) - memory))


def family_memory_bits(layer, quantizers) -> int:
    """Bits of a family layer's stored weights: input map, recurrent map and bias at the kernel,
    recurrent and bias widths (its cost's parameter counts times the quantizers' bits)."""
    kernel_bits, recurrent_bits, bias_bits = bits_of(quantizers)
    cell = layer.cell
    count = lambda shapes: sum(int(np.prod(shape)) for shape in shapes.values())  # noqa: E731
    recurrent = 0 if cell.fused_recurrent else count(cell.recurrent_map_weight_shapes())
    return count(cell.input_map_weight_shapes()) * kernel_bits + recurrent * recurrent_bits + 4 * cell.units * bias_bits


def run(args) -> tuple:
    import tensorflow as tf
    from qkeras import quantized_bits

    from models.families import project_families
    from models.pruning import PruningConfig, compress, memory_bits
    from models.train import CLASSIFIER_QUANTIZER, DENSE_BASELINE, FineTune, build_classifier, fit, quantizer_kwargs

    quantizers = quantizer_kwargs()
    head = quantized_bits(*CLASSIFIER_QUANTIZER, alpha=1)
    config = PruningConfig(steps=args.steps, epochs_per_step=args.epochs_per_step, hold_epochs=args.hold_epochs)
    budget = args.dense_epochs + config.epochs + args.finetune_epochs
    n_in, units = args.size * args.size, args.units
    configs = []  # (kind, input ratio, recurrent ratio)
    for r_x, r_h in args.pairs:
        single = matched_single_ratio(memory_bits(n_in, units, r_x, r_h, quantizers), n_in, units, quantizers)
        configs += [("dual", r_x, r_h), ("single", single, single)]
    results = {c: {"accuracies": [], "pruned": []} for c in configs}
    references = {}
    dense_accuracies, dense_params = [], None
    for seed in range(args.seeds):
        (x, y, x_test, y_test), classes, dense, dense_accuracy = dense_baseline(args, seed, args.size)
        dense_accuracies.append(dense_accuracy)
        dense_params = dense.get_layer(DENSE_BASELINE).count_params()
        for c in configs:
            kind, r_x, r_h = c
            tf.keras.utils.set_random_seed(seed)
            result = compress(
                dense, x, y, x_test, y_test, r_x, r_h, config, FineTune(args.finetune_epochs, quantizers, head),
                label=f"{kind} seed {seed}",
            )  # fmt: skip
            results[c]["accuracies"].append(result.held_out_accuracy)
            results[c]["pruned"].append(result.pruned_accuracy)
        if seed < args.reference_seeds:
            for family in project_families():
                if family == SUBJECT:
                    continue
                tf.keras.utils.set_random_seed(seed)
                model = build_classifier(family, x.shape[1], n_in, classes, units, rank=args.rank)
                accuracy = fit(model, x, y, x_test, y_test, budget, 32, 5e-3, f"{family} r{args.rank} seed {seed}")
                entry = references.setdefault(family, {"accuracies": []})
                entry["accuracies"].append(accuracy)
                entry["memory_bits"] = family_memory_bits(model.get_layer(family), quantizers)
    rows = []
    for c in configs:
        kind, r_x, r_h = c
        accuracies = results[c]["accuracies"]
        rows.append(
            dict(
                method=f"{kind} ratio",
                input_sparsity=r_x,
                recurrent_sparsity=r_h,
                memory_bits=memory_bits(n_in, units, r_x, r_h, quantizers),
                accuracy_mean=float(np.mean(accuracies)),
                accuracy_std=float(np.std(accuracies)),
                accuracies=accuracies,
                pruned_float_accuracy_mean=float(np.mean(results[c]["pruned"])),
            )
        )
    for family, entry in references.items():
        rows.append(
            dict(
                method=f"{family} r{args.rank} (scratch)",
                input_sparsity=None,
                recurrent_sparsity=None,
                memory_bits=entry["memory_bits"],
                accuracy_mean=float(np.mean(entry["accuracies"])),
                accuracy_std=float(np.std(entry["accuracies"])),
                accuracies=entry["accuracies"],
                pruned_float_accuracy_mean=None,
            )
        )
    dense_row = dict(
        method="dense (float; memory at kernel bits)",
        input_sparsity=0.0,
        recurrent_sparsity=0.0,
        memory_bits=dense_params * bits_of(quantizers)[0],
        accuracy_mean=float(np.mean(dense_accuracies)),
        accuracy_std=float(np.std(dense_accuracies)),
        accuracies=dense_accuracies,
        pruned_float_accuracy_mean=None,
    )
    return rows, dense_row, budget


def plot(rows, dense_row, path: Path) -> None:
    from benchmarks.run import save_figure, subplots

    figure, axis = subplots(figsize=(7, 4.5))
    groups = [("dual ratio", "o"), ("single ratio", "s")]
    for method, marker in groups:
        points = [r for r in rows if r["method"] == method]
        axis.errorbar(
            [r["memory_bits"] for r in points],
            [r["accuracy_mean"] for r in points],
            yerr=[r["accuracy_std"] for r in points],
            marker=marker,
            linestyle="none",
            capsize=3,
            label=f"rbs_lstm, {method}",
        )
        for r in points:
            label = f"{r['input_sparsity']:.3g}/{r['recurrent_sparsity']:.3g}"
            axis.annotate(
                label, (r["memory_bits"], r["accuracy_mean"]), fontsize=7, xytext=(4, 4), textcoords="offset points"
            )
    for r in [r for r in rows if r["input_sparsity"] is None] + [dense_row]:
        axis.errorbar(
            r["memory_bits"], r["accuracy_mean"], yerr=r["accuracy_std"], marker="^", capsize=3, label=r["method"]
        )
    axis.set_xscale("log")
    axis.set_xlabel("LSTM layer memory (bits)")
    axis.set_ylabel("held-out accuracy")
    axis.set_title("Synthetic video: row-balanced pruning, dual vs single ratio")
    axis.legend(fontsize=7)
    save_figure(figure, path)


def main(argv=None) -> int:
    parser = training_command(__doc__, "rbs_sparsity.json and rbs_sparsity.png")
    parser.add_argument(
        "--pairs", type=pair, nargs="+", default=[pair(p) for p in DEFAULT_PAIRS], help="input/recurrent ratios"
    )
    parser.add_argument("--reference-seeds", type=int, default=1, help="seeds of the other families (0: none)")
    parser.add_argument("--rank", type=int, default=4, help="inner rank (block size) of the other families")
    parser.add_argument("--size", type=int, default=16, help="frame height and width")
    parser.add_argument("--dense-epochs", type=int, default=8, help="dense epochs before pruning")
    parser.add_argument("--steps", type=int, default=3, help="pruning steps (mask updates) to the targets")
    parser.add_argument("--epochs-per-step", type=int, default=1, help="epochs between mask updates")
    parser.add_argument("--hold-epochs", type=int, default=1, help="epochs at the targets before conversion")
    parser.add_argument("--finetune-epochs", type=int, default=3, help="epochs of the converted, quantized model")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows, dense_row, budget = run(args)

    def ratios(r):
        return "-" if r["input_sparsity"] is None else f"{r['input_sparsity']:.3f}/{r['recurrent_sparsity']:.3f}"

    table(
        f"Row-balanced sparse LSTM on synthetic video ({args.size}x{args.size} frames, {args.units} units), "
        f"{budget} epochs per model ({args.dense_epochs} dense + {args.steps}x{args.epochs_per_step}+"
        f"{args.hold_epochs} pruning + {args.finetune_epochs} quantized fine-tune), {args.seeds} seeds "
        f"({args.reference_seeds} for the other families), held-out accuracy mean ± std",
        [
            "method",
            "sparsity (input/recurrent)",
            "LSTM memory (bits)",
            "x smaller",
            "held-out accuracy",
            "float pruned",
        ],
        [
            [
                r["method"],
                ratios(r),
                f"{r['memory_bits']:,}",
                f"{dense_row['memory_bits'] / r['memory_bits']:.1f}",
                f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f}",
                "" if r["pruned_float_accuracy_mean"] is None else f"{r['pruned_float_accuracy_mean']:.3f}",
            ]
            for r in [*rows, dense_row]
        ],
    )
    results = {"epochs_per_model": budget, "rows": rows, "dense": dense_row}
    save_results(args, "rbs_sparsity", results, lambda path: plot(rows, dense_row, path), start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
