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
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

RESULTS_NAME = "results.jsonl"
MODEL_NAME = "model.h5"  # the trained model of a point, in its build folder (for overlay build)
OBJECTIVES = (("accuracy", True), ("frames_per_s", True), ("utilization", False))  # (design key, maximize)
STRUCTURE_KNOBS = ("n_modes", "rank")  # the structural arguments every family's for_task takes
SYNTH_TOOLS = ("vivado_hls", "vivado")  # C-synthesis, then Vivado synthesis (vsynth) of the HLS project
# Dask's defaults slow TensorFlow down in a worker: the statistical profiler walks the task's
# stack every 10 ms, and the nanny sets OMP_NUM_THREADS=1 and MALLOC_TRIM_THRESHOLD_ before
# spawning. Without both, a tiny point took 92 s instead of 143 s here (2 busy cores).
WORKER_CONFIG = {"distributed.worker.profile.enabled": False, "distributed.nanny.pre-spawn-environ": {}}
KERAS_SWITCH = "TF_USE_LEGACY_KERAS"  # tf.keras is tf_keras when "1" at its first use, else Keras 2.15
SYNTH_COMMAND = 'vivado_hls -f build_prj.tcl "reset=1 csim=0 synth=1 cosim=0 validation=0 export=0 vsynth=1"'


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


@functools.lru_cache(maxsize=2)
def _task_data(data, clips, seed, frames, height, width, channels) -> tuple:
    """The seeded split of ``models.train.load_data``, kept per worker process (a folder is read once)."""
    from models.train import load_data

    return load_data(data, clips, seed, frames, height, width, channels)


def utilization(total: dict, available: dict) -> float:
    """The largest fraction of any board resource a design takes."""
    return max(total[key] / available[key] for key in available)


def design_figures(estimate) -> dict:
    """What a design's ``NetworkEstimate`` contributes to its row (all estimates)."""
    summary = estimate.as_dict()
    return {
        "frames_per_s": summary["frames_per_s"],
        "latency_us": summary["latency_us"],
        "bottleneck": summary["bottleneck"],
        "resources": summary["total"],
        "utilization": utilization(summary["total"], summary["available"]),
        "fits": summary["fits"],
    }


