"""overlay.reports on real Vivado HLS / Vivado output from hls4ml's test suite (tests/data/hls4ml_reports).

The literal numbers below are copied from those files; each comment says where. The baselines are
hls4ml's per-tool synthesis results (JSON); the keys they hold are listed in ``BASELINE_KEYS``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hls4ml.report import parse_vivado_report

from overlay.reports import find_reports, read_csynth, read_vivado_utilization, read_wns

DATA = Path(__file__).parent / "data" / "hls4ml_reports"
VIVADO = DATA / "Vivado"
CSYNTH_XML = VIVADO / "myproject_csynth.xml"
VIVADO_SYNTH = VIVADO / "vivado_synth.rpt"

# CSynthesisReport keys of a Vivado / Vitis baseline (hls4ml.report.parse_vivado_report's names).
CSYNTH_KEYS = {
    "TargetClockPeriod",
    "EstimatedClockPeriod",
    "BestLatency",
    "WorstLatency",
    "IntervalMin",
    "IntervalMax",
    "BRAM_18K",
    "DSP",
    "FF",
    "LUT",
    "URAM",
    "AvailableBRAM_18K",
    "AvailableDSP",
    "AvailableFF",
    "AvailableLUT",
    "AvailableURAM",
}
ONEAPI_RESOURCES = {"alut", "reg", "ram", "dsp", "mlab"}
# tool -> the top-level keys every baseline of that tool has (Vitis 2023.1 ones also have CSimResults).
BASELINE_KEYS = {"Vivado": {"CSynthesisReport"}, "Vitis": {"CSynthesisReport"}, "oneAPI": {"report"}}


def test_read_csynth_real_report():
    assert read_csynth(CSYNTH_XML) == {
        "latency_best_cycles": 10,  # <Best-caseLatency>10
        "latency_worst_cycles": 10,  # <Worst-caseLatency>10
        "interval_min": 8,  # <Interval-min>8
        "interval_max": 8,  # <Interval-max>8
        "estimated_clock_ns": 4.049,  # <EstimatedClockPeriod>4.049, <unit>ns
        "target_clock_ns": 5.0,  # <TargetClockPeriod>5.00, <unit>ns
        # <AreaEstimates><Resources>: BRAM_18K 0, DSP48E 73, FF 7969, LUT 2532, URAM 0
        "resources": {"bram18": 0, "dsp": 73, "ff": 7969, "lut": 2532, "uram": 0},
        # <AreaEstimates><AvailableResources> (xc7z020-clg400-1): 280, 220, 106400, 53200, 0
        "available": {"bram18": 280, "dsp": 220, "ff": 106400, "lut": 53200, "uram": 0},
    }


def test_read_vivado_utilization_real_report():
    assert read_vivado_utilization(VIVADO_SYNTH) == {
        "lut": {"used": 1526, "available": 53200},  # 1. Slice Logic: | Slice LUTs* | 1526 | 0 | 53200 |
        "ff": {"used": 2428, "available": 106400},  # 1. Slice Logic: | Slice Registers | 2428 | 0 | 106400 |
        "bram36": {"used": 0.0, "available": 140.0},  # 2. Memory: | Block RAM Tile | 0 | 0 | 140 |
        "dsp": {"used": 66, "available": 220},  # 3. DSP: | DSPs | 66 | 0 | 220 |
    }


def _real_project(root: Path, top: str = "myproject") -> Path:
    """The real files where a Vivado HLS run leaves them (the layout hls4ml's test_report.py builds)."""
    report_dir = root / "myproject_prj" / "solution1" / "syn" / "report"
    report_dir.mkdir(parents=True)
    shutil.copy(VIVADO / "vivado_hls.app", root / "myproject_prj" / "vivado_hls.app")
    shutil.copy(VIVADO / "myproject_csynth.rpt", report_dir / f"{top}_csynth.rpt")
    shutil.copy(CSYNTH_XML, report_dir / f"{top}_csynth.xml")
    shutil.copy(VIVADO_SYNTH, root / "vivado_synth.rpt")
    return root


def test_readers_agree_with_hls4ml_report(tmp_path):
    project = _real_project(tmp_path)
    # The two lines of hls4ml's generated project.tcl that parse_vivado_report reads.
    (project / "project.tcl").write_text('set project_name "myproject"\nset backend "vivado"\n')
    hls4ml_report = parse_vivado_report(str(project))
    csynth, ours = hls4ml_report["CSynthesisReport"], read_csynth(CSYNTH_XML)
    assert int(csynth["BestLatency"]) == ours["latency_best_cycles"]
    assert int(csynth["IntervalMax"]) == ours["interval_max"]
    assert float(csynth["EstimatedClockPeriod"]) == ours["estimated_clock_ns"]
    assert int(csynth["DSP"]) == ours["resources"]["dsp"]
    assert int(csynth["AvailableLUT"]) == ours["available"]["lut"]
    synth, util = hls4ml_report["VivadoSynthReport"], read_vivado_utilization(VIVADO_SYNTH)
    assert int(synth["LUT"]) == util["lut"]["used"]
    assert int(synth["FF"]) == util["ff"]["used"]
    assert int(synth["DSP48E"]) == util["dsp"]["used"]
    assert float(synth["BRAM_18K"]) == util["bram36"]["used"]  # hls4ml's BRAM_18K is the Block RAM Tile row


@pytest.mark.parametrize("reader", [read_csynth, read_vivado_utilization, read_wns])
def test_missing_file_raises(reader, tmp_path):
    with pytest.raises(ValueError, match="absent.rpt"):
        reader(tmp_path / "absent.rpt")


@pytest.mark.parametrize(
    ("real", "reader"), [(CSYNTH_XML, read_csynth), (VIVADO_SYNTH, read_vivado_utilization), (VIVADO_SYNTH, read_wns)]
)
def test_truncated_report_raises(real, reader, tmp_path):
    data = real.read_bytes()
    cut = tmp_path / real.name
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=real.name):
        reader(cut)


