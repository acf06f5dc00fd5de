"""``python -m host.stream``: stream video features through an accelerator, frame by frame.

Synthetic clips by default (the data set the overlay's model was trained on, from its
manifest), or ``--video PATH`` (read with OpenCV, resized to the manifest's frame size). Prints
per-frame predictions, the per-clip class and frames/s. Needs NumPy, pynq on the board, and for
video or synthetic clips ``models.datasets`` (NumPy + OpenCV, no TensorFlow).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from host.accelerator import Accelerator


def synthetic_clips(dataset: dict, clips: int, seed: int):
    from models import datasets

    fields = datasets.SyntheticVideoConfig.__dataclass_fields__
    config = datasets.SyntheticVideoConfig(**{k: v for k, v in dataset.items() if k in fields})
    return datasets.synthetic_video(clips, config, seed=seed)


def video_clip(path: str, dataset: dict, max_frames: int | None):
    from models import datasets

    frames = datasets.load_video(
        path, dataset.get("height", 120), dataset.get("width", 160), dataset.get("channels", 3), max_frames
    )
    return frames[None], np.array([-1])


def stream_clip(accelerator: Accelerator, clip: np.ndarray, class_names: list, echo) -> tuple:
    """Feed one clip; returns (per-call outputs, predicted class, frames/s)."""
    start = time.perf_counter()
    outputs = accelerator.run_clip(clip)
    elapsed = time.perf_counter() - start
    per_call = accelerator.frames_per_call
    for call, logits in enumerate(outputs):
        label = class_names[int(np.argmax(logits))] if class_names else int(np.argmax(logits))
        echo(f"  frame {(call + 1) * per_call:4d}: class {label}  logits {np.array2string(logits, precision=3)}")
    predicted = int(np.argmax(outputs[-1]))
    return outputs, predicted, len(clip) / max(elapsed, 1e-9)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m host.stream", description=__doc__.split("\n\n")[0])
    parser.add_argument("--overlay", required=True, help="directory written by 'python -m overlay build'")
    parser.add_argument("--video", help="a video file (default: synthetic clips)")
    parser.add_argument("--clips", type=int, default=4, help="synthetic clips to stream")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--backend", default="auto", choices=("auto", "pynq", "emulated"))
    parser.add_argument("--quiet", action="store_true", help="no per-frame lines")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        accelerator = Accelerator(args.overlay, backend=args.backend)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"[stream] error: {err}", file=sys.stderr)
        return 2
    manifest = accelerator.manifest
    dataset = manifest.dataset or {}
    class_names = dataset.get("class_names", [])
    try:
        if args.video:
            clips, labels = video_clip(args.video, dataset, None)
        else:
            clips, labels = synthetic_clips(dataset, args.clips, args.seed)
    except (FileNotFoundError, ValueError) as err:
        print(f"[stream] error: {err}", file=sys.stderr)
        return 2
    if clips.shape[-1] != manifest.n_features:
        print(
            f"[stream] error: clips have {clips.shape[-1]} features, the overlay takes {manifest.n_features}",
            file=sys.stderr,
        )
        return 2
    echo = (lambda line: None) if args.quiet else print
    print(
        f"[stream] {accelerator.backend.name} backend, {manifest.board}, {manifest.frames_per_call} frame(s) per call"
    )
    correct, rates = 0, []
    with accelerator:
        for number, (clip, label) in enumerate(zip(clips, labels, strict=True)):
            print(f"clip {number}: {len(clip)} frames")
            _, predicted, rate = stream_clip(accelerator, clip, class_names, echo)
            rates.append(rate)
            name = class_names[predicted] if class_names else predicted
            truth = "" if label < 0 else f" (true class {class_names[label] if class_names else label})"
            correct += int(predicted == label)
            print(f"clip {number}: class {name}{truth}, {rate:.1f} frames/s")
    if labels.min() >= 0:
        backend = accelerator.backend.name
        print(f"[stream] {correct}/{len(labels)} clips correct, mean {np.mean(rates):.1f} frames/s ({backend})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