def run_point(point: dict, build_dir: str) -> dict:
    """Train, convert, C-simulate and estimate one point (see the module docstring); the Dask task.

    Returns the point's record: ``id``, ``point``, ``status`` (``ok`` or ``failed`` with
    ``error``), ``seconds``, and when ok: ``params``, ``keras_accuracy`` and ``accuracy`` (held-out,
    Keras and C-simulation), ``csim_max_abs_diff`` and ``csim_agreement`` (C-sim logits against
    Keras': largest difference, fraction of equal classes), ``designs`` (one per reuse factor:
    ``reuse_factor`` and ``design_figures``), ``measured`` (``--synthesize`` only). The trained
    model is saved as ``build_dir/model.h5`` (``python -m overlay build --model`` takes it), the
    point's console output goes to ``build_dir/log.txt``.
    """
    start = time.perf_counter()
    record = {"id": point_id(point), "point": point}
    build = Path(build_dir)
    build.mkdir(parents=True, exist_ok=True)
    with open(build / "log.txt", "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            record.update(status="ok", **_evaluate(point, build))
        except Exception as err:  # noqa: BLE001 - a failed point is a result, not the end of the sweep
            traceback.print_exc()
            record.update(status="failed", error=f"{type(err).__name__}: {err}")
    record["seconds"] = time.perf_counter() - start
    return record


def _evaluate(point: dict, build: Path) -> dict:
    from models.quiet import quiet_imports

    quiet_imports()
    import tensorflow as tf

    from host import boards
    from models.train import build_classifier, fit
    from overlay.estimate import convert_for_board, estimate_network, with_reuse_factor

    task, board = point["task"], point["board"]
    x, y, x_test, y_test, description = _task_data(
        task["data"], task["clips"], task["seed"], task["frames"], task["height"], task["width"], task["channels"]
    )
    tf.keras.utils.set_random_seed(task["seed"])
    model = build_classifier(
        point["family"],
        x.shape[1],
        x.shape[2],
        len(description["class_names"]),
        task["units"],
        point["n_modes"],
        point["rank"],
        quantizers=precision_spec(point["weight_bits"]),
    )
    keras_accuracy = fit(
        model, x, y, x_test, y_test, task["epochs"], task["batch_size"], task["learning_rate"], point_label(point)
    )
    model.save(build / MODEL_NAME)
    clock = boards.board(board).clock_mhz
    hls_model = convert_for_board(model, build / "hls", board, reuse_factor=point["reuse_factors"][0])
    hls_model.compile()
    csim = np.asarray(hls_model.predict(np.ascontiguousarray(x_test))).reshape(len(x_test), -1)
    keras = model.predict(x_test, verbose=0)
    designs = []
    for reuse_factor in point["reuse_factors"]:
        with_reuse_factor(hls_model, reuse_factor)
        designs.append({"reuse_factor": reuse_factor, **design_figures(estimate_network(hls_model, board, clock))})
    result = {
        "params": int(model.count_params()),
        "keras_accuracy": float(keras_accuracy),
        "accuracy": float(np.mean(csim.argmax(1) == y_test)),
        "csim_max_abs_diff": float(np.max(np.abs(csim - keras))),
        "csim_agreement": float(np.mean(csim.argmax(1) == keras.argmax(1))),
        "designs": designs,
    }
    if point.get("synthesize"):
        result["measured"] = synthesize(model, point, build)
    return result


def missing_synthesis_tools() -> list:
    """The ``SYNTH_TOOLS`` not on this process's PATH."""
    return [tool for tool in SYNTH_TOOLS if shutil.which(tool) is None]


def check_synthesis_tools(client=None) -> None:
    """Refuse ``--synthesize`` before any work when a worker (or, without ``client``, this
    machine) lacks a vendor tool, naming the tool and the worker."""
    if client is None:
        found = {"this machine": missing_synthesis_tools()}
    else:
        found = client.run(missing_synthesis_tools)
    lacking = {where: tools for where, tools in found.items() if tools}
    if lacking:
        where, tools = next(iter(lacking.items()))
        raise ExploreError(
            f"--synthesize needs {' and '.join(SYNTH_TOOLS)} on PATH: {', '.join(tools)} not found on {where}"
            f"{f' (and {len(lacking) - 1} more workers)' if len(lacking) > 1 else ''}; run without --synthesize "
            "for estimates only, or point --scheduler at workers with Vivado"
        )


def synthesize(model, point: dict, build: Path) -> dict:
    """Vivado HLS C-synthesis and Vivado synthesis (``SYNTH_COMMAND``) of the point's most parallel
    design that fits (estimate; the least parallel swept if none does), its reports next to the
    estimate (``measured``)."""
    missing = missing_synthesis_tools()
    if missing:
        raise ExploreError(f"--synthesize: {', '.join(missing)} not found on PATH")
    hls_dir, reuse_factor, estimate = synthesis_project(model, point, build)
    result = subprocess.run(SYNTH_COMMAND, shell=True, cwd=hls_dir)
    if result.returncode != 0:
        raise RuntimeError(f"'{SYNTH_COMMAND}' failed with exit code {result.returncode} in {hls_dir}")
    return measured(hls_dir, reuse_factor, estimate)


def synthesis_project(model, point: dict, build: Path) -> tuple:
    """Write the HLS project of the point's most parallel fitting design into
    ``build/synth_rf<N>``; returns ``(folder, N, its estimate as a dict)``."""
    from host import boards
    from overlay.estimate import convert_for_board, estimate_network

    board, clock = point["board"], boards.board(point["board"]).clock_mhz
    for reuse_factor in point["reuse_factors"]:
        hls_dir = build / f"synth_rf{reuse_factor}"
        hls_model = convert_for_board(model, hls_dir, board, reuse_factor=reuse_factor)
        estimate = estimate_network(hls_model, board, clock)
        if not estimate.over():
            break
    hls_model.write()
    return hls_dir, reuse_factor, estimate.as_dict()


def measured(hls_dir: Path, reuse_factor: int, estimate: dict) -> dict:
    """The vendor reports of a synthesized project (``overlay.reports``, read by
    ``overlay.build.measured_against_estimate``: C-synthesis, Vivado utilization, the error per
    resource against ``estimate``), with the design's ``reuse_factor``; a project without a
    C-synthesis report is an error naming its folder."""
    from overlay.build import measured_against_estimate
    from overlay.reports import find_reports

    if "csynth" not in find_reports(hls_dir):
        raise ExploreError(f"{hls_dir}: no C-synthesis report after '{SYNTH_COMMAND}'")
    return {"reuse_factor": reuse_factor, **measured_against_estimate(hls_dir, estimate)}


def read_results(path: Path) -> dict:
    """``{point id: record}`` from a results file, the last record of an id winning; a line cut
    short by a killed run is skipped (its point runs again), any other bad line is an error."""
    records = {}
    if not path.exists():
        return records
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):
                continue
            raise ExploreError(f"{path}, line {number}: not a JSON record ({err})") from None
        if not isinstance(record, dict) or "id" not in record or "status" not in record:
            raise ExploreError(f"{path}, line {number}: a record needs 'id' and 'status'")
        records[record["id"]] = record
    return records


