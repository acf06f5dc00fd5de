"""``python -m overlay explore``: design-space exploration of one LSTM family on one board, on Dask.

A **point** is one trained model: the family's structure (the ``n_modes`` and ``rank`` arguments
of its ``QuantizedRNN.for_task``, whatever they mean to that family: TT/HT modes and ranks, the
block size of the block-circulant LSTM, 1/r of each row kept by the row-balanced sparse one) and
a weight precision. ``run_point(point, build_dir)`` is a pure function of the point (data,
seed and recipe are in it): train briefly (quantization-aware, ``models.train``), convert for the
board (``hls_project.convert``, VivadoAccelerator, io_stream), compile the C-simulation, measure
its held-out accuracy and its difference from Keras, and take the cost estimate
(``overlay.estimate``) at every reuse factor of the point: one **design** per reuse factor (the
reuse factor changes the hardware, not the arithmetic, so one trained model serves them all).

Points run as Dask tasks: a ``LocalCluster`` of two single-threaded worker processes by default,
or an existing cluster (``--scheduler ADDRESS``; a ``--data`` folder must then exist on every
worker). Each point builds in its own folder ``OUT/points/<id>``; results are appended, one JSON
line per point as it completes, to ``OUT/results.jsonl``, keyed by a stable point id (a hash of
the point), so a second run skips the points already there. A point that raises is recorded with
its error (``status: failed``) and the sweep goes on; ``--retry-failed`` runs those again.

The **Pareto front** is over the designs that fit the board (estimate): non-dominated in held-out
accuracy of the C-simulation (max), estimated frames/s (max) and estimated utilization, the
largest fraction of any board resource (DSP, BRAM36, LUT, FF) the design takes (min). It is
printed as a table and written to ``front.json`` and ``front.png``. Every frames/s and resource
figure is an estimate from our schedules; ``--synthesize`` (only where ``vivado_hls`` and
``vivado`` are on the workers' PATH) also runs Vivado HLS C-synthesis and Vivado synthesis on each
point's most parallel fitting design and records the reports (``overlay.reports``) next to it.

One file per job: ``points`` (the grid and each point's id), ``task`` (``run_point``, the Dask
task), ``synthesis`` (``--synthesize``), ``journal`` (``results.jsonl``), ``schedule`` (the Dask
scheduling) and ``front`` (the Pareto front, its table and plot). This module names them all and
holds the command, ``main_explore``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from overlay.explore.front import OBJECTIVES, design_rows, format_front, front_rows, pareto_front, plot_front, report
from overlay.explore.journal import RESULTS_NAME, drop_cut_line, pending, read_results
from overlay.explore.points import (
    STRUCTURE_KNOBS,
    ExploreError,
    point_id,
    point_label,
    precision_spec,
    structure_knobs,
    structure_signature,
    sweep_points,
)
from overlay.explore.schedule import KERAS_SWITCH, WORKER_CONFIG, dask_client, explore, worker_environment
from overlay.explore.synthesis import (
    SYNTH_COMMAND,
    SYNTH_TOOLS,
    check_synthesis_tools,
    measured,
    missing_synthesis_tools,
    synthesis_project,
    synthesize,
)
from overlay.explore.task import MODEL_NAME, design_figures, run_point, utilization

__all__ = [
    "KERAS_SWITCH",
    "MODEL_NAME",
    "OBJECTIVES",
    "RESULTS_NAME",
    "STRUCTURE_KNOBS",
    "SYNTH_COMMAND",
    "SYNTH_TOOLS",
    "WORKER_CONFIG",
    "ExploreError",
    "check_synthesis_tools",
    "dask_client",
    "design_figures",
    "design_rows",
    "drop_cut_line",
    "explore",
    "format_front",
    "front_rows",
    "main_explore",
    "measured",
    "missing_synthesis_tools",
    "pareto_front",
    "pending",
    "plot_front",
    "point_id",
    "point_label",
    "precision_spec",
    "read_results",
    "report",
    "run_point",
    "structure_knobs",
    "structure_signature",
    "sweep_points",
    "synthesis_project",
    "synthesize",
    "utilization",
    "worker_environment",
]


def main_explore(args) -> int:
    """``python -m overlay explore``: the sweep of ``args``, then the front."""
    from models.train import DataError

    task = {
        key: getattr(args, key)
        for key in ("data", "clips", "frames", "height", "width", "channels", "units", "seed", "epochs", "batch_size")
    }
    task["learning_rate"] = args.learning_rate
    try:
        points = sweep_points(
            args.family, args.modes, args.ranks, args.weight_bits, args.reuse_factors, args.board, task
        )
        if args.synthesize and args.scheduler is None:
            check_synthesis_tools()
        records = explore(points, Path(args.out), args.scheduler, args.workers, args.synthesize, args.retry_failed)
    except (ExploreError, DataError) as err:
        print(f"[explore] error: {err}", file=sys.stderr)
        return 2
    ids = {point_id(point) for point in points}
    report({key: record for key, record in records.items() if key in ids}, Path(args.out), args.board)
    return 0
