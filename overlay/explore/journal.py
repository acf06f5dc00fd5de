"""The results journal ``OUT/results.jsonl``: one JSON record per point as it completes, keyed by
the point's id, so a rerun skips what is there (and a line cut by a killed run is dropped)."""

from __future__ import annotations

import json
from pathlib import Path

from overlay.explore.points import ExploreError, point_id

RESULTS_NAME = "results.jsonl"


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
