"""``python -m benchmarks.stream_frames``: 100,000 frames through ``Accelerator.stream_blocks``.

One long clip through a stateful frame-by-frame overlay (a small TT-LSTM classifier with seeded
weights, built for pynq-z2 without Vivado), ``--block`` calls per transfer, two transfers in
flight, on two backends:

* ``emulated`` (here, in ``.venv``): the accelerator top compiled with g++;
* ``pynq mock-Zynq`` (in ``.venv-pynq``, ``tests/pynq_mock/stream_board.py``): the real pynq
  3.1.2 ``Overlay`` / ``allocate`` / AXI DMA driver on the mock board whose DMA runs the same top.

Every output is compared, in order, with the C-simulation (hls4ml ``compile()`` of the same
model, state kept in the library across the whole clip) by exact equality; a missing, extra or
different output makes the run fail (exit 1). Resident memory (``VmRSS`` of ``/proc/self/status``)
is sampled along the run; host overhead per frame = (wall time - time inside the backend's
``submit``/``collect``) / frames. Prints a table, writes ``stream_frames.json``. These are
host-side timings of emulated hardware on this machine, not FPGA figures.

Importable with NumPy only (the pynq side reuses ``frame_blocks`` and ``measure``).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

N_FEATURES, UNITS, CLASSES = 24, 8, 3
SEED = 2026
PYNQ_PYTHON = Path(os.environ.get("PYNQ_PYTHON", Path(__file__).parents[1] / ".venv-pynq" / "bin" / "python"))


def frame_blocks(n_frames: int, block_frames: int, seed: int = SEED):
    """The benchmark's clip, (n_frames, N_FEATURES) float32 values in [-2, 2), generated block by
    block (the same frames for every backend and the C-sim, never all in memory). float32 because
    the C-sim's ``predict`` takes float32: the host then rounds the very same numbers."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_frames, block_frames):
        yield rng.uniform(-2, 2, (min(block_frames, n_frames - start), N_FEATURES)).astype(np.float32)


def rss_mb() -> float:
    """Resident memory of this process (VmRSS), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(accelerator, reference: np.ndarray, n_frames: int, block: int, progress=None) -> dict:
    """Stream the clip in blocks of ``block`` calls; compare each block's outputs with
    ``reference`` rows in order; sample VmRSS about 50 times. Returns the row of the table."""
    per_call = accelerator.frames_per_call
    blocks = frame_blocks(n_frames, block * per_call)
    accelerator.reset()
    accelerator.stats = type(accelerator.stats)()
    done, mismatched, first_mismatch, samples = 0, 0, None, []
    every = max(1, n_frames // (block * per_call) // 50)
    for index, outputs in enumerate(accelerator.stream_blocks(blocks)):
        outputs = outputs.reshape(len(outputs), -1)
        expected = reference[done : done + len(outputs)]
        if len(expected) != len(outputs) or not np.array_equal(outputs, expected):
            mismatched += 1
            if first_mismatch is None:
                rows = np.flatnonzero(np.any(outputs[: len(expected)] != expected[: len(outputs)], axis=1))
                first_mismatch = done + int(rows[0] if len(rows) else min(len(outputs), len(expected)))
        done += len(outputs)
        if index % every == 0:
            samples.append(rss_mb())
        if progress is not None:
            progress.update(len(outputs) * per_call)
    samples.append(rss_mb())
    stats = accelerator.stats
    p = stats.frame_latency_percentiles((50, 90, 99))
    settled = samples[len(samples) // 10]  # after the first 10% (buffers, caches, imports warmed up)
    return {
        "backend": accelerator.backend.name,
        "frames": stats.total_frames,
        "outputs": done,
        "expected_outputs": len(reference),
        "mismatched_blocks": mismatched,
        "first_mismatched_output": first_mismatch,
        "transfers": len(stats.frames),
        "frames_per_call": per_call,
        "block_calls": block,
        "frames_per_s": stats.frames_per_s,
        "latency_ms": {str(k): v * 1e3 for k, v in p.items()},
        "host_overhead_us_per_frame": stats.host_overhead_per_frame_s * 1e6,
        "rss_mb": {"first": samples[0], "settled": settled, "max": max(samples), "last": samples[-1]},
        "rss_growth_after_settling_mb": max(samples[len(samples) // 10 :]) - settled,
    }


def build(workdir: Path) -> tuple:
    """The benchmark's model (seeded) and its frame-by-frame overlay for pynq-z2 (no Vivado needed)."""
    import tensorflow as tf
    from qkeras import QDense, quantized_bits

    import models
    from overlay.build import MissingToolError, build_overlay

    q = dict(
        kernel_quantizer=quantized_bits(10, 0, alpha=1),
        recurrent_quantizer=quantized_bits(10, 0, alpha=1),
        bias_quantizer=quantized_bits(10, 2, alpha=1),
        state_quantizer=quantized_bits(12, 3, alpha=1),
        input_quantizer=quantized_bits(10, 2, alpha=1),
        accumulator_quantizer=quantized_bits(12, 4, alpha=1),
        activation_quantizer=quantized_bits(10, 1, alpha=1),
    )
    layer = models.TTLSTM(
        UNITS, input_modes=[2, 3, 4], output_modes=[2, 2, 2], tt_ranks=[1, 3, 2, 1], stateful=True, **q
    )
    head_q = quantized_bits(10, 2, alpha=1)
    inputs = tf.keras.Input((1, N_FEATURES), batch_size=1)
    model = tf.keras.Model(inputs, QDense(CLASSES, kernel_quantizer=head_q, bias_quantizer=head_q)(layer(inputs)))
    rng = np.random.default_rng(SEED)
    layer.set_weights([rng.normal(0, 0.6, w.shape).astype(np.float32) for w in layer.get_weights()])
    model.save(workdir / "model.h5")
    try:
        build_overlay(workdir / "model.h5", "pynq-z2", workdir / "overlay", io_type="io_stream")
    except MissingToolError:
        pass  # everything but the bitstream is written: the emulator and the manifest
    return model, workdir / "overlay"


