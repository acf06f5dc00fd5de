"""``python -m host.stream``: stream video features through an accelerator, frame by frame.

Synthetic clips by default (the data set the overlay's model was trained on, shaped by its
manifest: frames per clip, frame size, classes), or ``--video PATH`` (read with OpenCV, resized to
the manifest's frame size). Prints per-frame predictions, the per-clip class and frames/s. Needs
NumPy, pynq on the board, and for video or synthetic clips ``models.datasets`` (NumPy + OpenCV,
no TensorFlow).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from host.accelerator import Accelerator
from host.manifest import Manifest

FRAME_SIZE = ("height", "width", "channels")


def frame_size(manifest: Manifest, options: dict) -> tuple:
    """(height, width, channels) of the overlay's frames: ``options`` (the command line's, None
    when not given), else the manifest's data set description; refused unless it makes the
    overlay's features."""
    size = tuple(options[key] if options[key] is not None else manifest.dataset.get(key) for key in FRAME_SIZE)
    if None in size:
        raise ValueError(
            f"the overlay's manifest does not say the frame size of its {manifest.n_features} features (its model "
            "had no train_report.json beside it at build time): pass --height, --width and --channels"
        )
    if not all(type(value) is int and value > 0 for value in size):
        raise ValueError(f"the frame size (height, width, channels) must be positive integers, got {size}")
    if size[0] * size[1] * size[2] != manifest.n_features:
        raise ValueError(
            f"frames of {size[0]}x{size[1]}x{size[2]} make {size[0] * size[1] * size[2]} features, the overlay "
            f"takes {manifest.n_features}: pass --height, --width and --channels"
        )
    return size


def class_names(manifest: Manifest) -> list:
    """The names of the overlay's output classes from its data set description (empty: none)."""
    names = manifest.dataset.get("class_names", [])
    if not isinstance(names, list) or (names and len(names) != manifest.n_outputs):
        raise ValueError(f"the manifest's class_names {names!r} do not name its {manifest.n_outputs} outputs")
    return names


def synthetic_clips(manifest: Manifest, size: tuple, clips: int, seed: int):
    """``clips`` synthetic clips shaped for the overlay: its frame size and classes, and frames per
    clip of its data set (a whole-clip overlay: its frames per call). Labels are -1 (unknown)
    unless the overlay was trained on the synthetic task."""
    from models import datasets

    fields = datasets.SyntheticVideoConfig.__dataclass_fields__
    frames = manifest.dataset.get("frames", fields["frames"].default)
    shape = dict(zip(FRAME_SIZE, size, strict=True))
    shape.update(classes=manifest.n_outputs, frames=frames if manifest.stateful else manifest.frames_per_call)
    described = {key: value for key, value in manifest.dataset.items() if key in fields}
    try:
        config = datasets.SyntheticVideoConfig(**{**described, **shape})
        x, labels = datasets.synthetic_video(clips, config, seed=seed)
    except (TypeError, ValueError) as err:
        raise ValueError(f"cannot make synthetic clips for this overlay ({err}): stream a --video instead") from None
    return x, labels if manifest.dataset.get("kind") == "synthetic" else np.full_like(labels, -1)


def video_clip(path: str, manifest: Manifest, size: tuple):
    """One clip of a video file at the overlay's frame size: every frame for a frame-by-frame
    overlay, else the overlay's frames per call spread over the video (as ``models.train`` samples)."""
    from models import datasets

    if Path(path).is_dir():
        raise ValueError(f"--video {path} is a folder, not a video file")
    frames = datasets.load_video(path, *size)
    if not manifest.stateful:
        frames = datasets._sample_frames(frames, manifest.frames_per_call)
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


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m host.stream", description=__doc__.split("\n\n")[0])
    parser.add_argument("--overlay", required=True, help="directory written by 'python -m overlay build'")
    parser.add_argument("--video", help="a video file (default: synthetic clips)")
    parser.add_argument("--clips", type=positive_int, default=4, help="synthetic clips to stream (default: 4)")
    parser.add_argument("--seed", type=int, default=12345, help="seed of the synthetic clips (default: 12345)")
    parser.add_argument(
        "--backend", default="auto", choices=("auto", "pynq", "emulated"), help="where to run (default: auto)"
    )
    parser.add_argument("--quiet", action="store_true", help="no per-frame lines")
    for key in FRAME_SIZE:
        parser.add_argument(
            f"--{key}", type=positive_int, help=f"frame {key} (default: the manifest's, from the model's training)"
        )
    return parser.parse_args(argv)


def load_clips(args, manifest: Manifest):
    """(clips, labels, class names) for the overlay: the video or synthetic clips."""
    size = frame_size(manifest, {key: getattr(args, key) for key in FRAME_SIZE})
    names = class_names(manifest)
    if args.video:
        return (*video_clip(args.video, manifest, size), names)
    return (*synthetic_clips(manifest, size, args.clips, args.seed), names)


def stream_clips(accelerator: Accelerator, clips, labels, names: list, echo) -> None:
    """Stream every clip; print its class (and the true one when known) and, with labels, the accuracy."""
    manifest = accelerator.manifest
    print(
        f"[stream] {accelerator.backend.name} backend, {manifest.board}, {manifest.frames_per_call} frame(s) per call"
    )
    correct, rates = 0, []
    for number, (clip, label) in enumerate(zip(clips, labels, strict=True)):
        print(f"clip {number}: {len(clip)} frames")
        _, predicted, rate = stream_clip(accelerator, clip, names, echo)
        rates.append(rate)
        name = names[predicted] if names else predicted
        truth = "" if label < 0 else f" (true class {names[label] if names else label})"
        correct += int(predicted == label)
        print(f"clip {number}: class {name}{truth}, {rate:.1f} frames/s")
    if labels.min() >= 0:
        backend = accelerator.backend.name
        print(f"[stream] {correct}/{len(labels)} clips correct, mean {np.mean(rates):.1f} frames/s ({backend})")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        accelerator = Accelerator(args.overlay, backend=args.backend)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"[stream] error: {err}", file=sys.stderr)
        return 2
    with accelerator:
        try:
            clips, labels, names = load_clips(args, accelerator.manifest)
        except (FileNotFoundError, ValueError) as err:
            print(f"[stream] error: {err}", file=sys.stderr)
            return 2
        stream_clips(accelerator, clips, labels, names, (lambda line: None) if args.quiet else print)
    return 0


if __name__ == "__main__":
    sys.exit(main())
