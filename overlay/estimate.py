"""``python -m overlay estimate``: the hardware estimate of a converted model on a board.

Per layer, ``hls_project.cost`` stages (our LSTM layers from their own schedules, hls4ml's Dense
and activations from their reuse factors), plus the accelerator top (beat reader and writer).
With io_stream every layer and the top's reader and writer are processes of a dataflow, and the
top is free-running (``overlay.axi_wrapper``: one call per invocation, no handshake between
calls), so consecutive calls overlap, of one transfer or of the next (a camera feed's one frame
per call as a multi-frame call): the model runs at the pace of its slowest process (the
bottleneck, ``LayerEstimate.interval_per_call``); the latency of a call is bounded by the sum of
the processes' cycles. Next to it, the board's physical limits: every MAC on a
DSP every cycle (compute), and the 64-bit stream at the board's clock (I/O). Every figure is an
estimate; nothing here comes from a tool run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from hls_project.cost import LayerEstimate, Memory, Part, Stage, dense_stages
from host import boards
from host.protocol import BEAT_BITS

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


# The share of each resource a design may use and still "fit": routing, timing closure and the
# block design's own IP (DMA, interconnect) need the rest. ``--margin`` overrides it.
DEFAULT_MARGIN = {"dsp": 0.9, "bram36": 0.9, "lut": 0.8, "ff": 0.9}


def parse_margin(text: str) -> dict:
    """``--margin``: one fraction for every resource (``0.85``) or ``resource=fraction`` pairs
    (``lut=0.7,dsp=0.95``; the others keep ``DEFAULT_MARGIN``). Each fraction in (0, 1]."""
    margin = dict(DEFAULT_MARGIN)
    items = [item.strip() for item in str(text).split(",") if item.strip()]
    pairs = (
        [(key, items[0]) for key in RESOURCES]
        if len(items) == 1 and "=" not in items[0]
        else [item.partition("=")[::2] for item in items]
    )
    for key, value in pairs:
        key = key.strip().lower()
        if key not in RESOURCES:
            raise ValueError(f"--margin: unknown resource {key!r} (known: {', '.join(RESOURCES)})")
        try:
            fraction = float(value)
        except ValueError:
            raise ValueError(f"--margin: {value!r} is not a number") from None
        if not 0 < fraction <= 1:
            raise ValueError(f"--margin: {key}={value} must be a fraction in (0, 1]")
        margin[key] = fraction
    if not pairs:
        raise ValueError("--margin: give a fraction (0.9) or resource=fraction pairs (lut=0.8,dsp=0.9)")
    return margin


@dataclass(frozen=True)
class NetworkEstimate:
    board: str
    part: Part
    clock_mhz: float
    frames_per_call: int
    layers: tuple  # LayerEstimate, the top's reader first and its writer last
    margin: dict = field(default_factory=lambda: dict(DEFAULT_MARGIN))  # resource -> usable share

    @property
    def bottleneck(self) -> LayerEstimate:
        return max(self.layers, key=lambda layer: layer.interval_per_call)

    @property
    def frames_per_s(self) -> float:
        """Steady state: a model call every ``interval_per_call`` of the bottleneck."""
        return self.clock_mhz * 1e6 * self.frames_per_call / self.bottleneck.interval_per_call

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

    def products_per_frame(self) -> dict:
        """Products per frame by where they are built: ``dsp`` (in DSP slices: a wide product
        counts once per slice it takes) and ``lut`` (narrow products, ``Stage.narrow_products``),
        from every stage's trips x products per iteration."""
        counts = {"dsp": 0.0, "lut": 0.0}
        for layer in self.layers:
            for stage in layer.stages:
                if not stage.multipliers:
                    continue
                products = stage.iterations * stage.products_per_iteration * layer.calls / self.frames_per_call
                if stage.narrow_products():
                    counts["lut"] += products
                else:
                    counts["dsp"] += products * self.part.dsp_per_product(*stage.product_bits)
        return counts

    def lut_multipliers(self) -> int:
        """Narrow products the part could build at once from the LUTs the margin allows, at the
        cost model's LUTs per product (a x b) of the model's cheapest narrow product (an upper
        bound: adders, control and memories need LUTs too)."""
        narrow = [
            stage.product_bits[0] * stage.product_bits[1]
            for layer in self.layers
            for stage in layer.stages
            if stage.multipliers and stage.narrow_products()
        ]
        return int(self.part.lut * self.margin["lut"] // min(narrow)) if narrow else 0

    def limits(self) -> dict:
        """Frames/s no design of this model on this board can pass (estimates):

        - ``compute``: every multiplier the part can hold busy every cycle: its DSP slices for wide
          products, and for narrow ones DSPs or LUT products (``lut_multipliers``);
        - ``io``: the stream full, a beat per cycle on the busier of the two DMA channels (input
          and output run at once), at this protocol's packing;
        - ``recurrence``: for a model with an LSTM, the cycles of its path from h_t-1 to h_t (the
          recurrent half; the next frame's recurrent half cannot start earlier) with every stage on
          it at reuse factor 1 (``LayerEstimate.recurrence_floor``)."""
        clock = self.clock_mhz * 1e6
        products = self.products_per_frame()
        dsp, lut = self.part.dsp, self.lut_multipliers()
        cycles = max(products["dsp"] / dsp, (products["dsp"] + products["lut"]) / (dsp + lut))
        beats = max(self.layers[0].stages[0].iterations, self.layers[-1].stages[0].iterations) / self.frames_per_call
        limits = {"compute": clock / max(cycles, 1e-9), "io": clock / beats}
        recurrence = max((layer.recurrence_floor for layer in self.layers if layer.recurrent), default=0)
        if recurrence:
            limits["recurrence"] = clock / recurrence
        return limits

    def utilization(self) -> dict:
        total, available = self.total(), self.part.available()
        return {key: total[key] / available[key] for key in RESOURCES}

    def over(self) -> list:
        """The resources the estimate takes beyond the margin's share of the board."""
        return [key for key, used in self.utilization().items() if used > self.margin[key]]

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
            "utilization": self.utilization(),
            "margin": dict(self.margin),
            "fits": not self.over(),
            "macs_per_frame": self.macs_per_frame,
            "products_per_frame": self.products_per_frame(),
            "lut_multipliers": self.lut_multipliers(),
            "limit_frames_per_s": limits,
            "fraction_of_limit": self.frames_per_s / min(limits.values()),
            "layers": [
                {
                    "name": layer.name,
                    "kind": layer.kind,
                    "cycles_per_call": layer.cycles_per_call,
                    "interval_per_call": layer.interval_per_call,
                    "calls": layer.calls,
                    "call_interval": layer.call_interval,
                    "ahead_stages": layer.ahead_stages,
                    "recurrence_cycles": layer.recurrence_cycles,
                    "folding": dict(layer.folding),
                    "effective_macs_per_cycle": layer.effective_macs_per_cycle,
                    **layer.resources(self.part),
                    "stages": [stage.as_dict(self.part) for stage in layer.stages],
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
    """The accelerator top's reader and writer (``overlay.axi_wrapper``) for one call: a beat per
    cycle each (a pack per beat, ``host.protocol.Packing``)."""
    from overlay.axi_wrapper import top_packings

    in_packing, out_packing = top_packings(hls_model)
    inp, out = hls_model.get_input_variables()[0], hls_model.get_output_variables()[0]
    reader = Stage("beat reader", in_packing.beats(inp.size()), 1)
    writer = Stage("beat writer", out_packing.beats(out.size()), 1)
    return (
        LayerEstimate("top: beat reader", "AcceleratorTop", (reader,)),
        LayerEstimate("top: beat writer", "AcceleratorTop", (writer,)),
    )


def estimate_network(hls_model, board: str, clock_mhz: float, margin: dict | None = None) -> NetworkEstimate:
    """The estimate of a converted model on ``board`` at ``clock_mhz``; "fits" within ``margin``
    (resource -> usable share; ``DEFAULT_MARGIN`` when None)."""
    if board not in PARTS:
        raise ValueError(f"no part data for board {board!r} (known: {', '.join(PARTS)})")
    layers = [estimate for node in hls_model.get_layers() if (estimate := layer_estimate(node)) is not None]
    reader, writer = top_stages(hls_model)
    frames = int(hls_model.get_input_variables()[0].shape[0])
    return NetworkEstimate(
        board, PARTS[board], clock_mhz, frames, (reader, *layers, writer), dict(margin or DEFAULT_MARGIN)
    )


def with_reuse_factor(hls_model, reuse_factor: int) -> None:
    """Set the reuse factor of every LSTM family layer of a converted model (for estimates only:
    the written project keeps the one it was converted with)."""
    from overlay.folding import lstm_nodes

    for node in lstm_nodes(hls_model):
        node.set_attr("reuse_factor", reuse_factor)
        node.set_attr("folding", {})  # every stage at the layer's reuse factor


def largest_fitting_setting(hls_model, board: str, clock_mhz: float, start: int, margin=None) -> int | None:
    """The smallest LSTM reuse factor (powers of two from ``start``) whose estimate fits ``board``
    within ``margin`` (the most parallel design that fits); None if even ``MAX_REUSE_FACTOR`` does
    not. Restores ``start``."""
    from hls_project.convert import MAX_REUSE_FACTOR

    found = None
    reuse_factor = max(1, start)
    while reuse_factor <= MAX_REUSE_FACTOR and found is None:
        with_reuse_factor(hls_model, reuse_factor)
        if not estimate_network(hls_model, board, clock_mhz, margin).over():
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
        f"{'layer':32} {'cycles/call':>12} {'interval':>10} {'DSP':>7} {'BRAM36':>8} {'LUT':>9} {'FF':>9}",
    ]
    for layer in estimate.layers:
        res = layer.resources(estimate.part)
        lines.append(
            f"{layer.name[:32]:32} {layer.cycles_per_call:>12,} {layer.interval_per_call:>10,} {res['dsp']:>7,} "
            f"{res['bram36']:>8,.1f} "
            f"{res['lut']:>9,} {res['ff']:>9,}"
        )
    lines.append(
        f"{'total (estimate)':32} {'':>23} {total['dsp']:>7,} {total['bram36']:>8,.1f} "
        f"{total['lut']:>9,} {total['ff']:>9,}"
    )
    lines.append(
        f"{'available':32} {'':>23} {available['dsp']:>7,} {available['bram36']:>8,} "
        f"{available['lut']:>9,} {available['ff']:>9,}"
    )
    margin = estimate.margin
    lines.append(
        f"{'usable (margin)':32} {'':>23} {available['dsp'] * margin['dsp']:>7,.0f} "
        f"{available['bram36'] * margin['bram36']:>8,.1f} {available['lut'] * margin['lut']:>9,.0f} "
        f"{available['ff'] * margin['ff']:>9,.0f}"
    )
    limits, over = estimate.limits(), estimate.over()
    recurrence = f", {limits['recurrence']:,.1f} recurrence (h_t-1 -> h_t)" if "recurrence" in limits else ""
    lines += [
        f"estimate: {estimate.frames_per_s:,.1f} frames/s, {estimate.latency_frame_us:,.1f} us per frame, "
        f"{estimate.latency_call_us:,.1f} us per call of {estimate.frames_per_call} frames; "
        f"bottleneck: {estimate.bottleneck.name}",
        f"limits (estimate): {limits['compute']:,.1f} frames/s compute ({estimate.part.dsp:,} DSPs and "
        f"{estimate.lut_multipliers():,} LUT products busy every cycle), {limits['io']:,.1f} I/O "
        f"({BEAT_BITS}-bit stream, a beat per cycle){recurrence}; the estimate is "
        f"{estimate.frames_per_s / min(limits.values()):.1%} of the lowest",
        "fits the board within the margin (estimate)"
        if not over
        else f"does NOT fit (estimate): {', '.join(over)} over the margin",
    ]
    lines += folding_lines(estimate)
    lines += [
        f"{layer.name}: {layer.effective_macs_per_cycle:,.1f} dense-equivalent MACs per cycle "
        f"({layer.dense_macs / max(layer.macs, 1):,.1f}x fewer MACs than the dense LSTM; estimate)"
        for layer in estimate.layers
        if layer.dense_macs
    ]
    return "\n".join(lines)


def folding_lines(estimate: NetworkEstimate) -> list:
    """Per folded layer, each folding stage's reuse factor and, for its loops, II, multipliers and
    cycles per frame (estimates)."""
    lines = []
    for layer in estimate.layers:
        if not layer.folding:
            continue
        lines.append(f"folding of {layer.name} (reuse factor per stage; estimate):")
        for name, factor in layer.folding.items():
            loops = [stage for stage in layer.stages if stage.fold == name]
            detail = "; ".join(
                f"{stage.name}: II {stage.achieved_ii}, {stage.multipliers:,} multipliers, {stage.cycles:,} cycles"
                for stage in loops
            )
            lines.append(f"  {name:16} RF {factor:>5,}  {detail}" if loops else f"  {name:16} {factor:>8,}")
    return lines


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
    """``python -m overlay estimate``: convert (no files kept), fold every LSTM stage for
    ``--target-fps`` (the fastest design that fits when not given) unless ``--reuse-factor`` sets
    every stage, and print the table or ``--json``."""
    import sys
    import tempfile

    from overlay.folding import fold, with_folding
    from overlay.model_file import load_keras_model

    try:
        if args.reuse_factor is not None and args.target_fps is not None:
            raise ValueError("give --reuse-factor (every stage at one reuse factor) or --target-fps, not both")
        model = load_keras_model(args.model)
        clock = boards.board(args.board).clock_mhz
        with tempfile.TemporaryDirectory() as scratch:
            hls_model = convert_for_board(
                model,
                scratch,
                args.board,
                args.io_type,
                reuse_factor=args.reuse_factor or 1,
                head_reuse_factor=args.head_reuse_factor,
                echo=lambda message: None,
            )
            if args.reuse_factor is None:
                result = fold(hls_model, args.board, clock, args.target_fps, args.margin)
                if result.fits:
                    with_folding(hls_model, result.folding)
            estimate = estimate_network(hls_model, args.board, clock, args.margin)
            summary = estimate.as_dict()
            if args.simulate:
                from overlay.dataflow_sim import dataflow_summary

                summary["dataflow"] = dataflow_summary(hls_model, estimate)
    except (ValueError, FileNotFoundError) as err:
        print(f"[overlay] error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1) if args.json else format_table(estimate))
    if args.simulate and not args.json:
        simulated = summary["dataflow"]
        fifos = ", ".join(
            f"{fifo['name']} {fifo['needed_depth']} of {fifo['declared_depth']}" for fifo in simulated["fifos"]
        )
        print(f"dataflow simulation (estimate): {simulated['frames_per_s']:,.1f} frames/s; FIFO depths needed: {fifos}")
    if args.reuse_factor is None and not result.target_met and result.fits:
        print(
            f"[overlay] the target {args.target_fps:,g} frames/s is not reached within the margin (estimate)",
            file=sys.stderr,
        )
    return 0
