"""``python -m host.stream``: stream video features through an accelerator, frame by frame.

``python -m host.stream --overlay DIR [--synthetic | --video PATH | --folder DIR | --camera N]``:
synthetic clips by default (the data set the overlay's model was trained on, shaped by its
manifest: frames per clip, frame size, classes), a video file, a data set folder, or an OpenCV
camera (``host.sources``: every frame made into features by the function training uses). Prints
per-frame predictions, the per-clip class and frames/s. Needs NumPy, pynq on the board, and
``models.datasets`` (NumPy + OpenCV, no TensorFlow).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import host
from host import sources
from host.accelerator import Accelerator
from host.argument_types import integer_at_least
from host.backends import BACKENDS
from host.cli import run_command
from host.manifest import Manifest

FRAME_SIZE = ("height", "width", "channels")


def frame_size(manifest: Manifest, options: dict) -> tuple:
    """(height, width, channels) of the overlay's frames: ``options`` (the command line's, None
    when not given), else the manifest's data set description; refused unless it makes the
    overlay's features and, when the manifest gives a frame size, is that one."""
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
    trained = tuple(manifest.dataset.get(key) for key in FRAME_SIZE)
    if None not in trained and size != trained:
        raise ValueError(
            f"--height/--width/--channels make {'x'.join(map(str, size))} frames, but the overlay's model was "
            f"trained on {'x'.join(map(str, trained))} frames (its manifest): leave them out"
        )
    return size


def class_names(manifest: Manifest) -> list:
    """The names of the overlay's output classes from its data set description (empty: none)."""
    names = manifest.dataset.get("class_names", [])
    if not isinstance(names, list) or (names and len(names) != manifest.n_outputs):
        raise ValueError(f"the manifest's class_names {names!r} do not name its {manifest.n_outputs} outputs")
    return names


def stream_clip(accelerator: Accelerator, clip: np.ndarray, class_names: list, echo) -> tuple:
    """Feed one clip; returns (per-call outputs, predicted class, frames/s of this clip's run)."""
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
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--synthetic", action="store_true", help="synthetic clips shaped for the overlay (default)")
    source.add_argument("--video", metavar="PATH", help="a video file: one clip")
    source.add_argument("--folder", metavar="DIR", help="a data set folder DIR/<class>/[<group>/]<clip>.avi|mp4")
    source.add_argument("--camera", metavar="N", type=int, help="OpenCV camera index N (e.g. 0 for /dev/video0)")
    parser.add_argument(
        "--clips", type=integer_at_least(1), default=4, help="synthetic or camera clips to stream (default: 4)"
    )
    parser.add_argument("--seed", type=int, default=12345, help="seed of the synthetic clips (default: 12345)")
    parser.add_argument("--backend", default="auto", choices=BACKENDS, help="where to run (default: auto)")
    parser.add_argument("--quiet", action="store_true", help="no per-frame lines")
    for key in FRAME_SIZE:
        parser.add_argument(
            f"--{key}",
            type=integer_at_least(1),
            help=f"frame {key} (default: the manifest's, from the model's training)",
        )
    return parser.parse_args(argv)


def folder_progress(total_hint: str):
    """A ``progress(done, total)`` callback drawing a tqdm bar (None when tqdm is not installed)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    bar = None

    def progress(done, total):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=total_hint, unit="clip")
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return progress


def load_clips(args, manifest: Manifest, echo=print):
    """(an iterable of (clip, label), class names) for the source the command line chose."""
    size = frame_size(manifest, {key: getattr(args, key) for key in FRAME_SIZE})
    names = class_names(manifest)
    if args.video:
        return sources.video(args.video, manifest, size, warn=lambda line: print(f"[stream] warning: {line}")), names
    if args.folder:
        clips = list(sources.folder(args.folder, manifest, size, names, folder_progress(f"reading {args.folder}")))
        return clips, names
    if args.camera is not None:
        return sources.camera(args.camera, manifest, size, args.clips, echo), names
    return sources.synthetic(manifest, size, args.clips, args.seed), names


def stream_clips(accelerator: Accelerator, clips, names: list, echo) -> list:
    """Stream every ``(clip, label)``; print its class (and the true one when known) and, when every
    label is known, the accuracy. Frames/s are steady-state: before the first clip, one call of its
    frames runs untimed (the warm-up: the first transfer, buffers and caches). Returns the
    predicted classes."""
    manifest = accelerator.manifest
    print(
        f"[stream] {accelerator.backend.name} backend, {manifest.board}, {manifest.frames_per_call} frame(s) per "
        "call; frames/s exclude a first, untimed warm-up call"
    )
    predictions, labels, rates = [], [], []
    for number, (clip, label) in enumerate(clips):
        print(f"clip {number}: {len(clip)} frames")
        if number == 0:
            accelerator.run_clip(clip[: accelerator.frames_per_call])  # warm-up, untimed
        _, predicted, rate = stream_clip(accelerator, clip, names, echo)
        predictions.append(predicted)
        labels.append(int(label))
        rates.append(rate)
        name = names[predicted] if names else predicted
        truth = "" if label < 0 else f" (true class {names[label] if names else label})"
        print(f"clip {number}: class {name}{truth}, {rate:.1f} frames/s")
    if labels and min(labels) >= 0:
        correct = sum(p == y for p, y in zip(predictions, labels, strict=True))
        backend = accelerator.backend.name
        print(
            f"[stream] {correct}/{len(labels)} clips correct, mean {np.mean(rates):.1f} frames/s "
            f"({backend}, steady state: the warm-up call not timed)"
        )
    return predictions


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        accelerator = host.open(args.overlay, backend=args.backend)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"[stream] error: {err}", file=sys.stderr)
        return 2
    with accelerator:
        try:
            clips, names = load_clips(args, accelerator.manifest)
            stream_clips(accelerator, clips, names, (lambda line: None) if args.quiet else print)
        except (FileNotFoundError, ValueError) as err:
            print(f"[stream] error: {err}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    run_command(main, "stream")
