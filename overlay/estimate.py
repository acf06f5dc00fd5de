"""``python -m overlay estimate``: the hardware estimate of a converted model on a board.

Per layer, ``hls_project.cost`` stages (our LSTM layers from their own schedules, hls4ml's Dense
and activations from their reuse factors), plus the accelerator top (beat reader and writer).
With io_stream every layer and the top's reader and writer are processes of a dataflow, so the
model runs at the pace of its slowest process (the bottleneck); the latency of a call is bounded
by the sum of the processes' cycles. Next to it, the board's physical limits: every MAC on a
DSP every cycle (compute), and the 64-bit stream at the board's clock (I/O). Every figure is an
estimate; nothing here comes from a tool run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hls_project.cost import LayerEstimate, Memory, Part, Stage, dense_stages
from host import boards
from host.protocol import BEAT_BITS, beats_for

# each board's part from its record (host.boards)
PARTS = {
    board.name: Part(board.part, board.dsp, board.bram36, board.lut, board.ff, board.dsp_a_bits, board.dsp_b_bits)
    for board in boards.BOARD_RECORDS
}
RESOURCES = ("dsp", "bram36", "lut", "ff")
SOFTMAX_TABLES = 2  # hls4ml's softmax: an exp and an inverse table


def total_resources(layers, part: Part) -> dict:
    """The summed ``RESOURCES`` of ``layers`` (``LayerEstimate``) on ``part``."""
    total = dict.fromkeys(RESOURCES, 0)
    for layer in layers:
        for key, value in layer.resources(part).items():
            total[key] += value
    return total


def relative_errors(tool: dict, estimated: dict) -> dict:
    """``(tool - estimate) / tool`` for every resource both give (None where the tool reports 0)."""
    return {key: (tool[key] - estimated[key]) / tool[key] if tool[key] else None for key in tool if key in estimated}


@dataclass(frozen=True)
class NetworkEstimate:
    board: str
    part: Part
    clock_mhz: float
    frames_per_call: int
    layers: tuple  # LayerEstimate, the top's reader first and its writer last

    @property
    def bottleneck(self) -> LayerEstimate:
        return max(self.layers, key=lambda layer: layer.cycles_per_call)

    @property
    def frames_per_s(self) -> float:
        return self.clock_mhz * 1e6 * self.frames_per_call / self.bottleneck.cycles_per_call

    @property
    def latency_call_us(self) -> float:
        return sum(layer.cycles_per_call for layer in self.layers) / self.clock_mhz

    @property
    def latency_frame_us(self) -> float:
        """A frame's share of the top's beats plus one pass of every layer that runs once per frame."""
        frames = self.frames_per_call
        top = (self.layers[0].cycles_per_call + self.layers[-1].cycles_per_call) / frames
        per_frame = sum(layer.cycles_per_call / layer.calls for layer in self.layers[1:-1] if layer.calls == frames)
        return (top + per_frame) / self.clock_mhz

    def total(self) -> dict:
        return total_resources(self.layers, self.part)

    @property
    def macs_per_frame(self) -> float:
        return sum(layer.macs for layer in self.layers) / self.frames_per_call

    def limits(self) -> dict:
        """Frames/s no design on this board can pass: all DSPs busy, or the stream full."""
        beats = self.layers[0].stages[0].iterations + self.layers[-1].stages[0].iterations
        bytes_per_frame = beats * BEAT_BITS / 8 / self.frames_per_call
        return {
            "compute": self.part.dsp * self.clock_mhz * 1e6 / max(self.macs_per_frame, 1),
            "io": BEAT_BITS / 8 * self.clock_mhz * 1e6 / bytes_per_frame,
        }

    def over(self) -> list:
        """The resources the estimate exceeds on this board."""
        total, available = self.total(), self.part.available()
        return [key for key in RESOURCES if total[key] > available[key]]

    def as_dict(self) -> dict:
        limits = self.limits()
        return {
            "estimate": True,
            "board": self.board,
            "part": self.part.name,
            "clock_mhz": self.clock_mhz,
            "frames_per_call": self.frames_per_call,
            "frames_per_s": self.frames_per_s,
            "latency_us": self.latency_frame_us,
            "latency_call_us": self.latency_call_us,
            "bottleneck": self.bottleneck.name,
            "total": self.total(),
            "available": self.part.available(),
            "fits": not self.over(),
            "macs_per_frame": self.macs_per_frame,
            "limit_frames_per_s": limits,
            "fraction_of_limit": self.frames_per_s / min(limits.values()),
            "layers": [
                {
                    "name": layer.name,
                    "kind": layer.kind,
                    "cycles_per_call": layer.cycles_per_call,
                    "calls": layer.calls,
                    "call_interval": layer.call_interval,
                    "ahead_stages": layer.ahead_stages,
                    "effective_macs_per_cycle": layer.effective_macs_per_cycle,
                    **layer.resources(self.part),
                    "stages": [
                        {"name": stage.name, "iterations": stage.iterations, "ii": stage.ii, "cycles": stage.cycles}
                        for stage in layer.stages
                    ],
                }
                for layer in self.layers
            ],
        }


def layer_estimate(node) -> LayerEstimate | None:
    """One hls4ml IR node's estimate; None for the graph input (nothing to build)."""
    from hls4ml.model.layers import Input

    from hls_project.lstm_cell import LSTMFamilyLayer

    if isinstance(node, LSTMFamilyLayer):
        return node.estimate()
    if isinstance(node, Input):
        return None
    kind = node.class_name  # the layer class, without the backend wrapper
    if kind == "Dense":
        n_in, n_out = node.get_attr("n_in"), node.get_attr("n_out")
        in_bits = node.get_input_variable().type.precision.width
        weight_bits = node.get_weights("weight").type.precision.width
        acc_bits = node.get_attr("accum_t").precision.width
        stages = dense_stages(node.name, n_in, n_out, node.get_attr("reuse_factor"), in_bits, weight_bits, acc_bits)
        return LayerEstimate(node.name, kind, stages, macs=n_in * n_out)
    size = node.get_output_variable().size()
    tables = ()
    if node.get_attr("table_size"):  # a lookup-table activation (sigmoid, tanh, ELU, softmax, ...)
        table_t = node.get_attr("table_t")
        width = table_t.precision.width if table_t is not None else 18
        count = SOFTMAX_TABLES if kind == "Softmax" else 1
        # every value of a cycle (io_parallel: all; io_stream: a stream element) is looked up at
        # once: one two-port copy of the table per two values
        parallel = (
            size
            if node.model.config.get_config_value("IOType") == "io_parallel"
            else node.get_output_variable().shape[-1]
        )
        copies = -(-parallel // 2)
        words = node.get_attr("table_size") * copies
        tables = tuple(Memory(f"table {k}", words, width, copies) for k in range(count))
    return LayerEstimate(node.name, kind, (Stage(node.name, size, 1, memories=tables),))  # elementwise


def top_stages(hls_model) -> tuple:
    """The accelerator top's reader and writer (``overlay.axi_wrapper``) for one call."""
    from fixedpoint.hls_types import from_hls4ml
    from hls_project.input_stream import stream_element_values

    inp, out = hls_model.get_input_variables()[0], hls_model.get_output_variables()[0]
    in_type = from_hls4ml(inp.type.precision)
    out_type = from_hls4ml(out.type.precision, rounding_matters=False)
    stream = hls_model.config.get_config_value("IOType") == "io_stream"
    pack = stream_element_values(inp) if stream else 1
    # a beat completes up to ceil(values per beat / pack) packs: one FIFO write each
    reader_ii = -(-(BEAT_BITS // in_type.width) // pack)
    reader = Stage("beat reader", beats_for(inp.size(), in_type), reader_ii)
    writer = Stage("beat writer", beats_for(out.size(), out_type), 1)
    return (
        LayerEstimate("top: beat reader", "AcceleratorTop", (reader,)),
        LayerEstimate("top: beat writer", "AcceleratorTop", (writer,)),
    )


def estimate_network(hls_model, board: str, clock_mhz: float) -> NetworkEstimate:
    if board not in PARTS:
        raise ValueError(f"no part data for board {board!r} (known: {', '.join(PARTS)})")
    layers = [estimate for node in hls_model.get_layers() if (estimate := layer_estimate(node)) is not None]
    reader, writer = top_stages(hls_model)
    frames = int(hls_model.get_input_variables()[0].shape[0])
    return NetworkEstimate(board, PARTS[board], clock_mhz, frames, (reader, *layers, writer))


def with_reuse_factor(hls_model, reuse_factor: int) -> None:
    """Set the reuse factor of every LSTM family layer of a converted model (for estimates only:
    the written project keeps the one it was converted with)."""
    from hls_project.lstm_cell import LSTMFamilyLayer

    for node in hls_model.get_layers():
        if isinstance(node, LSTMFamilyLayer):
            node.set_attr("reuse_factor", reuse_factor)


def largest_fitting_setting(hls_model, board: str, clock_mhz: float, start: int) -> int | None:
    """The smallest LSTM reuse factor (powers of two from ``start``) whose estimate fits ``board``
    (the most parallel design that fits); None if even 4,096 does not. Restores ``start``."""
    found = None
    reuse_factor = max(1, start)
    while reuse_factor <= 4096 and found is None:
        with_reuse_factor(hls_model, reuse_factor)
        if not estimate_network(hls_model, board, clock_mhz).over():
            found = reuse_factor
        reuse_factor *= 2
    with_reuse_factor(hls_model, start)
    return found


def format_table(estimate: NetworkEstimate) -> str:
    """The estimate as a table, every figure labelled an estimate."""
    total, available = estimate.total(), estimate.part.available()
    lines = [
        f"estimate for {estimate.board} ({estimate.part.name}) at {estimate.clock_mhz:g} MHz "
        "(from our schedules, not a tool run)",
        f"{'layer':32} {'cycles/call':>12} {'DSP':>7} {'BRAM36':>8} {'LUT':>9} {'FF':>9}",
    ]
    for layer in estimate.layers:
        res = layer.resources(estimate.part)
        lines.append(
            f"{layer.name[:32]:32} {layer.cycles_per_call:>12,} {res['dsp']:>7,} {res['bram36']:>8,.1f} "
            f"{res['lut']:>9,} {res['ff']:>9,}"
        )
    lines.append(
        f"{'total (estimate)':32} {'':>12} {total['dsp']:>7,} {total['bram36']:>8,.1f} "
        f"{total['lut']:>9,} {total['ff']:>9,}"
    )
    lines.append(
        f"{'available':32} {'':>12} {available['dsp']:>7,} {available['bram36']:>8,} "
        f"{available['lut']:>9,} {available['ff']:>9,}"
    )
    limits, over = estimate.limits(), estimate.over()
    lines += [
        f"estimate: {estimate.frames_per_s:,.1f} frames/s, {estimate.latency_frame_us:,.1f} us per frame, "
        f"{estimate.latency_call_us:,.1f} us per call of {estimate.frames_per_call} frames; "
        f"bottleneck: {estimate.bottleneck.name}",
        f"physical limit of the board: {limits['compute']:,.1f} frames/s compute (every MAC on a DSP every cycle), "
        f"{limits['io']:,.1f} frames/s I/O ({BEAT_BITS}-bit stream); the estimate is "
        f"{estimate.frames_per_s / min(limits.values()):.1%} of the lower",
        "fits the board (estimate)" if not over else f"does NOT fit (estimate): {', '.join(over)} over the board",
    ]
    lines += [
        f"{layer.name}: {layer.effective_macs_per_cycle:,.1f} dense-equivalent MACs per cycle "
        f"({layer.dense_macs / max(layer.macs, 1):,.1f}x fewer MACs than the dense LSTM; estimate)"
        for layer in estimate.layers
        if layer.dense_macs
    ]
    return "\n".join(lines)


def convert_for_board(model, output_dir, board: str, io_type: str = "io_stream", **options):
    """``hls_project.convert`` of ``model`` for ``board``: hls4ml's VivadoAccelerator backend, the
    board's part and its HLS clock (``host.boards``); ``options`` (reuse factors,
    ``reset_port``, ``echo``) go to ``convert``. Returns the hls4ml model."""
    import hls_project

    clock_period = 1000 / boards.board(board).clock_mhz
    return hls_project.convert(
        model,
        output_dir,
        backend="VivadoAccelerator",
        io_type=io_type,
        board=board,
        clock_period=clock_period,
        **options,
    )


def main_estimate(args) -> int:
    """``python -m overlay estimate``: convert (no files kept) and print the table or ``--json``."""
    import sys
    import tempfile

    from overlay.model_file import load_keras_model

    try:
        model = load_keras_model(args.model)
        clock = boards.board(args.board).clock_mhz
        with tempfile.TemporaryDirectory() as scratch:
            hls_model = convert_for_board(
                model,
                scratch,
                args.board,
                args.io_type,
                reuse_factor=args.reuse_factor,
                head_reuse_factor=args.head_reuse_factor,
                echo=lambda message: None,
            )
            estimate = estimate_network(hls_model, args.board, clock)
    except (ValueError, FileNotFoundError) as err:
        print(f"[overlay] error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(estimate.as_dict(), indent=1) if args.json else format_table(estimate))
    return 0
