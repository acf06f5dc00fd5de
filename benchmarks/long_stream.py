"""Long streams: a stateful layer of every family, frame by frame, for 100,000 frames.

Each family's one-frame stateful layer (``models.train.build_classifier(..., stateful=True)``, the
training quantizers, the small task shape below) is converted with its reset port
(``convert(..., reset_port=True)``, as ``overlay build`` does) and compiled; the whole stream goes
through the C-simulation in one ``predict`` (the library keeps ``(h, c)`` from call to call), the
reset bit set on the first frame of every clip. Clips have mixed lengths (1 frame to a few
thousand) and mixed content (noise reaching beyond the input type, and constant frames that drive
the state to its fixed point or its rails). The NumPy reference runs every clip from a zero state
(``hls_project.execute`` on a non-stateful copy), so any drift, silent divergence at a rail or
state leaking across a reset shows as a frame that differs. Reported per family: frames equal
(all of them, or the first that is not), how many values of ``c`` and ``h`` saturated (counted by
``hls_project.profile`` on the reference: a saturation the C-sim also does, bit for bit, so not
silent), and the time of each side (measured here).

``python -m benchmarks.long_stream [--frames 100000] [--out build/bench]`` prints a table and
writes ``long_stream.json``. ``tests/test_long_stream.py`` runs the same functions on a few
hundred frames per family.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

N_FEATURES, UNITS, N_MODES, RANK = 24, 8, 3, 2  # the task shape of tests/test_lstm_cell.py
CLIP_LENGTHS = (1, 2, 7, 30, 100, 1000, 5000)


def stream_model(family: str, quantizers=None, seed: int = 0, weight_scale: float = 1.0):
    """``(model, layer)``: input (1 frame, ``N_FEATURES``), batch 1 -> the family's stateful layer.

    ``quantizers``: ``{name: (bits, integer)}`` (default: ``models.train``'s); Keras' initial
    weights (seeded) times ``weight_scale`` (index weights kept)."""
    import tensorflow as tf

    from models.train import DEFAULT_QUANTIZERS, build_classifier

    tf.keras.utils.set_random_seed(seed)
    classifier = build_classifier(
        family, 1, N_FEATURES, 2, UNITS, N_MODES, RANK, stateful=True, quantizers=quantizers or DEFAULT_QUANTIZERS
    )
    layer = classifier.get_layer(family)
    layer.set_weights([w * weight_scale if w.dtype.kind == "f" else w for w in layer.get_weights()])
    return tf.keras.Model(classifier.input, layer.output), layer


def compile_stream(model, output_dir):
    """The model converted with its reset port and compiled (C-sim): ``predict([frames, reset])``."""
    import hls_project

    hls_model = hls_project.convert(model, output_dir, reset_port=True, echo=lambda *_: None)
    hls_model.compile()
    return hls_model


def clip_lengths(total: int, rng, lengths=CLIP_LENGTHS) -> np.ndarray:
    """Clip lengths drawn from ``lengths`` that add up to ``total`` frames (the last one cut)."""
    drawn = rng.choice(lengths, size=total)  # at least one frame each: enough draws
    ends = np.cumsum(drawn)
    count = int(np.searchsorted(ends, total)) + 1
    drawn = drawn[:count].copy()
    drawn[-1] -= ends[count - 1] - total
    return drawn


def stream_frames(lengths, rng, scale: float = 4.0) -> np.ndarray:
    """``(sum(lengths), N_FEATURES)`` float32 frames: per clip, uniform noise in ``[-scale, scale]``
    or (every third clip) one constant frame held for the whole clip."""
    clips = []
    for number, length in enumerate(lengths):
        if number % 3 == 2:
            clips.append(np.repeat(rng.uniform(-scale, scale, (1, N_FEATURES)), length, axis=0))
        else:
            clips.append(rng.uniform(-scale, scale, (length, N_FEATURES)))
    return np.concatenate(clips).astype(np.float32)


def resets(lengths) -> np.ndarray:
    """The reset bit of every frame, ``(frames, 1)``: 1 on the first frame of each clip."""
    bits = np.zeros((int(np.sum(lengths)), 1), np.float32)
    bits[np.concatenate([[0], np.cumsum(lengths)[:-1]])] = 1
    return bits


def csim_stream(hls_model, frames, lengths) -> np.ndarray:
    """Every frame through the compiled stateful C-sim, in order: ``(frames, units)``."""
    out = np.asarray(hls_model.predict([frames, resets(lengths)]))
    return out.reshape(len(frames), -1)


def sequence_copy(layer):
    """The layer as a non-stateful sequence layer (every frame's output), same weights."""
    import tensorflow as tf

    config = {**layer.get_config(), "stateful": False, "return_sequences": True, "name": f"{layer.name}_sequence"}
    copy = type(layer).from_config(config)
    copy(tf.zeros((1, 1, N_FEATURES)))
    copy.set_weights(layer.get_weights())
    return copy


def reference_stream(layer, frames, lengths, recorder=None) -> np.ndarray:
    """The NumPy reference of every frame, each clip from a zero state: ``(frames, units)``.
    ``layer``: the stateful layer or its ``sequence_copy`` (made once by a caller that streams often).
    Clips of one length run as one batch; ``recorder`` (``hls_project.profile.Recorder``) sees every value."""
    from contextlib import nullcontext

    import hls_project
    from hls_project.reference import recording

    copy = layer if layer.return_sequences and not layer.stateful else sequence_copy(layer)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    out = np.empty((len(frames), layer.cell.units))
    for length in np.unique(lengths):
        index = starts[lengths == length][:, None] + np.arange(length)[None, :]  # (clips, length)
        with recording(recorder) if recorder is not None else nullcontext():
            out[index] = hls_project.execute(copy, frames[index])[0]
    return out


def run_family(family: str, n_frames: int, workdir, seed: int = 0, quantizers=None, weight_scale: float = 1.0) -> dict:
    """Compile ``family``'s stateful layer, stream ``n_frames`` frames through C-sim and reference."""
    from hls_project.profile import Recorder

    rng = np.random.default_rng(seed)
    model, layer = stream_model(family, quantizers, seed, weight_scale)
    start = time.perf_counter()
    hls_model = compile_stream(model, Path(workdir) / family)
    compile_s = time.perf_counter() - start
    lengths = clip_lengths(n_frames, rng)
    frames = stream_frames(lengths, rng)
    start = time.perf_counter()
    csim = csim_stream(hls_model, frames, lengths)
    csim_s = time.perf_counter() - start
    recorder = Recorder(layer=family)
    start = time.perf_counter()
    expected = reference_stream(layer, frames, lengths, recorder)
    reference_s = time.perf_counter() - start
    differs = np.flatnonzero((csim != expected).any(axis=1))
    saturated = {name: recorder.variables[(family, name)].outside for name in ("cell state c", "output h")}
    return {
        "family": family,
        "frames": int(n_frames),
        "clips": len(lengths),
        "longest_clip": int(lengths.max()),
        "frames_equal": int(n_frames - differs.size),
        "first_differing_frame": int(differs[0]) if differs.size else None,
        "max_abs_diff": float(np.abs(csim - expected).max()),
        "c_saturated": saturated["cell state c"],
        "h_saturated": saturated["output h"],
        "compile_s": compile_s,
        "csim_s": csim_s,
        "reference_s": reference_s,
    }


def main(argv=None) -> int:
    from tqdm import tqdm

    from benchmarks.run import argument_parser, output_folder, table
    from models.families import project_families
    from models.quiet import quiet_imports

    parser = argument_parser(__doc__)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    quiet_imports()
    out = output_folder(args)
    rows = []
    with tempfile.TemporaryDirectory(prefix="long-stream-") as tmp:
        for family in tqdm(list(project_families()), desc="long streams", unit="family", ascii=True):
            rows.append(run_family(family, args.frames, tmp, args.seed))
    header = ["family", "frames", "clips", "equal", "max |diff|", "c sat.", "h sat.", "compile s", "C-sim s", "ref. s"]
    cells = [
        [
            r["family"],
            f"{r['frames']:,}",
            f"{r['clips']:,}",
            "all"
            if r["first_differing_frame"] is None
            else f"{r['frames_equal']:,} (first: {r['first_differing_frame']})",
            f"{r['max_abs_diff']:.3g}",
            f"{r['c_saturated']:,}",
            f"{r['h_saturated']:,}",
            f"{r['compile_s']:.1f}",
            f"{r['csim_s']:.2f}",
            f"{r['reference_s']:.2f}",
        ]
        for r in rows
    ]
    table(
        f"Long streams: stateful C-sim vs NumPy reference, frame by frame (measured here, seed {args.seed})",
        header,
        cells,
    )
    (out / "long_stream.json").write_text(json.dumps({"seed": args.seed, "families": rows}, indent=2) + "\n")
    print(f"\nwritten: {out / 'long_stream.json'}")
    return 0 if all(r["first_differing_frame"] is None for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
