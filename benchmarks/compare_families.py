"""``make bench``: held-out accuracy against parameters for every LSTM family and a dense LSTM.

Same synthetic task, recipe and epochs for every model (``models.train``), several seeds each;
prints a table, writes ``families.json`` and ``families.png`` (accuracy against parameters, log
scale, one point per configuration with the spread over seeds). ``--data FOLDER`` uses a real
data set in the UCF11 layout instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.run import argument_parser, output_folder  # noqa: E402

RANKS = [2, 4]  # inner ranks swept for every registered family


def sweep() -> dict:
    """family -> inner ranks to sweep: every registered family, then the dense baseline (no rank)."""
    from models.families import discover
    from models.train import DENSE_BASELINE

    return {**{family: RANKS for family in discover()}, DENSE_BASELINE: [None]}


def run(args) -> list:
    import tensorflow as tf

    from models.train import build_classifier, fit, load_data

    rows = []
    for family, ranks in sweep().items():
        for rank in ranks:
            accuracies, params = [], None
            for seed in range(args.seeds):
                tf.keras.utils.set_random_seed(seed)
                x, y, x_test, y_test, description = load_data(args.data, args.clips, seed, args.frames, 16, 16, 1)
                classes = len(description["class_names"])
                model = build_classifier(family, x.shape[1], x.shape[2], classes, units=16, rank=rank or 1)
                label = f"{family} r{rank} seed {seed}" if rank else f"{family} seed {seed}"
                accuracies.append(fit(model, x, y, x_test, y_test, args.epochs, 32, 5e-3, label))
                params = model.count_params()
            mean, std = float(np.mean(accuracies)), float(np.std(accuracies))
            rows.append(
                dict(
                    family=family, rank=rank, params=params, accuracy_mean=mean, accuracy_std=std, accuracies=accuracies
                )
            )
    return rows


def plot(rows, path: Path, title: str = "Synthetic video, mean and spread over seeds") -> None:
    from benchmarks.run import save_figure, subplots

    figure, axis = subplots(figsize=(6, 4))
    for family in dict.fromkeys(r["family"] for r in rows):
        points = [r for r in rows if r["family"] == family]
        x, y = [r["params"] for r in points], [r["accuracy_mean"] for r in points]
        axis.errorbar(x, y, yerr=[r["accuracy_std"] for r in points], marker="o", capsize=3, label=family)
    axis.set_xscale("log")
    axis.set_xlabel("parameters (whole classifier)")
    axis.set_ylabel("held-out accuracy")
    axis.set_title(title)
    axis.legend()
    save_figure(figure, path)


def main(argv=None) -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--data", default="synthetic")
    parser.add_argument("--clips", type=int, default=1200)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    out = output_folder(args)
    rows = run(args)
    print(f"\n{'model':>16} {'parameters':>11} {'held-out accuracy':>20}")
    for r in rows:
        name = f"{r['family']} r{r['rank']}" if r["rank"] else r["family"]
        print(f"{name:>16} {r['params']:>11,} {r['accuracy_mean']:>13.3f} ± {r['accuracy_std']:.3f}")
    (out / "families.json").write_text(json.dumps(rows, indent=2) + "\n")
    plot(rows, out / "families.png")
    print(f"written: {out / 'families.json'}, {out / 'families.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
