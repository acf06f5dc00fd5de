"""Read the vendor tools' reports of an hls4ml Vivado / VivadoAccelerator project, as numbers.

Units everywhere: latencies and intervals in clock cycles, clock periods and slack in ns, resources
in device primitives (``bram18``: 18 Kb block RAMs, ``bram36``: 36 Kb block RAM tiles, ``dsp``: DSP
slices, ``ff``: registers, ``lut``: LUTs, ``uram``: UltraRAMs).

``hls4ml.report.parse_vivado_report`` reads the same files, but only as a whole project directory
(it needs ``project.tcl``), as strings, without the utilization report's available counts, and
with the ``Block RAM Tile`` count (36 Kb tiles) under the key ``BRAM_18K``. The readers here take
one file each and read the same XML elements and table rows it does.

Every reader raises ``ValueError`` naming the file when it is missing or does not hold what it should.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

# hls4ml's build_prj.tcl: open_solution "solution1"
SOLUTION = "solution1"

# our key -> csynth.xml element(s): Vivado HLS names the DSP count DSP48E, Vitis HLS DSP.
_CSYNTH_RESOURCES = {
    "bram18": ("BRAM_18K",),
    "dsp": ("DSP48E", "DSP"),
    "ff": ("FF",),
    "lut": ("LUT",),
    "uram": ("URAM",),
}

# our key -> report_utilization row label(s): 7-series parts say Slice, UltraScale parts CLB.
_UTILIZATION_ROWS = {
    "lut": ("Slice LUTs", "CLB LUTs"),
    "ff": ("Slice Registers", "CLB Registers"),
    "bram36": ("Block RAM Tile",),
    "dsp": ("DSPs",),
}


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise ValueError(f"{path}: cannot read the report ({e.strerror})") from e


def _number(kind: type, text: str | None, path: Path, what: str) -> int | float:
    try:
        return kind(text)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {what} is {text!r}, not a number") from e


def read_csynth(path: str | Path) -> dict:
    """The summary of a Vivado / Vitis HLS C-synthesis report ``<top>_csynth.xml``.

    Returns ``latency_best_cycles``, ``latency_worst_cycles``, ``interval_min``, ``interval_max``
    (int clock cycles, None where the report says ``undef``: not known statically),
    ``estimated_clock_ns`` and ``target_clock_ns`` (float ns), ``resources`` (the HLS estimate)
    and ``available`` (the part's totals), each a dict of int counts ``bram18``, ``dsp``, ``ff``,
    ``lut``, ``uram`` (``uram`` 0 where the report has none).
    """
    path = Path(path)
    try:
        root = ET.fromstring(_read_text(path))
    except ET.ParseError as e:
        raise ValueError(f"{path}: not well-formed XML ({e})") from e

    def text(xpath: str) -> str:
        node = root.find(xpath)
        if node is None or node.text is None:
            raise ValueError(f"{path}: no {xpath} in the report")
        return node.text.strip()

    def cycles(tag: str) -> int | None:
        value = text(f"PerformanceEstimates/SummaryOfOverallLatency/{tag}")
        return None if value == "undef" else _number(int, value, path, tag)

    def resources(section: str) -> dict:
        node = root.find(f"AreaEstimates/{section}")
        if node is None:
            raise ValueError(f"{path}: no AreaEstimates/{section} in the report")
        values = {child.tag: child.text for child in node}
        counts = {}
        for key, tags in _CSYNTH_RESOURCES.items():
            tag = next((tag for tag in tags if tag in values), None)
            if tag is None and key != "uram":
                raise ValueError(f"{path}: no {' or '.join(tags)} in AreaEstimates/{section}")
            counts[key] = 0 if tag is None else _number(int, values[tag], path, f"{section}/{tag}")
        return counts

    return {
        "latency_best_cycles": cycles("Best-caseLatency"),
        "latency_worst_cycles": cycles("Worst-caseLatency"),
        "interval_min": cycles("Interval-min"),
        "interval_max": cycles("Interval-max"),
        "estimated_clock_ns": _number(
            float,
            text("PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod"),
            path,
            "EstimatedClockPeriod",
        ),
        "target_clock_ns": _number(float, text("UserAssignments/TargetClockPeriod"), path, "TargetClockPeriod"),
        "resources": resources("Resources"),
        "available": resources("AvailableResources"),
    }


def read_vivado_utilization(path: str | Path) -> dict:
    """Used and available resources from a Vivado ``report_utilization`` file (hls4ml's ``vivado_synth.rpt``).

    Returns ``lut``, ``ff`` (all registers), ``bram36`` (36 Kb block RAM tiles, float: a lone
    RAMB18 counts as half a tile) and ``dsp``, each a dict ``{"used": ..., "available": ...}``
    (int counts, float for ``bram36``). The columns are found by their header, so reports with
    Vivado's later ``Prohibited`` column read the same.
    """
    path = Path(path)
    rows = {}
    header = None
    for line in _read_text(path).splitlines():
        if line.startswith("+"):
            continue
        if not line.startswith("|"):
            header = None  # a table ends at the first line that is not part of its frame
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "Site Type":
            header = cells
        elif header is not None:
            if len(cells) != len(header):
                raise ValueError(f"{path}: row {line.strip()!r} has {len(cells)} cells, its header {len(header)}")
            rows.setdefault(cells[0].rstrip("*").strip(), dict(zip(header, cells, strict=True)))

    utilization = {}
    for key, labels in _UTILIZATION_ROWS.items():
        label = next((label for label in labels if label in rows), None)
        if label is None:
            raise ValueError(f"{path}: no {' or '.join(labels)} row in a Site Type table")
        kind = float if key == "bram36" else int
        utilization[key] = {
            column.lower(): _number(kind, rows[label].get(column), path, f"{label} {column}")
            for column in ("Used", "Available")
        }
    return utilization


def read_wns(path: str | Path) -> float | None:
    """Worst negative slack (ns) from the "Design Timing Summary" table of a Vivado ``report_timing_summary``.

    The first value under the ``WNS(ns)`` header (header line, dashes line, values line: the layout
    hls4ml.report.parse_vivado_report reads from ``design_1_wrapper_timing_summary_routed.rpt``);
    negative when timing fails, None where Vivado writes ``NA`` (no constrained paths).
    Untested on real output: hls4ml's repository holds no real timing summary.
    """
    path = Path(path)
    lines = _read_text(path).splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if "Design Timing Summary" in line)
        head = next(i for i in range(start, len(lines)) if lines[i].split()[:1] == ["WNS(ns)"])
        value = lines[head + 2].split()[0]
    except (StopIteration, IndexError) as e:
        raise ValueError(f"{path}: no Design Timing Summary table with a WNS(ns) value") from e
    return None if value == "NA" else _number(float, value, path, "WNS(ns)")


def find_reports(hls_dir: str | Path, project: str = "myproject") -> dict[str, Path]:
    """The reports an hls4ml Vivado / VivadoAccelerator project directory holds after a real run, by reader.

    Only those that exist are returned; the paths are those hls4ml's templates write and
    hls4ml.report.parse_vivado_report reads:

    - ``csynth`` (``read_csynth``): ``<project>_prj/solution1/syn/report/<top>_csynth.xml``, the
      top being ``<project>_axi`` (VivadoAccelerator) if its report exists, else ``<project>`` (Vivado);
    - ``vivado_synth`` (``read_vivado_utilization``): ``vivado_synth.rpt``, written when
      ``build_prj.tcl`` runs with ``vsynth=1``;
    - ``timing_summary`` (``read_wns``): ``<project>_vivado_accelerator/project_1.runs/impl_1/
      design_1_wrapper_timing_summary_routed.rpt``, left by the board design's implementation run.
    """
    hls_dir = Path(hls_dir)
    if not hls_dir.is_dir():
        raise ValueError(f"{hls_dir}: no such project directory")
    report_dir = hls_dir / f"{project}_prj" / SOLUTION / "syn" / "report"
    impl_dir = hls_dir / f"{project}_vivado_accelerator" / "project_1.runs" / "impl_1"
    candidates = {
        "csynth": (report_dir / f"{project}_axi_csynth.xml", report_dir / f"{project}_csynth.xml"),
        "vivado_synth": (hls_dir / "vivado_synth.rpt",),
        "timing_summary": (impl_dir / "design_1_wrapper_timing_summary_routed.rpt",),
    }
    found = {}
    for role, paths in candidates.items():
        path = next((path for path in paths if path.is_file()), None)
        if path is not None:
            found[role] = path
    return found
