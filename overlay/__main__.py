"""Command line: ``python -m overlay build|estimate|collect`` (``--help`` of each)."""

import argparse
import sys

from overlay.build import BOARDS, main_build, main_collect


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m overlay", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="HLS project + block design (+ bitstream when Vivado is on PATH)")
    build.add_argument(
        "--model", required=True, help="a Keras model (.h5 or .keras) with a layer of a registered LSTM family"
    )
    build.add_argument("--board", required=True, choices=BOARDS)
    build.add_argument("--out", required=True, help="output directory (manifest.json, hls/, bitstream)")
    build.add_argument(
        "--io-type",
        default="io_stream",
        choices=("io_stream", "io_parallel"),
        help="io_stream (default: a dataflow of layers, one frame per stream element) or io_parallel (small models)",
    )
    build.add_argument(
        "--reuse-factor",
        type=int,
        default=None,
        help="of the LSTM layers (default: the most parallel whose estimate fits the board)",
    )
    build.add_argument(
        "--head-reuse-factor",
        type=int,
        default=None,
        help="of the stock dense layers (default: their input size, one multiplier per output; 1: fully parallel)",
    )
    build.add_argument(
        "--force", action="store_true", help="build even when the estimate exceeds the board's resources"
    )
    estimate = commands.add_parser(
        "estimate", help="print the hardware estimate of a model on a board (from our schedules, not a tool run)"
    )
    estimate.add_argument("--model", required=True, help="a Keras model (.h5 or .keras) with a registered LSTM family")
    estimate.add_argument("--board", required=True, choices=BOARDS)
    estimate.add_argument("--io-type", default="io_stream", choices=("io_stream", "io_parallel"))
    estimate.add_argument("--reuse-factor", type=int, default=1, help="of the LSTM layers")
    estimate.add_argument("--head-reuse-factor", type=int, default=None, help="of the stock dense layers")
    estimate.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    collect = commands.add_parser("collect", help="copy the bitstream of a finished vendor run next to the manifest")
    collect.add_argument("--out", required=True, help="the directory given to 'build'")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.command == "estimate":
        from overlay.estimate import main_estimate

        return main_estimate(args)
    return main_build(args) if args.command == "build" else main_collect(args)


if __name__ == "__main__":
    sys.exit(main())
