"""The Dask scheduling: a ``LocalCluster`` (with this process's Keras) or an existing cluster, every
pending point a task, each record appended to the journal as it completes."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from overlay.explore.journal import RESULTS_NAME, drop_cut_line, pending, read_results
from overlay.explore.points import point_id, point_label
from overlay.explore.synthesis import check_synthesis_tools
from overlay.explore.task import run_point

# Dask's defaults slow TensorFlow down in a worker: the statistical profiler walks the task's
# stack every 10 ms, and the nanny sets OMP_NUM_THREADS=1 and MALLOC_TRIM_THRESHOLD_ before
# spawning. Without both, a tiny point took 92 s instead of 143 s here (2 busy cores).
WORKER_CONFIG = {"distributed.worker.profile.enabled": False, "distributed.nanny.pre-spawn-environ": {}}
KERAS_SWITCH = "TF_USE_LEGACY_KERAS"  # tf.keras is tf_keras when "1" at its first use, else Keras 2.15


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
