"""The Pareto front over the designs that fit the board (estimate): held-out accuracy (max),
frames/s (max) and utilization (min); its table, ``front.json`` and the plot ``front.png``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from overlay.explore.journal import RESULTS_NAME
from overlay.explore.points import point_label

OBJECTIVES = (("accuracy", True), ("frames_per_s", True), ("utilization", False))  # (design key, maximize)


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
