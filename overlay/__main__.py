"""Command line: ``python -m overlay build|estimate|collect`` (``--help`` of each)."""

import argparse
import sys

from overlay.build import BOARDS, main_build, main_collect


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m overlay", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser(
        "build",
        help="HLS project + block design (+ bitstream when Vivado is on PATH)",
        description=(
            "Convert a trained model (any registered LSTM family, .h5 or .keras) into an HLS project, "
            "a Vivado block design and, when the vendor tools are on PATH, a bitstream; write the "
            "emulator, the co-simulation testbench, estimate.json and manifest.json into --out."
        ),
        epilog=(
            "exit codes: 0 built (bitstream collected); 2 refused or failed (the message says why; "
            "nothing is left in --out); 3 the project is written but vivado_hls / vivado / v++ is not on "
            "PATH (the message names it and the commands to run where it is)"
        ),
    )
    build.add_argument(
        "--model", required=True, help="a Keras model (.h5 or .keras) with a layer of a registered LSTM family"
    )
    build.add_argument("--board", required=True, choices=BOARDS)
    build.add_argument("--out", required=True, help="output directory (manifest.json, hls/, bitstream)")
    build.add_argument(
        "--io-type",
        default="io_stream",
        choices=("io_stream", "io_parallel"),
        help="io_stream (a dataflow of layers, the input in 64-bit elements) or io_parallel (small models)",
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
    build.add_argument(
        "--stream",
        action="store_true",
        help="build the model's stateful one-frame-per-call copy (for frame-by-frame video, host.stream --video)",
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
    if args.command != "collect":
        from models.quiet import quiet_imports

        quiet_imports()
    if args.command == "estimate":
        from overlay.estimate import main_estimate

        return main_estimate(args)
    return main_build(args) if args.command == "build" else main_collect(args)


if __name__ == "__main__":
    sys.exit(main())