def test_wrong_kind_of_report_raises():
    with pytest.raises(ValueError, match="vivado_synth.rpt"):
        read_wns(VIVADO_SYNTH)  # a utilization report has no Design Timing Summary
    with pytest.raises(ValueError, match="myproject_csynth.rpt"):
        read_csynth(VIVADO / "myproject_csynth.rpt")  # the text report, not the XML one


def test_find_reports_real_layout(tmp_path):
    project = _real_project(tmp_path)
    assert find_reports(project) == {
        "csynth": project / "myproject_prj/solution1/syn/report/myproject_csynth.xml",
        "vivado_synth": project / "vivado_synth.rpt",
    }


def test_find_reports_prefers_accelerator_top(tmp_path):
    # The same real bytes under both tops' names: only the choice of path is under test.
    project = _real_project(tmp_path)
    report_dir = project / "myproject_prj/solution1/syn/report"
    shutil.copy(CSYNTH_XML, report_dir / "myproject_axi_csynth.xml")
    assert find_reports(project)["csynth"] == report_dir / "myproject_axi_csynth.xml"


def test_find_reports_empty_and_missing_dir(tmp_path):
    assert find_reports(tmp_path) == {}
    with pytest.raises(ValueError, match="no_such_dir"):
        find_reports(tmp_path / "no_such_dir")


def test_baselines_load_with_expected_keys():
    paths = sorted((DATA / "baselines").rglob("*.json"))
    assert {path.relative_to(DATA / "baselines").parts[0] for path in paths} == set(BASELINE_KEYS)
    for path in paths:
        baseline = json.loads(path.read_text())
        tool = path.relative_to(DATA / "baselines").parts[0]
        assert BASELINE_KEYS[tool] <= baseline.keys(), path
        if tool == "oneAPI":
            hls = baseline["report"]["HLS"]
            assert set(hls["total"]) == set(hls["available"]) == ONEAPI_RESOURCES, path
            assert set(baseline["report"]["Loop"]) == {"worstFrequency", "worstII", "worstLatency"}, path
        else:
            assert set(baseline["CSynthesisReport"]) == CSYNTH_KEYS, path
