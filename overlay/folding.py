"""The folding pass: every pipelined stage with products gets its own reuse factor, from one target.

As FINN's SetFolding does for its MVAUs: start with every folding stage of every LSTM layer
(``LSTMFamilyLayer.folding_stages``: the input map's steps, the recurrent map, the state update)
at the most folded setting (``MAX_REUSE_FACTOR``: fewest multipliers), then repeatedly unfold (lower
the reuse factor of, one rung of 1, 2, 3, 4, 6, 8, 12, ...: ``unfolded``) a stage on the design's
critical path, i.e. of the half of the bottleneck layer that sets its frame interval (of its
stages, the one that saves the most cycles for the least of the board: ``unfolding_score``), as
long as the estimate still fits the board within the margin, until the target frames/s is met or
nothing on the critical path can be unfolded. When even the most folded design does not fit, a
layer's folding options (``folding_options``: e.g. narrower streams between its steps) are
narrowed first.
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


def unfolded(reuse_factor: int) -> int:
    """The next reuse factor below ``reuse_factor`` on the ladder 1, 2, 3, 4, 6, 8, 12, 16, ...
    (2^k and 3 * 2^k): steps of at most 1.5x, so a stage can be balanced against its neighbours
    more finely than by halving (a step at 3 where 2 is too fast and 4 too slow)."""
    power = 1 << (reuse_factor - 1).bit_length() - 1  # the largest power of two below reuse_factor
    return 3 * power // 2 if power >= 2 and 3 * power // 2 < reuse_factor else power


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
        for name, option, value in narrowings(nodes):  # the layers' folding options, while nothing fits
            if not current.over():
                break
            folding[name][option] = value
            current = estimate()
        fits = not current.over()
        while fits and (target_fps is None or current.frames_per_s < target_fps):
            options = foldable_stages(current, folding, frozen)
            if not options:
                break
            best, best_score = None, -1.0
            for layer, stage in options:
                before = folding[layer][stage]
                folding[layer][stage] = unfolded(before)
                candidate = estimate()
                folding[layer][stage] = before
                if candidate.over():
                    frozen.add((layer, stage))
                    continue
                score = unfolding_score(current, candidate, layer)
                if score > best_score:
                    best, best_score = (layer, stage, candidate), score
            if best is not None:
                layer, stage, current = best
                folding[layer][stage] = unfolded(folding[layer][stage])
    finally:
        for name, node in nodes.items():
            node.set_attr("folding", saved[name])
    met = target_fps is None or current.frames_per_s >= target_fps
    by_keras_name = {keras_name(hls_model, name): stages for name, stages in folding.items()}
    return FoldingResult(by_keras_name, current, met and fits, fits)


def narrowings(nodes: dict):
    """``(layer, option, value)``: every layer's narrower settings of its folding options
    (``LSTMFamilyLayer.folding_options``), in the order they are tried."""
    for name, node in nodes.items():
        for option, values in node.folding_options().items():
            for value in values[1:]:
                yield name, option, value


def foldable_stages(estimate, folding: dict, frozen: set) -> list:
    """``[(layer, stage)]``: the folding stages on the critical path (the bottleneck layer's slower
    half) that can still be unfolded; empty when there is none (the bottleneck is the I/O or a
    stock layer, or every such stage is at reuse factor 1 or frozen). When that half is a pipeline
    of processes (``ahead_pipeline``; a fused map's ``pipeline_stages``) only its slowest stage
    counts: unfolding another would not make it faster."""
    layer = estimate.bottleneck
    if layer.name not in folding:
        return []
    cycles = {}
    for stage in layer.critical_stages():
        cycles[stage.fold] = cycles.get(stage.fold, 0) + stage.cycles
    folds = list(cycles)
    if layer.ahead_pipeline and layer.critical_stages()[0] is layer.stages[0]:
        folds = [max(cycles, key=cycles.get)]
    elif layer.pipeline_stages:  # the pipeline's slowest process, and the stages after it
        first = layer.ahead_stages
        pipeline = layer.stages[first : first + layer.pipeline_stages]
        after = layer.stages[first + layer.pipeline_stages :]
        folds = [max(pipeline, key=lambda stage: stage.cycles).fold] + [stage.fold for stage in after]
    return [
        (layer.name, fold)
        for fold in folds
        if fold and (layer.name, fold) not in frozen and folding[layer.name][fold] > 1
    ]


def unfolding_score(current, candidate, layer_name: str) -> float:
    """Cycles an unfolding takes off the layer's frame interval per share of the board it adds
    (the largest share of any resource, within the margin), so that of two stages on a critical
    half the one that saves more for less goes first (a state update unfolded for free before a
    recurrent map whose next rung doubles its multipliers)."""
    before = next(layer for layer in current.layers if layer.name == layer_name).call_interval
    after = next(layer for layer in candidate.layers if layer.name == layer_name).call_interval
    used, added = current.utilization(), candidate.utilization()
    cost = max(max(added[key] - used[key], 0.0) / current.margin[key] for key in used)
    return (before - after) / (cost + 1e-6)
