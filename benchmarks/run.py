"""``make bench``: accuracy against Keras, sizes, and C-simulation cost, side by side in one run.

1. exactness: our TT-LSTM C-sim vs Keras, and stock hls4ml ``QLSTM`` vs QKeras on the same toy
   (same quantizers, hls4ml's default flow at ``ap_fixed<24,8>``, the narrowest that compiles);
2. sizes (computed, exact): TT-LSTM vs dense LSTM on the UCF11 shape;
3. C-simulation cost measured here: convert + g++ compile + predict, TT-LSTM vs Keras LSTM, at
   the same input size, as ratios. No FPGA resource or latency number is printed: those need
   Vivado HLS (``python -m overlay build`` on a machine with it).
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="build/bench")
    parser.add_argument("--n-in", type=int, default=4096)
    parser.add_argument("--units", type=int, default=64)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
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
