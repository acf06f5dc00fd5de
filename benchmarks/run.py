"""``make bench``: accuracy against Keras, sizes, and C-simulation cost, side by side in one run.

1. exactness: our TT-LSTM C-sim vs Keras, and stock hls4ml ``QLSTM`` vs QKeras on the same toy
   (same quantizers, hls4ml's default flow at ``ap_fixed<24,8>``, the narrowest that compiles);
2. sizes (computed, exact): TT-LSTM vs dense LSTM on the UCF11 shape;
3. C-simulation cost measured here: convert + g++ compile + predict, TT-LSTM vs Keras LSTM, at
   the same input size, as ratios. No FPGA resource or latency number is printed: those need
   Vivado HLS (``python -m overlay build`` on a machine with it).

It also holds what the other benchmarks' ``main`` share: ``table``, the command line
(``argument_parser``, ``training_command``, ``add_admm_arguments``), ``--out`` and the results
(``output_folder``, ``save_results``), the figures (``subplots``, ``save_figure``), and the training
benchmarks' dense LSTM per seed (``dense_baseline``) and ADMM schedule (``admm_config``).
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


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  " + "  ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=True)))


# -- what every benchmark's main shares: its command line, its output folder, its results ----------
OUT = "build/bench"  # where ``make bench`` writes (--out)


def argument_parser(doc: str, outputs: str | None = None, **options) -> argparse.ArgumentParser:
    """A benchmark's command line: the first paragraph of ``doc`` (its module docstring) as the
    description, and ``--out`` (default ``OUT``; ``outputs``: what it writes there). ``options``
    go to ``argparse.ArgumentParser`` (a ``description`` of their own wins)."""
    parser = argparse.ArgumentParser(**{"description": doc.split("\n\n")[0], **options})
    parser.add_argument("--out", default=OUT, help=f"folder for {outputs}" if outputs else None)
    return parser


def output_folder(args) -> Path:
    """``--out``, made if missing."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def save_results(args, name: str, results: dict, plot, start: float | None = None) -> None:
    """``OUT/<name>.json`` (``results`` after ``settings``: every argument but ``--out``) and
    ``OUT/<name>.png`` (``plot(path)``); prints both, and the seconds since ``start`` when given."""
    out = output_folder(args)
    settings = {key: value for key, value in vars(args).items() if key != "out"}
    (out / f"{name}.json").write_text(json.dumps({"settings": settings, **results}, indent=2) + "\n")
    plot(out / f"{name}.png")
    elapsed = "" if start is None else f" ({time.perf_counter() - start:.0f} s)"
    print(f"written: {out / f'{name}.json'}, {out / f'{name}.png'}{elapsed}")


def subplots(*args, **kwargs):
    """``matplotlib.pyplot.subplots`` on the Agg backend (files only, no display): ``(figure, axes)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(figure, path: Path) -> None:
    """``figure`` laid out tight, written to ``path`` at 120 dpi."""
    figure.tight_layout()
    figure.savefig(path, dpi=120)


# -- the benchmarks that train on synthetic video: a dense LSTM per seed, then compressed ones -----
def training_command(doc: str, outputs: str, seeds: str = "seeds per configuration") -> argparse.ArgumentParser:
    """The start of a training benchmark's ``main``: TensorFlow's and QKeras' import messages off
    (``models.quiet``) and the warning of heads built from a Dense's config ignored
    (``models.classifier_surgery.INITIALIZER_WARNING``); returns ``argument_parser(doc, outputs)`` with the
    synthetic task's ``--seeds`` (help ``seeds``), ``--clips``, ``--frames`` and ``--units``."""
    import warnings

    from models.classifier_surgery import INITIALIZER_WARNING
    from models.quiet import quiet_imports

    quiet_imports()
    warnings.filterwarnings("ignore", message=INITIALIZER_WARNING)
    parser = argument_parser(doc, outputs)
    parser.add_argument("--seeds", type=int, default=2, help=seeds)
    parser.add_argument("--clips", type=int, default=800, help="synthetic clips (train + held-out)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--units", type=int, default=16, help="LSTM hidden units")
    return parser


