"""The per-point task (the Dask task, ``run_point``): train, convert, C-simulate and estimate one
point at every reuse factor; ``--synthesize`` also runs the vendor tools (``overlay.explore.synthesis``)."""

from __future__ import annotations

import contextlib
import functools
import time
import traceback
from pathlib import Path

import numpy as np

from overlay.explore.points import point_id, point_label, precision_spec
from overlay.explore.synthesis import synthesize

MODEL_NAME = "model.h5"  # the trained model of a point, in its build folder (for overlay build)


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
    """Train, convert, C-simulate and estimate one point (see ``overlay.explore``); the Dask task.

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
