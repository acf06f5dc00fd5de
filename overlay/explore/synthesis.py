"""``--synthesize``: Vivado HLS C-synthesis and Vivado synthesis of a point's most parallel fitting
design, where the vendor tools are on PATH, and its reports next to the estimate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from overlay.explore.points import ExploreError

SYNTH_TOOLS = ("vivado_hls", "vivado")  # C-synthesis, then Vivado synthesis (vsynth) of the HLS project
SYNTH_COMMAND = 'vivado_hls -f build_prj.tcl "reset=1 csim=0 synth=1 cosim=0 validation=0 export=0 vsynth=1"'


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