def drop_cut_line(path: Path) -> None:
    """Remove a last line that a killed run left without its newline (``read_results`` skips it),
    so the next record appended starts a line of its own."""
    if path.exists():
        text = path.read_text()
        if text and not text.endswith("\n"):
            path.write_text(text[: text.rfind("\n") + 1])


def pending(points: list, records: dict, retry_failed: bool = False) -> list:
    """The points without a record (or with a failed one, when ``retry_failed``)."""
    keep = ("ok",) if retry_failed else ("ok", "failed")
    return [point for point in points if records.get(point_id(point), {}).get("status") not in keep]


def worker_environment() -> dict:
    """The environment a local worker needs to run TensorFlow as this process does: tf.keras the
    same Keras package as here (``KERAS_SWITCH``).

    Importing QKeras sets ``TF_USE_LEGACY_KERAS=1`` (tensorflow-model-optimization does) after
    this process chose Keras 2.15; a worker spawned with it inherited would load tf_keras instead,
    which AutoGraph does not exempt from conversion as it does the ``keras`` package: every
    ``fit``/``predict`` trace then converts tf_keras' own code, and a tiny point trained 3-5x
    slower in a worker than here."""
    import tensorflow as tf

    legacy = tf.keras.Model.__module__.startswith("tf_keras")
    return {KERAS_SWITCH: "1" if legacy else "0"}


@contextlib.contextmanager
def dask_client(scheduler: str | None, n_workers: int = 2):
    """A client of the cluster at ``scheduler``, or of a new ``LocalCluster`` of ``n_workers``
    single-threaded processes without the profiler (``WORKER_CONFIG``), with this process's
    Keras (``worker_environment``); closed on exit."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with (
        dask.config.set(WORKER_CONFIG),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env=worker_environment(),
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def explore(
    points: list,
    out: Path,
    scheduler: str | None = None,
    n_workers: int = 2,
    synthesize: bool = False,
    retry_failed: bool = False,
) -> dict:
    """Run every pending point on Dask, appending each record to ``out/results.jsonl`` as it
    completes (tqdm progress); returns all records of the file ``{id: record}``."""
    from distributed import as_completed
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / RESULTS_NAME
    records = read_results(results)
    todo = pending(points, records, retry_failed)
    skipped = len(points) - len(todo)
    print(f"[explore] {len(points)} points, {skipped} already in {results}, {len(todo)} to run", flush=True)
    if not todo:
        return records
    with dask_client(scheduler, n_workers) as client:
        if synthesize:
            check_synthesis_tools(client)
        drop_cut_line(results)
        futures = {}
        for point in todo:
            task = {**point, "synthesize": True} if synthesize else point
            future = client.submit(
                run_point, task, str(out / "points" / point_id(point)), key=f"explore-{point_id(point)}"
            )
            futures[future] = point
        with open(results, "a") as sink:
            bar = tqdm(total=len(futures), desc="explore", unit="point", file=sys.stdout, ascii=True)
            for future in as_completed(futures):
                point = futures[future]
                try:
                    record = future.result()
                except Exception as err:  # noqa: BLE001 - e.g. a worker that died: recorded, not fatal
                    record = {
                        "id": point_id(point),
                        "point": point,
                        "status": "failed",
                        "error": f"{type(err).__name__}: {err}",
                    }
                record["id"] = point_id(point)  # the key of the point as submitted (without "synthesize")
                records[record["id"]] = record
                sink.write(json.dumps(record) + "\n")
                sink.flush()
                bar.set_postfix_str(f"{point_label(point)}: {record['status']}")
                bar.update(1)
            bar.close()
    return records


def design_rows(records) -> list:
    """One row per design of every completed point: the point's knobs and figures with the design's."""
    rows = []
    for record in records:
        if record.get("status") != "ok":
            continue
        point = record["point"]
        for design in record["designs"]:
            row = {key: point[key] for key in ("family", "n_modes", "rank", "weight_bits")}
            row.update({key: record[key] for key in ("id", "params", "accuracy", "csim_max_abs_diff")})
            rows.append({**row, **design})
    return rows


def pareto_front(values, maximize) -> np.ndarray:
    """Which rows of ``values`` (n, k) no other row dominates (at least as good in every column,
    better in one); ``maximize``: per column, True to maximize, False to minimize. Returns a
    boolean mask (n,). Sorted sweep: a row can only be dominated by one before it in
    lexicographic order of the (negated where maximized) columns."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(maximize):
        raise ValueError(f"values must be (n, {len(maximize)}), got {values.shape}")
    cost = np.where(np.asarray(maximize, bool), -values, values)  # every column minimized
    order = np.lexsort(cost.T[::-1])
    front = np.zeros(len(cost), bool)
    kept = []
    for index in order:
        row = cost[index]
        if not any(np.all(cost[k] <= row) and np.any(cost[k] < row) for k in kept):
            front[index] = True
            kept.append(index)
    return front


