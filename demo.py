"""``make demo``: the whole flow on the built-in synthetic video, printing where everything went.

1. train a quantized TT-LSTM classifier and a dense LSTM baseline   (python -m models.train)
2. convert the TT model with our hls4ml plugin, compile the C-simulation and compare it with
   Keras and with the NumPy bit-accurate reference on held-out clips
3. make a stateful one-frame-per-call copy and build the pynq-z2 overlay  (python -m overlay build)
   -- without Vivado on PATH this writes the projects and says what to run where Vivado is
4. stream held-out clips through the accelerator (emulated here)    (python -m host.stream)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from host.cli import run_command


def stage(number: int, title: str) -> None:
    print(f"\n=== {number}. {title} ===", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="build")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)
    out = Path(args.out)
    started = time.perf_counter()
    from models.quiet import quiet_imports

    quiet_imports()
    import numpy as np

    import hls_project
    import host
    from host.stream import main as stream_main
    from models import datasets
    from models.train import parse_args, train
    from overlay.build import MissingToolError, build_overlay

    stage(1, "train on synthetic video")
    report = train(parse_args(["--out", str(out / "models"), "--epochs", str(args.epochs)]))
    tt = report["models"]["tt_lstm"]
    dense = report["models"]["dense_lstm"]
    print(
        f"TT-LSTM {tt['held_out_accuracy']:.1%} with {tt['params']:,} parameters; "
        f"dense LSTM {dense['held_out_accuracy']:.1%} with {dense['params']:,}"
    )

    stage(2, "hls4ml conversion and C-simulation vs Keras vs NumPy reference")
    import tensorflow as tf

    import models

    model = models.load_model(tt["path"], compile=False)
    config = datasets.SyntheticVideoConfig(
        **{k: v for k, v in report["dataset"].items() if k in datasets.SyntheticVideoConfig.__dataclass_fields__}
    )
    x, y = datasets.synthetic_video(64, config, seed=config.seed + 1)
    hls_model = hls_project.convert(model, out / "hls_csim")
    hls_model.compile()
    csim = np.asarray(hls_model.predict(np.ascontiguousarray(x))).reshape(len(x), -1)
    keras = model.predict(x, verbose=0)
    lstm = model.get_layer("tt_lstm")
    reference_h, _ = hls_project.execute(lstm, x)
    keras_h = tf.keras.Model(model.input, lstm.output).predict(x, verbose=0)
    lsb = lstm.cell.fixed_types["state_quantizer"].lsb
    print(
        f"TT-LSTM layer: NumPy reference vs Keras max |diff| = {np.max(np.abs(reference_h - keras_h)):.3g} "
        f"(state LSB {lsb:.3g})"
    )
    print(
        f"classifier: C-sim vs Keras max |diff| = {np.max(np.abs(csim - keras)):.3g}, "
        f"same class on {np.mean(csim.argmax(1) == keras.argmax(1)):.0%} of {len(x)} clips, "
        f"C-sim accuracy {np.mean(csim.argmax(1) == y):.0%}"
    )
    print(f"HLS project: {out / 'hls_csim'}")

    stage(3, "frame-by-frame overlay for pynq-z2")
    overlay_dir = out / "overlay"
    try:  # the trained model's stateful one-frame-per-call copy (overlay build --stream)
        build_overlay(tt["path"], "pynq-z2", overlay_dir, stream=True)
    except MissingToolError as err:
        print(f"[overlay] not built here: {err}")

    stage(4, "stream synthetic clips through the accelerator")
    stream_main(["--overlay", str(overlay_dir), "--clips", "3", "--seed", str(config.seed + 1)])
    with host.open(overlay_dir, backend="emulated") as accelerator:
        streamed = np.stack([accelerator.run_clip(clip)[-1] for clip in x[:16]])
    print(f"emulated accelerator vs C-sim on 16 clips: max |diff| = {np.max(np.abs(streamed - csim[:16])):.3g}")

    print(f"\nDone in {time.perf_counter() - started:.0f} s. Outputs:")
    for label, path in [
        ("trained models + report", out / "models"),
        ("C-simulation project", out / "hls_csim"),
        ("overlay (manifest, HLS project, block design, emulator)", overlay_dir),
    ]:
        print(f"  {label}: {path}")
    return 0


if __name__ == "__main__":
    run_command(main, "demo")
