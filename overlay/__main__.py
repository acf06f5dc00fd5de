"""Command line: ``python -m overlay build|estimate|collect|explore`` (``--help`` of each)."""

import argparse
import sys

from host.argument_types import integer_at_least, positive_float
from host.boards import BOARDS
from host.cli import run_command
from overlay.build import main_build, main_collect


def margin_argument(text: str) -> dict:
    """``--margin``'s value (``overlay.estimate.parse_margin``), its errors as argparse's."""
    from overlay.estimate import parse_margin

    try:
        return parse_margin(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--margin: ")) from None


TARGET_HELP = (
    "frames/s the folding pass aims at: every LSTM stage gets its own reuse factor (default: the fastest "
    "design that fits the board within --margin)"
)
MARGIN_HELP = (
    "the share of each resource a design may use and still fit: one fraction (0.85) or resource=fraction "
    "pairs (lut=0.7,dsp=0.95); default dsp, bram36, ff 0.9 and lut 0.8"
)


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
        help="every LSTM stage at this reuse factor (an expert override of the folding pass; see --target-fps)",
    )
    build.add_argument("--target-fps", type=positive_float, default=None, help=TARGET_HELP)
    build.add_argument(
        "--head-reuse-factor",
        type=int,
        default=None,
        help="of the stock dense layers (default: their input size, one multiplier per output; 1: fully parallel)",
    )
    build.add_argument("--margin", type=margin_argument, default=None, help=MARGIN_HELP)
    build.add_argument(
        "--force",
        action="store_true",
        help="build even when the estimate exceeds the margin of the board, or the emulator differs from Keras",
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
    estimate.add_argument(
        "--reuse-factor", type=int, default=None, help="every LSTM stage at this reuse factor (expert override)"
    )
    estimate.add_argument("--target-fps", type=positive_float, default=None, help=TARGET_HELP)
    estimate.add_argument("--head-reuse-factor", type=int, default=None, help="of the stock dense layers")
    estimate.add_argument("--margin", type=margin_argument, default=None, help=MARGIN_HELP)
    estimate.add_argument(
        "--simulate",
        action="store_true",
        help="also simulate the dataflow token by token (io_stream): frames/s and the FIFO depths it needs",
    )
    estimate.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    collect = commands.add_parser("collect", help="copy the bitstream of a finished vendor run next to the manifest")
    collect.add_argument("--out", required=True, help="the directory given to 'build'")
    add_explore_parser(commands)
    return parser.parse_args(argv)


def add_explore_parser(commands) -> None:
    """``explore``: the design-space sweep of ``overlay.explore`` (its options and defaults)."""
    from models.train import add_recipe_arguments, add_task_arguments

    explore = commands.add_parser(
        "explore",
        help="sweep a family's structure, precision and reuse factor on Dask; print and save the Pareto front",
        description=(
            "Train, convert, C-simulate and estimate every point of a family's sweep (the n_modes and rank of "
            "its for_task x --weight-bits; each point estimated at every --reuse-factors) as Dask tasks; append "
            "each point to OUT/results.jsonl (a rerun skips the points there); print the Pareto front of the "
            "designs that fit the board (C-sim accuracy, estimated frames/s, estimated utilization) and write "
            "OUT/front.json and OUT/front.png."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    explore.add_argument("--family", required=True, help="a registered LSTM family (tt_lstm, ht_lstm, ...)")
    explore.add_argument("--board", required=True, choices=BOARDS)
    explore.add_argument("--out", default="build/explore", help="folder for results.jsonl, front.*, points/")
    explore.add_argument(
        "--modes", type=integer_at_least(1), nargs="+", default=[2, 4], help="n_modes values of the family's for_task"
    )
    explore.add_argument(
        "--ranks", type=integer_at_least(1), nargs="+", default=[2, 4], help="rank values of the family's for_task"
    )
    explore.add_argument(
        "--weight-bits", type=integer_at_least(3), nargs="+", default=[8, 10], help="weight precisions"
    )
    explore.add_argument(
        "--reuse-factors",
        type=integer_at_least(1),
        nargs="+",
        default=[1, 4, 16, 64],
        help="LSTM reuse factors estimated",
    )
    add_task_arguments(explore)
    explore.set_defaults(clips=800)
    add_recipe_arguments(explore, 5, "training epochs per point")
    explore.add_argument(
        "--scheduler",
        default=None,
        help="address of an existing Dask scheduler, e.g. tcp://host:8786 (None: a LocalCluster)",
    )
    explore.add_argument("--workers", type=integer_at_least(1), default=2, help="LocalCluster worker processes")
    explore.add_argument(
        "--synthesize",
        action="store_true",
        help="also run Vivado HLS + Vivado synthesis per point (vivado_hls and vivado on the workers' PATH)",
    )
    explore.add_argument("--retry-failed", action="store_true", help="run the points recorded as failed again")


def check_reuse_options(args) -> None:
    """Refuse, before any work, a reuse factor option (``--reuse-factor``, ``--head-reuse-factor``,
    ``--reuse-factors``) outside 1 to ``hls_project.convert.MAX_REUSE_FACTOR``."""
    from hls_project.convert import check_reuse_factor

    for option in ("reuse_factor", "head_reuse_factor", "reuse_factors"):
        values = getattr(args, option, None)
        for value in values if isinstance(values, list) else [values]:
            if value is not None:
                check_reuse_factor(f"--{option.replace('_', '-')}", value)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.command != "collect":
        from models.quiet import quiet_imports

        quiet_imports()
        try:
            check_reuse_options(args)
        except ValueError as err:
            print(f"[overlay] error: {err}", file=sys.stderr)
            return 2
    if args.command == "estimate":
        from overlay.estimate import main_estimate

        return main_estimate(args)
    if args.command == "explore":
        from overlay.explore import main_explore

        return main_explore(args)
    return main_build(args) if args.command == "build" else main_collect(args)


if __name__ == "__main__":
    run_command(main, "overlay")