def csim_reference(model, workdir: Path, n_frames: int) -> np.ndarray:
    """(n_frames, CLASSES): the C-simulation of the whole clip, one frame per call, state kept."""
    import hls_project

    hls_model = hls_project.convert(model, workdir / "csim", io_type="io_stream")
    hls_model.compile()
    frames = np.concatenate(list(frame_blocks(n_frames, 10_000)))
    return np.asarray(hls_model.predict(frames.reshape(n_frames, 1, N_FEATURES))).reshape(n_frames, -1)


def pynq_row(overlay: Path, reference: Path, n_frames: int, block: int) -> dict:
    if not PYNQ_PYTHON.exists():
        return {"backend": "pynq mock-Zynq", "error": f"{PYNQ_PYTHON} is missing: run 'make setup-pynq'"}
    script = Path(__file__).parents[1] / "tests" / "pynq_mock" / "stream_board.py"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    command = [str(PYNQ_PYTHON), str(script), str(overlay), str(reference), str(n_frames), str(block)]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        return {"backend": "pynq mock-Zynq", "error": result.stderr[-2000:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_table(rows: list) -> None:
    header = ["backend", "frames", "outputs == C-sim", "transfers", "frames/s", "p50 ms", "p99 ms", "host us/frame"]
    header += ["RSS MB (settled -> max)"]
    lines = [header]
    for r in rows:
        if "error" in r:
            lines.append([r["backend"], "error", r["error"].strip().splitlines()[-1][:60], "", "", "", "", "", ""])
            continue
        equal = "all" if not r["mismatched_blocks"] and r["outputs"] == r["expected_outputs"] else "NO"
        rss = r["rss_mb"]
        lines.append(
            [
                r["backend"],
                f"{r['frames']:,}",
                f"{equal} ({r['outputs']:,})",
                f"{r['transfers']:,}",
                f"{r['frames_per_s']:,.0f}",
                f"{r['latency_ms']['50']:.3f}",
                f"{r['latency_ms']['99']:.3f}",
                f"{r['host_overhead_us_per_frame']:.1f}",
                f"{rss['settled']:.1f} -> {rss['max']:.1f}",
            ]
        )
    widths = [max(len(str(x)) for x in column) for column in zip(*lines, strict=True)]
    for i, line in enumerate(lines):
        print("  " + "  ".join(str(x).rjust(w) for x, w in zip(line, widths, strict=True)))
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))


def main(argv=None) -> int:
    from benchmarks.run import argument_parser, output_folder

    parser = argument_parser(__doc__)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--block", type=int, default=64, help="model calls per DMA transfer (default: 64)")
    args = parser.parse_args(argv)
    from tqdm import tqdm

    import host

    out = output_folder(args)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print("[stream_frames] building the frame-by-frame overlay (emulator; no Vivado)", flush=True)
        model, overlay = build(workdir)
        start = time.perf_counter()
        reference = csim_reference(model, workdir, args.frames)
        print(
            f"[stream_frames] C-simulation of {args.frames:,} frames: {time.perf_counter() - start:.1f} s", flush=True
        )
        np.save(workdir / "reference.npy", reference)
        rows = []
        with host.open(overlay, backend="emulated") as accelerator, tqdm(total=args.frames, desc="emulated") as bar:
            rows.append(measure(accelerator, reference, args.frames, args.block, bar))
        print("[stream_frames] pynq mock-Zynq backend (in .venv-pynq) ...", flush=True)
        rows.append(pynq_row(overlay, workdir / "reference.npy", args.frames, args.block))
    print(f"\n{args.frames:,} frames, {args.block} calls per transfer, two transfers in flight (host-side, emulated):")
    print_table(rows)
    (out / "stream_frames.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"\nwritten: {out / 'stream_frames.json'}")
    ok = all("error" not in r and not r["mismatched_blocks"] and r["outputs"] == r["expected_outputs"] for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
