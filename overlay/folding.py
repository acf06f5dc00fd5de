"""The folding pass: every pipelined stage with products gets its own reuse factor, from one target.

As FINN's SetFolding does for its MVAUs: start with every folding stage of every LSTM layer
(``LSTMFamilyLayer.folding_stages``: the input map's steps, the recurrent map, the state update)
at the most folded setting (``MAX_REUSE_FACTOR``: fewest multipliers), then repeatedly unfold (halve
the reuse factor of) the slowest stage on the design's critical path, i.e. of the half of the
bottleneck layer that sets its frame interval, as long as the estimate still fits the board within
the margin, until the target frames/s is met or nothing on the critical path can be unfolded.
The other half is left folded: calls overlap (the free-running top), so unfolding it would only
shorten a call's latency, not the frames/s. Stages without products are not folded (they run at
II 1).
Everything here reads estimates (``overlay.estimate``), not tool results.
"""

from __future__ import annotations

from dataclasses import dataclass

from hls_project.convert import MAX_REUSE_FACTOR


@dataclass(frozen=True)
class FoldingResult:
    """The chosen folding (``{Keras layer name: {stage: reuse factor}}``), its estimate, whether
    the target was met (always True without one) and whether even the most folded design fits."""

    folding: dict
    estimate: object  # overlay.estimate.NetworkEstimate
    target_met: bool
    fits: bool


def lstm_nodes(hls_model) -> list:
    """The converted model's LSTM family layers."""
    from hls_project.lstm_cell import LSTMFamilyLayer

    return [node for node in hls_model.get_layers() if isinstance(node, LSTMFamilyLayer)]


def with_folding(hls_model, folding: dict) -> None:
    """Set each LSTM layer's folding (keyed by Keras name) on a converted model, for estimates only
    (the written project keeps the folding it was converted with)."""
    from hls_project.names import keras_name

    for node in lstm_nodes(hls_model):
        node.set_attr("folding", dict(folding.get(keras_name(hls_model, node.name), {})))


def fold(hls_model, board: str, clock_mhz: float, target_fps: float | None = None, margin=None) -> FoldingResult:
    """The folding of every LSTM layer for ``target_fps`` (None: the fastest that fits), chosen
    greedily on the estimate; the model's own folding is restored afterwards."""
    from hls_project.names import keras_name
    from overlay.estimate import estimate_network

    if target_fps is not None and not target_fps > 0:
        raise ValueError(f"the target frames/s must be positive, got {target_fps}")
    nodes = {node.name: node for node in lstm_nodes(hls_model)}
    saved = {name: node.get_attr("folding") for name, node in nodes.items()}
    folding = {name: dict.fromkeys(node.folding_stages(), MAX_REUSE_FACTOR) for name, node in nodes.items()}
    frozen = set()  # (layer, stage) whose unfolding would not fit

    def estimate():
        for name, node in nodes.items():
            node.set_attr("folding", dict(folding[name]))
        return estimate_network(hls_model, board, clock_mhz, margin)

    try:
        current = estimate()
        fits = not current.over()
        while fits and (target_fps is None or current.frames_per_s < target_fps):
            step = slowest_foldable_stage(current, folding, frozen)
            if step is None:
                break
            layer, stage = step
            folding[layer][stage] //= 2
            candidate = estimate()
            if candidate.over():
                folding[layer][stage] *= 2
                frozen.add((layer, stage))
            else:
                current = candidate
    finally:
        for name, node in nodes.items():
            node.set_attr("folding", saved[name])
    met = target_fps is None or current.frames_per_s >= target_fps
    by_keras_name = {keras_name(hls_model, name): stages for name, stages in folding.items()}
    return FoldingResult(by_keras_name, current, met and fits, fits)


def slowest_foldable_stage(estimate, folding: dict, frozen: set):
    """``(layer, stage)``: the folding stage with the most cycles on the critical path (the
    bottleneck layer's slower half) that can still be unfolded; None when there is none (the
    bottleneck is the I/O or a stock layer, or every such stage is at reuse factor 1 or frozen)."""
    layer = estimate.bottleneck
    if layer.name not in folding:
        return None
    cycles = {}
    for stage in layer.critical_stages():
        if stage.fold and (layer.name, stage.fold) not in frozen and folding[layer.name][stage.fold] > 1:
            cycles[stage.fold] = cycles.get(stage.fold, 0) + stage.cycles
    return (layer.name, max(cycles, key=cycles.get)) if cycles else None
