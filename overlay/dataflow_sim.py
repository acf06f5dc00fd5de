"""A token-level simulation of the accelerator's dataflow: FIFO depths and steady-state frames/s.

As FINN sizes its FIFOs by simulating the stitched design, the processes of our top (the beat
reader, each layer, the LSTM's input and recurrent halves, the beat writer) are chained by bounded
FIFOs, and each process runs its stages (``hls_project.cost.Stage``, the estimate's own schedule)
one after another per call: a stage that reads the process's input FIFO takes its tokens evenly
over its cycles (stalling while the FIFO is empty), a stage that writes the output FIFO produces its
tokens evenly (stalling while it is full), the others take their cycles. Token times are computed
per FIFO (write and read time of every token) and iterated to the fixed point of the two
constraints: a token is read after it is written, and written after the token ``depth`` places
before it was read. A chain whose times never settle is reported as a deadlock naming the FIFO.

The steady-state interval between model calls gives frames/s (compared with the estimate's in
the tests); ``fifo_depths`` finds, per FIFO, the smallest depth that keeps that rate. Estimates:
the simulation reads our schedules, not RTL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

READ, WRITE, COMPUTE = "read", "write", "compute"


@dataclass(frozen=True)
class Phase:
    """``cycles`` of a process per call; ``kind`` READ / WRITE: it takes / gives ``tokens``."""

    name: str
    kind: str
    cycles: float
    tokens: int = 0


@dataclass(frozen=True)
class Process:
    """A dataflow process: its phases, run in order ``calls`` times per model call. A process
    starts the next model call as soon as it has finished this one (the free-running top: no
    handshake makes the processes of a region wait for each other between calls)."""

    name: str
    phases: tuple
    calls: int = 1

    def tokens(self, kind: str) -> int:
        return self.calls * sum(phase.tokens for phase in self.phases if phase.kind == kind)


@dataclass
class Fifo:
    """The FIFO between process ``index`` and ``index + 1`` of the chain."""

    name: str
    depth: int
    write_times: list = field(default_factory=list)
    read_times: list = field(default_factory=list)


class DeadlockError(RuntimeError):
    """The token times of a FIFO never settle: some process waits on it forever."""


def run_process(process: Process, model_calls: int, ready: list | None, space: list | None) -> tuple:
    """Token times of one process for ``model_calls`` calls: ``(read times, write times, call ends)``.

    ``ready[j]``: when input token j is in the FIFO (the first process reads nothing);
    ``space[j]``: when output token j finds room (None: no output FIFO, or unbounded)."""
    time, reads, writes, ends = 0.0, [], [], []
    for _ in range(model_calls):
        for phase in process.phases * process.calls:
            if phase.kind == COMPUTE or not phase.tokens:
                time += phase.cycles
                continue
            step = phase.cycles / phase.tokens
            for _ in range(phase.tokens):
                if phase.kind == READ:
                    if len(reads) >= len(ready):
                        raise DeadlockError(
                            f"deadlock: {process.name} waits for token {len(reads)} of its input FIFO, "
                            f"whose writer gives {len(ready)}"
                        )
                    time = max(time + step, ready[len(reads)] + 1)
                    reads.append(time)
                else:
                    time += step
                    if space is not None and len(writes) < len(space):
                        time = max(time, space[len(writes)])
                    writes.append(time)
        ends.append(time)
    return reads, writes, ends


def simulate(processes: list, depths: list, model_calls: int = 3, max_rounds: int = 200) -> dict:
    """Token times of the chain ``processes[0] -> FIFO 0 -> processes[1] -> ...``, ``depths[k]``
    tokens in FIFO k. Returns ``{"ends": each process's end of each model call, "call_ends": the last
    process's last read of each model call, "fifos"}``; raises ``DeadlockError`` when the times do
    not settle."""
    fifos = [Fifo(f"fifo {k}", depth) for k, depth in enumerate(depths)]
    ends = [[0.0] * model_calls for _ in processes]
    previous = None
    for _ in range(max_rounds):
        for k, process in enumerate(processes):
            ready = fifos[k - 1].write_times if k > 0 else None
            space = None
            if k < len(fifos):
                fifo = fifos[k]
                # token j finds room once token j - depth has been read (the first depth at once)
                space = [0.0] * fifo.depth + fifo.read_times if fifo.read_times else None
            reads, writes, ends[k] = run_process(process, model_calls, ready, space)
            if k > 0:
                fifos[k - 1].read_times = reads
            if k < len(fifos):
                fifos[k].write_times = writes
        state = [tuple(fifo.read_times) for fifo in fifos] + [tuple(end) for end in ends]
        if state == previous:
            per_call = processes[-1].tokens(READ)
            reads = fifos[-1].read_times
            call_ends = [reads[(call + 1) * per_call - 1] for call in range(model_calls)] if per_call else []
            return {"ends": ends, "call_ends": call_ends, "fifos": fifos}
        previous = state
    stuck = next(
        (fifo.name for fifo in fifos if len(fifo.write_times) != len(fifo.read_times)), fifos[0].name if fifos else ""
    )
    raise DeadlockError(f"deadlock: the token times of {stuck} do not settle in {max_rounds} rounds")


def steady_interval(processes: list, depths: list) -> float:
    """Cycles between the ends of two consecutive model calls in steady state."""
    call_ends = simulate(processes, depths)["call_ends"]
    return call_ends[-1] - call_ends[-2]


def fifo_depths(processes: list, depths: list, tolerance: float = 0.01) -> list:
    """Per FIFO, the smallest depth (powers of two up to the given one) at which the steady-state
    interval stays within ``tolerance`` of the interval at the given depths."""
    reference = steady_interval(processes, depths)
    chosen = list(depths)
    for k, depth in enumerate(depths):
        candidate = 1
        while candidate < depth:
            trial = chosen[:k] + [candidate] + chosen[k + 1 :]
            if steady_interval(processes, trial) <= reference * (1 + tolerance):
                break
            candidate *= 2
        chosen[k] = min(candidate, depth)
    return chosen


def network_processes(hls_model, estimate) -> tuple:
    """The io_stream accelerator as a chain: ``(processes, depths, fifo names)``. The top's reader
    and writer (a pack per ``beats_per_pack`` beats), every layer (an LSTM with a recurrent map as
    its two halves joined by the ``zx`` FIFO of 4 n_state values; a fused one as one process; the
    stages' cycles per frame as the estimate counts them), joined by the top's ``x`` and ``y``
    FIFOs (``overlay.axi_wrapper.FIFO_DEPTH``) and hls4ml's layer streams (their declared depth)."""
    from overlay.axi_wrapper import FIFO_DEPTH, top_packings

    if hls_model.config.get_config_value("IOType") != "io_stream":
        raise ValueError("the dataflow simulation models io_stream designs (io_parallel runs the model as one call)")
    in_packing, out_packing = top_packings(hls_model)
    reader, *layers, writer = estimate.layers
    in_packs = hls_model.get_input_variables()[0].size() // in_packing.pack
    out_packs = hls_model.get_output_variables()[0].size() // out_packing.pack
    processes = [Process("top: beat reader", (Phase("beats", WRITE, reader.cycles_per_call, in_packs),))]
    depths, names = [FIFO_DEPTH], ["x"]
    nodes = [node for node in hls_model.get_layers() if node.name in {layer.name for layer in layers}]
    tokens_in = in_packs
    for node, layer in zip(nodes, layers, strict=True):
        out = node.get_output_variable()
        tokens_out = out.size() // out.shape[-1] if len(out.shape) > 1 else 1
        halves = layer_processes(layer, tokens_in, tokens_out)
        for half in halves[:-1]:
            processes.append(half)
            depths.append(4 * int(node.get_attr("n_out")))
            names.append(f"{layer.name}: zx")
        processes.append(halves[-1])
        depths.append(int(out.pragma[1]) if isinstance(out.pragma, tuple) else 1)
        names.append(f"{layer.name}: output")
        tokens_in = tokens_out
    depths[-1], names[-1] = FIFO_DEPTH, "y"
    processes.append(Process("top: beat writer", (Phase("beats", READ, writer.cycles_per_call, out_packs),)))
    return processes, depths, names


def layer_processes(layer, tokens_in: int, tokens_out: int) -> list:
    """One layer's processes: its first stage reads the call's (an LSTM: the frame's) input tokens,
    its last stage of a call writes the output tokens (an LSTM with a recurrent map: the input half
    sends 4 n_state pre-activations per frame, the recurrent half reads them in its preactivation
    and writes the output after the call's last frame)."""
    frames = layer.calls
    if frames == 1 and not layer.recurrent:  # a stock layer: read, compute, write
        cycles = [stage.cycles for stage in layer.stages]
        phases = [Phase("read", READ, max(cycles[0], tokens_in), tokens_in)]
        phases += [Phase(stage.name, COMPUTE, stage.cycles) for stage in layer.stages[1:]]
        return [Process(layer.name, (*phases, Phase("write", WRITE, tokens_out, tokens_out)))]
    per_frame_in = tokens_in // frames
    ahead, rest = layer.stages[: layer.ahead_stages], layer.stages[layer.ahead_stages :]
    frame_phases = []
    if ahead:
        zx = next(stage.iterations for stage in rest if stage.name == "preactivation")  # the FIFO's values
        if layer.ahead_pipeline:  # the steps' own pipeline: a frame at the slowest one's pace
            slowest = max(stage.cycles for stage in ahead)
            phases = [Phase("frame pipeline", READ, slowest, per_frame_in), Phase("zx", WRITE, 0, zx)]
        else:  # its last stage (the send, or the map's last loop) writes the frame's zx as it runs
            send = ahead[-1]
            phases = [Phase(ahead[0].name, READ, ahead[0].cycles, per_frame_in)]
            phases += [Phase(stage.name, COMPUTE, stage.cycles) for stage in ahead[1:-1]]
            phases.append(Phase(send.name, WRITE, send.cycles, zx))
        input_half = Process(f"{layer.name}: input half", tuple(phases) * frames)
        for stage in rest:
            kind = READ if stage.name == "preactivation" else COMPUTE
            frame_phases.append(Phase(stage.name, kind, stage.cycles, stage.iterations if kind == READ else 0))
    elif layer.pipeline_stages:  # fused, its map a pipeline: the frame read over the pipeline's latency
        frame_phases.append(Phase("frame pipeline", READ, layer.pipeline_cycles, per_frame_in))
        frame_phases += [Phase(stage.name, COMPUTE, stage.cycles) for stage in rest[layer.pipeline_stages :]]
    else:  # fused: the first stage reads the frame
        frame_phases.append(Phase(rest[0].name, READ, rest[0].cycles, per_frame_in))
        frame_phases += [Phase(stage.name, COMPUTE, stage.cycles) for stage in rest[1:]]
    body = tuple(frame_phases) * frames + (Phase("output", WRITE, tokens_out, tokens_out),)
    recurrent = Process(f"{layer.name}: {'recurrent half' if ahead else 'frames'}", body)
    return [input_half, recurrent] if ahead else [recurrent]


def dataflow_summary(hls_model, estimate) -> dict:
    """The simulated steady state of an io_stream design next to the estimate: frames/s, and per
    FIFO its declared depth and the smallest that keeps the rate (``fifo_depths``)."""
    processes, depths, names = network_processes(hls_model, estimate)
    needed = fifo_depths(processes, depths)
    interval = steady_interval(processes, depths)
    return {
        "estimate": True,
        "frames_per_s": estimate.clock_mhz * 1e6 * estimate.frames_per_call / interval,
        "fifos": [
            {"name": name, "declared_depth": depth, "needed_depth": need}
            for name, depth, need in zip(names, depths, needed, strict=True)
        ],
    }
