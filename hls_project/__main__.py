"""``python -m hls_project profile --model M --data synthetic|FOLDER``: overflow and precision
profile of a model on calibration data (``hls_project.profile``): a table and a JSON file.

Exit codes: 0 no variable overflows its type, 1 some do (the table says which, with counts),
2 refused (a bad argument or data, one line naming it).
"""

from __future__ import annotations

import argparse
import json
import sys
from math import isqrt
from pathlib import Path

from host.argument_types import integer_at_least
from host.cli import run_command


def frame_shape(features: int, height, width, channels) -> tuple:
    """``(height, width, channels)`` of a ``features``-value frame: the options given, or a square
    grey (1 channel) or colour (3 channels) frame; a ValueError when none fits."""
    if height and width:
        channels = channels or features // (height * width)
        if height * width * channels != features:
            raise ValueError(f"--height {height} --width {width} --channels {channels} is not {features} features")
        return height, width, channels
    for c in (channels,) if channels else (1, 3):
        side = isqrt(features // c)
        if side * side * c == features:
            return side, side, c
    raise ValueError(f"the model's {features} features are no square frame: give --height, --width and --channels")


def calibration_data(args, model):
    """The clips of ``--data``: the synthetic task (``models.datasets``) or a folder of clips, shaped
    from the model's input (frames: a multiple of its frames per call)."""
    from models import datasets

    _, per_call, features = model.input_shape
    height, width, channels = frame_shape(features, args.height, args.width, args.channels)
    frames = args.frames or max(per_call, 16 // per_call * per_call)
    if args.data == "synthetic":
        config = datasets.SyntheticVideoConfig(height=height, width=width, channels=channels, frames=frames)
        return datasets.synthetic_video(args.clips, config, seed=args.seed)[0], f"synthetic ({args.clips} clips)"
    x, _, names = datasets.load_video_folder(args.data, height, width, channels, frames)
    return x[: args.clips], f"folder {args.data} ({min(len(x), args.clips)} clips, {len(names)} classes)"


def check_out(out: Path) -> None:
    """Refuse, before any work, an ``--out`` that cannot be the JSON file: a folder, or a path under a file."""
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder: give the JSON file to write, e.g. {out / 'profile.json'}")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"--out {out}: {parent} is a file, not a folder")


def write_report(out: Path, data: dict) -> None:
    """``data`` as JSON into ``out`` (its folder made); a file system error names ``--out``."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as err:
        raise ValueError(f"--out {out}: {err.strerror or err}") from None


def profile_command(args) -> int:
    import models
    from hls_project.profile import profile

    out = Path(args.out)
    check_out(out)
    try:
        model = models.load_model(args.model, compile=False)  # profiled, never trained: no optimizer
    except (OSError, ValueError) as err:
        raise ValueError(f"--model {args.model}: {err}") from None
    try:
        x, description = calibration_data(args, model)
    except (OSError, ValueError) as err:
        raise ValueError(f"--data {args.data}: {err}") from None
    print(f"[profile] model {args.model}, data: {description}, {x.shape[1]} frames of {x.shape[2]} features")
    report = profile(model, x)
    print(report.table())
    data = {"model": str(args.model), "data": description, **report.to_dict()}
    write_report(out, data)
    print(f"[profile] {len(report.variables)} variables, {report.frames:,} frames -> {out}")
    for line in report.warnings():
        print(f"[profile] WARNING: {line}")
    return 1 if report.overflowing else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hls_project", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prof = commands.add_parser("profile", help="overflow and precision of every kernel variable on calibration data")
    prof.add_argument("--model", required=True, help="a .h5 or .keras model with family layers")
    prof.add_argument("--data", default="synthetic", help="'synthetic' (default) or a folder root/<class>/<clip>")
    prof.add_argument("--clips", type=integer_at_least(1), default=64, help="calibration clips (default 64)")
    prof.add_argument(
        "--frames", type=integer_at_least(1), default=None, help="frames per clip (default: 16, whole calls)"
    )
    prof.add_argument("--seed", type=int, default=0, help="seed of the synthetic clips")
    prof.add_argument("--height", type=integer_at_least(1), default=None)
    prof.add_argument("--width", type=integer_at_least(1), default=None)
    prof.add_argument("--channels", type=int, choices=(1, 3), default=None)
    prof.add_argument("--out", default="build/profile/profile.json", help="the JSON report")
    return parser


def main(argv=None) -> int:
    from models.quiet import quiet_imports

    args = build_parser().parse_args(argv)
    quiet_imports()
    try:
        return profile_command(args)
    except ValueError as err:
        print(f"[profile] error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    run_command(main, "profile")
