"""``make bench``: block-circulant LSTM by ADMM (E-RNN) against training from scratch and direct projection.

On the synthetic video task, for each block size (both matrices) and seed, with the same number
of epochs for every method:

- **admm**: a dense LSTM (``--dense-epochs``), ADMM towards block-circulant (``--iterations`` x
  ``--epochs-per-iteration``, ``models.admm``), hard projection, fine-tune (the rest);
- **scratch**: the quantized block-circulant classifier trained from random weights (all epochs);
- **project**: the same dense LSTM projected at once (``bc_project``), then fine-tuned (the rest).

The dense epochs count towards the budget of ``admm`` and ``project`` (a dense epoch is cheaper
than a quantized block-circulant one). All block-circulant models are quantization-aware
(``models.train``'s quantizers, QDense head). Prints held-out accuracy (mean ± std over seeds)
and parameters; writes ``bc_admm.json`` and ``bc_admm.png``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.run import add_admm_arguments, save_results, table, training_command  # noqa: E402

METHODS = ("admm", "scratch", "project")


def run(args) -> list:
    import tensorflow as tf
    from qkeras import quantized_bits

    from benchmarks.run import admm_config, dense_baseline
    from models.admm import compress, hard_projection
    from models.train import CLASSIFIER_QUANTIZER, FineTune, build_classifier, fit, quantizer_kwargs

    admm_epochs = args.iterations * args.epochs_per_iteration
    budget = args.dense_epochs + admm_epochs + args.finetune_epochs
    config = admm_config(args)
    head = quantized_bits(*CLASSIFIER_QUANTIZER, alpha=1)
    results = {(method, k): [] for k in args.block_sizes for method in METHODS}
    params, residuals = {}, {k: [] for k in args.block_sizes}
    dense_accuracies = []
    for seed in range(args.seeds):
        (x, y, x_test, y_test), classes, dense, dense_accuracy = dense_baseline(args, seed)
        n_features = x.shape[-1]
        dense_accuracies.append(dense_accuracy)
        for k in args.block_sizes:
            label = f"k={k} seed {seed}"
            tf.keras.utils.set_random_seed(seed)
            result = compress(
                dense, x, y, x_test, y_test, k, min(k, args.units), config,
                FineTune(args.finetune_epochs, quantizer_kwargs(), head), label=f"admm seed {seed}",
            )  # fmt: skip
            results["admm", k].append(result.held_out_accuracy)
            residuals[k].append(result.run.history[-1]["primal_residual"])
            tf.keras.utils.set_random_seed(seed)
            scratch = build_classifier("bc_lstm", x.shape[1], n_features, classes, args.units, rank=k)
            results["scratch", k].append(fit(scratch, x, y, x_test, y_test, budget, 32, 5e-3, f"scratch {label}"))
            tf.keras.utils.set_random_seed(seed)
            projected, _ = hard_projection(dense, k, min(k, args.units), None, quantizer_kwargs(), head)
            rest = budget - args.dense_epochs
            results["project", k].append(fit(projected, x, y, x_test, y_test, rest, 32, 5e-3, f"project {label}"))
            params[k] = {"admm": result.model.count_params(), "scratch": scratch.count_params()}
            params[k]["project"] = projected.count_params()
    rows = []
    for k in args.block_sizes:
        for method in METHODS:
            accuracies = results[method, k]
            rows.append(
                dict(
                    method=method,
                    block_size=k,
                    recurrent_block_size=min(k, args.units),
                    params=params[k][method],
                    accuracy_mean=float(np.mean(accuracies)),
                    accuracy_std=float(np.std(accuracies)),
                    accuracies=accuracies,
                    final_primal_residual=residuals[k] if method == "admm" else None,
                )
            )
    dense_row = dict(method="dense (float, before compression)", block_size=None, params=dense.count_params())
    dense_row.update(accuracy_mean=float(np.mean(dense_accuracies)), accuracy_std=float(np.std(dense_accuracies)))
    return rows, dense_row, budget


def plot(rows, path: Path) -> None:
    from benchmarks.run import save_figure, subplots

    figure, axis = subplots(figsize=(6, 4))
    for method in METHODS:
        points = [r for r in rows if r["method"] == method]
        axis.errorbar(
            [r["block_size"] for r in points],
            [r["accuracy_mean"] for r in points],
            yerr=[r["accuracy_std"] for r in points],
            marker="o",
            capsize=3,
            label=method,
        )
    axis.set_xscale("log", base=2)
    axis.set_xlabel("block size k")
    axis.set_ylabel("held-out accuracy")
    axis.set_title("Block-circulant LSTM, same epochs: ADMM vs scratch vs projection")
    axis.legend()
    save_figure(figure, path)


def main(argv=None) -> int:
    parser = training_command(__doc__, "bc_admm.json and bc_admm.png")
    parser.add_argument(
        "--block-sizes", type=int, nargs="+", default=[4, 8, 16], help="input block sizes (recurrent: min(k, units))"
    )
    add_admm_arguments(parser, "dense epochs before ADMM / projection")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows, dense_row, budget = run(args)
    table(
        f"Block-circulant LSTM on synthetic video, {budget} epochs per method ({args.dense_epochs} dense + "
        f"{args.iterations}x{args.epochs_per_iteration} ADMM + {args.finetune_epochs} fine-tune for admm), "
        f"{args.seeds} seeds, held-out accuracy mean ± std",
        ["method", "k (input/recurrent)", "parameters", "held-out accuracy", "ADMM final residual"],
        [
            [
                r["method"],
                f"{r['block_size']}/{r['recurrent_block_size']}",
                f"{r['params']:,}",
                f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f}",
                f"{np.mean(r['final_primal_residual']):.3f}" if r["final_primal_residual"] else "",
            ]
            for r in rows
        ]
        + [
            [
                dense_row["method"],
                "-",
                f"{dense_row['params']:,}",
                f"{dense_row['accuracy_mean']:.3f} ± {dense_row['accuracy_std']:.3f}",
                "",
            ]
        ],
    )
    results = {"epochs_per_method": budget, "rows": rows, "dense": dense_row}
    save_results(args, "bc_admm", results, lambda path: plot(rows, path), start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