def add_admm_arguments(parser, dense_epochs: str = "dense epochs before ADMM") -> None:
    """The dense epochs (help ``dense_epochs``) and ADMM's schedule (``admm_config``)."""
    parser.add_argument("--dense-epochs", type=int, default=5, help=dense_epochs)
    parser.add_argument("--iterations", type=int, default=4, help="ADMM iterations")
    parser.add_argument("--epochs-per-iteration", type=int, default=1, help="epochs between ADMM updates")
    parser.add_argument("--finetune-epochs", type=int, default=6, help="epochs after ADMM's hard projection")
    parser.add_argument("--rho", type=float, default=0.005, help="ADMM's first penalty")
    parser.add_argument("--rho-growth", type=float, default=3.0, help="rho's factor per iteration")


def admm_config(args):
    """``models.admm.ADMMConfig`` of ``add_admm_arguments``' options."""
    from models.admm import ADMMConfig

    return ADMMConfig(
        iterations=args.iterations,
        epochs_per_iteration=args.epochs_per_iteration,
        rho=args.rho,
        rho_growth=args.rho_growth,
    )


def dense_baseline(args, seed: int, size: int = 16) -> tuple:
    """The synthetic split of ``seed`` (``size`` x ``size`` grey frames) and a dense LSTM classifier
    trained on it for ``--dense-epochs`` (seeded): ``((x, y, x_test, y_test), classes, model,
    held-out accuracy)``."""
    import tensorflow as tf

    from models.train import build_dense_classifier, fit, load_data

    x, y, x_test, y_test, description = load_data("synthetic", args.clips, seed, args.frames, size, size, 1)
    classes = len(description["class_names"])
    tf.keras.utils.set_random_seed(seed)
    dense = build_dense_classifier(x.shape[1], x.shape[-1], classes, args.units)
    accuracy = fit(dense, x, y, x_test, y_test, args.dense_epochs, 32, 5e-3, f"dense seed {seed}")
    return (x, y, x_test, y_test), classes, dense, accuracy


# -- make bench's own part ----------------------------------------------------------------------
def toy_quantizers():
    """The weight quantizers both layers share (stock hls4ml fails to compile a QLSTM that also
    has a state_quantizer: its accumulator type then mismatches in nnet_recurrent.h)."""
    from qkeras import quantized_bits

    return dict(
        kernel_quantizer=quantized_bits(8, 0, alpha=1),
        recurrent_quantizer=quantized_bits(8, 0, alpha=1),
        bias_quantizer=quantized_bits(8, 0, alpha=1),
    )


def exactness(workdir: Path) -> list:
    import hls4ml
    import tensorflow as tf
    from qkeras import QLSTM, quantized_bits

    import hls_project
    import models

    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, 8, 24)).astype(np.float32)
    ours = models.TTLSTM(
        8,
        input_modes=[2, 3, 4],
        output_modes=[2, 2, 2],
        tt_ranks=[1, 3, 2, 1],
        **toy_quantizers(),
        state_quantizer=quantized_bits(12, 3, alpha=1),
        input_quantizer=quantized_bits(10, 1, alpha=1),
        accumulator_quantizer=quantized_bits(16, 5, alpha=1),
        activation_quantizer=quantized_bits(10, 0, alpha=1),
    )
    stock = QLSTM(8, activation="tanh", recurrent_activation="sigmoid", **toy_quantizers())
    rows = []
    for name, layer in [("TTLSTM (ours)", ours), ("QLSTM (stock hls4ml)", stock)]:
        model = tf.keras.Sequential([tf.keras.Input((8, 24)), layer])
        keras = model.predict(x, verbose=0)
        if name.startswith("TT"):
            hls_model = hls_project.convert(model, workdir / "tt")
        else:
            config = hls4ml.utils.config_from_keras_model(model, granularity="name", default_precision="ap_fixed<24,8>")
            hls_model = hls4ml.converters.convert_from_keras_model(
                model, hls_config=config, output_dir=str(workdir / "q")
            )
        hls_model.compile()
        diff = np.abs(np.asarray(hls_model.predict(x)).reshape(keras.shape) - keras)
        rows.append(dict(layer=name, max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean())))
    table(
        "C-sim vs Keras, 64 clips x 8 frames",
        ["layer", "max |diff|", "mean |diff|"],
        [[r["layer"], f"{r['max_abs_diff']:.4g}", f"{r['mean_abs_diff']:.4g}"] for r in rows],
    )
    return rows