def front_rows(rows: list) -> list:
    """The designs that fit the board and are on the Pareto front of ``OBJECTIVES``, by accuracy."""
    fitting = [row for row in rows if row["fits"]]
    if not fitting:
        return []
    values = [[row[key] for key, _ in OBJECTIVES] for row in fitting]
    mask = pareto_front(values, [maximize for _, maximize in OBJECTIVES])
    chosen = [row for row, on in zip(fitting, mask, strict=True) if on]
    return sorted(chosen, key=lambda row: (-row["accuracy"], -row["frames_per_s"]))


def format_front(front: list, board: str) -> str:
    header = ("family", "modes", "rank", "w", "RF", "params", "accuracy", "frames/s (est.)", "utilization (est.)")
    lines = [f"Pareto front on {board}: C-sim held-out accuracy, frames/s and utilization (estimates)"]
    lines.append("  ".join(f"{h:>{max(len(h), 8)}}" for h in header))
    for row in front:
        cells = (
            row["family"],
            row["n_modes"],
            row["rank"],
            row["weight_bits"],
            row["reuse_factor"],
            f"{row['params']:,}",
            f"{row['accuracy']:.3f}",
            f"{row['frames_per_s']:,.0f}",
            f"{row['utilization']:.1%}",
        )
        lines.append("  ".join(f"{c:>{max(len(h), 8)}}" for c, h in zip(cells, header, strict=True)))
    return "\n".join(lines)


def plot_front(rows: list, front: list, path: Path, board: str) -> None:
    """Accuracy against estimated frames/s, every design (colour: utilization), the front marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    if rows:
        points = axis.scatter(
            [r["frames_per_s"] for r in rows],
            [r["accuracy"] for r in rows],
            c=[min(r["utilization"], 1.5) for r in rows],
            cmap="viridis",
            marker=".",
        )
        figure.colorbar(points, label="utilization (estimate, clipped at 1.5)")
    axis.scatter(
        [r["frames_per_s"] for r in front],
        [r["accuracy"] for r in front],
        facecolors="none",
        edgecolors="red",
        s=80,
        label="Pareto front (fits)",
    )
    axis.set_xscale("log")
    axis.set_xlabel(f"frames/s on {board} (estimate)")
    axis.set_ylabel("held-out accuracy (C-simulation)")
    axis.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def report(records: dict, out: Path, board: str) -> list:
    """Print the front, write ``front.json`` and ``front.png``; returns the front's rows."""
    out = Path(out)
    ordered = list(records.values())
    failed = [record for record in ordered if record["status"] != "ok"]
    for record in failed:
        print(f"[explore] failed: {point_label(record['point'])}: {record['error']}")
    rows = design_rows(ordered)
    front = front_rows(rows)
    print(format_front(front, board))
    summary = {"board": board, "objectives": dict(OBJECTIVES), "estimate": True, "front": front, "designs": rows}
    (out / "front.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot_front(rows, front, out / "front.png", board)
    print(
        f"[explore] {len(ordered) - len(failed)} points ok, {len(failed)} failed; written: "
        f"{out / RESULTS_NAME}, {out / 'front.json'}, {out / 'front.png'}"
    )
    return front


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
