"""The points of a sweep: one trained model each (the family's ``n_modes`` and ``rank``, a weight
precision), with every reuse factor of the sweep, its task and its board; a stable id per point."""

from __future__ import annotations

import hashlib
import inspect
import json

STRUCTURE_KNOBS = ("n_modes", "rank")  # the structural arguments every family's for_task takes


class ExploreError(ValueError):
    """A sweep that cannot start (bad family, knob, results file or missing vendor tool)."""


def precision_spec(weight_bits: int) -> dict:
    """``models.train``'s quantizers ``{name: (bits, integer)}`` with kernel and recurrent weights of
    ``weight_bits`` bits (1 integer bit) and the bias of ``weight_bits`` (2 integer bits)."""
    from models.train import DEFAULT_QUANTIZERS

    if weight_bits < 3:
        raise ExploreError(f"--weight-bits {weight_bits}: a weight needs at least 3 bits")
    bits = {"kernel_quantizer": (weight_bits, 1), "recurrent_quantizer": (weight_bits, 1)}
    return {**DEFAULT_QUANTIZERS, **bits, "bias_quantizer": (weight_bits, 2)}


def point_id(point: dict) -> str:
    """A stable id of a point: the first 16 hex digits of the SHA-256 of its sorted JSON."""
    return hashlib.sha256(json.dumps(point, sort_keys=True).encode()).hexdigest()[:16]


def point_label(point: dict) -> str:
    return f"{point['family']} modes {point['n_modes']} rank {point['rank']} w{point['weight_bits']}"


def structure_knobs(layer_class) -> dict:
    """The structural arguments of a family's ``for_task`` with their defaults (``STRUCTURE_KNOBS``)."""
    parameters = inspect.signature(layer_class.for_task).parameters
    missing = [knob for knob in STRUCTURE_KNOBS if knob not in parameters]
    if missing:
        raise ExploreError(f"family {layer_class.family!r}: for_task takes no {', '.join(missing)}")
    return {knob: parameters[knob].default for knob in STRUCTURE_KNOBS}


def structure_signature(layer_class, n_features: int, units: int, n_modes: int, rank: int) -> str | None:
    """The layer config ``for_task`` makes (its name dropped), as JSON: two knob settings with the
    same signature are the same model. None when the family refuses the setting (the point then
    runs and is recorded as failed, with the family's error)."""
    try:
        config = layer_class.for_task(n_features, units, n_modes, rank).get_config()
    except (ValueError, ZeroDivisionError):
        return None
    config.pop("name", None)
    return json.dumps(config, sort_keys=True, default=str)


def sweep_points(family: str, modes, ranks, weight_bits, reuse_factors, board: str, task: dict) -> list:
    """Every point of the grid ``modes x ranks x weight_bits``, each with all ``reuse_factors``.

    Settings the family maps to the same layer (e.g. ``n_modes`` for the block-circulant LSTM,
    which ignores it) are swept once. ``task``: ``data``, ``clips``, ``frames``, ``height``,
    ``width``, ``channels``, ``units``, ``seed``, ``epochs``, ``batch_size``, ``learning_rate``.
    """
    from models.families import get_family

    try:
        layer_class = get_family(family)
    except ValueError as err:
        raise ExploreError(f"--family: {err}") from None
    structure_knobs(layer_class)
    n_features = task["height"] * task["width"] * task["channels"]
    points, seen = [], set()
    for n_modes in modes:
        for rank in ranks:
            signature = structure_signature(layer_class, n_features, task["units"], n_modes, rank)
            if signature is not None and signature in seen:
                continue
            seen.add(signature)
            for bits in weight_bits:
                precision_spec(bits)
                points.append(
                    dict(
                        family=family,
                        n_modes=int(n_modes),
                        rank=int(rank),
                        weight_bits=int(bits),
                        reuse_factors=sorted(int(r) for r in reuse_factors),
                        board=board,
                        task=dict(task),
                    )
                )
    return points