def sizes() -> list:
    from models.tt_lstm import tt_lstm_cost

    cost = tt_lstm_cost([8, 20, 20, 18], [4, 4, 4, 4], [1, 4, 4, 4, 1])
    rows = [
        dict(model="dense LSTM 57600->256", params=cost.dense_params, input_macs=cost.dense_input_map_params),
        dict(model="TT-LSTM ranks 4", params=cost.params, input_macs=cost.input_map_macs),
    ]
    table(
        "Sizes (computed, UCF11 shape)",
        ["model", "parameters", "input-map MACs/frame"],
        [[r["model"], f"{r['params']:,}", f"{r['input_macs']:,}"] for r in rows],
    )
    print(
        f"  compression {cost.compression:.1f}x parameters, "
        f"{cost.dense_input_map_params / cost.input_map_macs:.1f}x input-map MACs"
    )
    return rows


def csim_cost(workdir: Path, n_in: int, units: int) -> list:
    import hls4ml
    import tensorflow as tf

    import hls_project
    from models.train import build_tt_classifier

    x = np.random.default_rng(1).uniform(0, 1, (16, 4, n_in)).astype(np.float32)
    tt = build_tt_classifier(4, n_in, 4, units=units).layers[1]
    tt_model = tf.keras.Sequential([tf.keras.Input((4, n_in)), tt])
    dense_model = tf.keras.Sequential([tf.keras.Input((4, n_in)), tf.keras.layers.LSTM(units)])
    rows = []
    for name, model in [("TT-LSTM", tt_model), ("LSTM (stock hls4ml)", dense_model)]:

        def convert(model=model, name=name):
            if name == "TT-LSTM":
                return hls_project.convert(model, workdir / f"cost_{name}")
            config = hls4ml.utils.config_from_keras_model(model, granularity="name", default_precision="ap_fixed<24,8>")
            return hls4ml.converters.convert_from_keras_model(
                model, hls_config=config, output_dir=str(workdir / "cost_dense")
            )

        hls_model, t_convert = timed(convert)
        _, t_compile = timed(hls_model.compile)
        _, t_predict = timed(lambda m=hls_model: m.predict(x))
        weights_bytes = sum(
            p.stat().st_size for p in Path(hls_model.config.get_output_dir()).glob("firmware/weights/*")
        )
        rows.append(
            dict(
                model=name,
                convert_s=t_convert,
                compile_s=t_compile,
                predict_s=t_predict,
                weight_files_bytes=weights_bytes,
            )
        )
    base = rows[1]
    header = ["model", "convert s", "compile s", "predict s", "weight files", "compile ratio"]
    cells = [
        [
            r["model"],
            f"{r['convert_s']:.1f}",
            f"{r['compile_s']:.1f}",
            f"{r['predict_s']:.2f}",
            f"{r['weight_files_bytes'] / 1e6:.2f} MB",
            f"{r['compile_s'] / base['compile_s']:.2f}",
        ]
        for r in rows
    ]
    table(f"C-simulation cost, {n_in}->{units}, 16 clips x 4 frames (measured here)", header, cells)
    return rows


def main(argv=None) -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--n-in", type=int, default=4096)
    parser.add_argument("--units", type=int, default=64)
    args = parser.parse_args(argv)
    out = output_folder(args)
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            "exactness": exactness(Path(tmp)),
            "sizes": sizes(),
            "csim_cost": csim_cost(Path(tmp), args.n_in, args.units),
        }
    (out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten: {out / 'bench.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
