"""Command line: ``python -m overlay build --model M.h5 --board pynq-z2 --out DIR``."""

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
    build.add_argument("--reuse-factor", type=int, default=1, help="of the LSTM layers")
    build.add_argument(
        "--head-reuse-factor",
        type=int,
        default=None,
        help="of the stock dense layers (default: their input size, one multiplier per output; 1: fully parallel)",
    )
    collect = commands.add_parser("collect", help="copy the bitstream of a finished vendor run next to the manifest")
    collect.add_argument("--out", required=True, help="the directory given to 'build'")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return main_build(args) if args.command == "build" else main_collect(args)


if __name__ == "__main__":
    sys.exit(main())
