"""``python -m overlay build``: Keras model -> HLS project + block design -> bitstream + manifest.

Steps (each printed as it runs):
1. load the model (with ``models.custom_objects()``) and convert it with hls4ml's
   VivadoAccelerator backend for the board (AXI-stream with DMA); estimate its cost on the board
   (``overlay.estimate``: printed, written to ``estimate.json`` and the manifest), choose the most
   parallel LSTM reuse factor that fits unless one is given, and refuse a design that does not
   fit unless ``--force``;
2. write the HLS project, our accelerator top (``overlay.axi_wrapper``) and the board's Vivado
   block design (hls4ml's ``design.tcl``), at the board record's widths (``overlay.board_widths``);
3. compile the accelerator top with g++ into the emulator library ``emulator/libaccel.so``
   (the host's emulated backend; also proves the generated C++ compiles), and write the top's
   C/RTL co-simulation testbench from transfers recorded on it (``overlay.testbench``);
4. run the vendor tools when they are on PATH (Vivado HLS, then Vivado; Vitis ``v++`` for Alveo),
   failing on any non-zero exit, and collect ``.bit`` + ``.hwh`` (or ``.xclbin``);
5. write ``manifest.json`` (model hash, shapes, types, board, tool versions, file hashes), the
   expected outputs and the board package (``overlay.package``: ``pip install DIR`` on the board).

Without the tools, steps 1-3 and 5 still run and the build exits non-zero, naming the missing
tool and the commands to run on a machine that has it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from host import boards
from host.manifest import MANIFEST_NAME, WEIGHTS_ROLE, Manifest, sha256_of
from overlay.axi_wrapper import compile_top, write_wrapper
from overlay.board_widths import set_board_widths
from overlay.model_file import load_keras_model
from overlay.package import PACKAGE_ARTEFACTS, write_expected_outputs, write_package
from overlay.testbench import write_testbench

# The widest top-level port or stream element the flow writes: Vivado HLS stops at 65,536 bits
# for a reshaped port and splits a stream of arrays into one FIFO per element; 4,096 is the
# working limit hls4ml itself uses for complete partitioning.
MAX_TOP_BITS = 4096
HLS_COMMAND = 'vivado_hls -f build_prj.tcl "reset=1 synth=1 csim=0 cosim=0 validation=0 export=1 vsynth=0"'


class MissingToolError(RuntimeError):
    """A vendor tool is not on PATH; the project is written and the message says what to run."""


def log(message: str) -> None:
    print(f"[overlay] {message}", flush=True)


OVERLAY_ARTEFACTS = (
    "hls",
    MANIFEST_NAME,
    "estimate.json",
    "accelerator.bit",
    "accelerator.hwh",
    "accelerator.xclbin",
    *PACKAGE_ARTEFACTS,
)


def check_output_folder(out_dir: Path) -> None:
    """Refuse, before any work, an ``--out`` that is a file, lies under a file, or cannot be written."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file, not a folder")
    existing = next(parent for parent in (out_dir, *out_dir.parents) if parent.exists())
    if not existing.is_dir():
        raise ValueError(f"--out {out_dir} lies under {existing}, which is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out_dir}: {existing} is not writable")


def prepare_output_folder(out_dir: Path) -> None:
    """An empty folder for this build: a previous overlay's artefacts are removed (so nothing a
    vendor run left for another model can be collected for this one); a file, or a folder with
    anything else in it, is refused before any work."""
    check_output_folder(out_dir)
    if out_dir.is_dir():
        others = sorted(p.name for p in out_dir.iterdir() if p.name not in OVERLAY_ARTEFACTS)
        if others:
            raise ValueError(
                f"--out {out_dir} holds files that are not an overlay's ({', '.join(others[:5])}): use another folder"
            )
        for name in OVERLAY_ARTEFACTS:
            path = out_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def check_top_interface(hls_model) -> None:
    """Refuse a design whose top-level port (io_parallel: the whole call's values reshaped into one
    word) or stream element (io_stream: a row of the tensor, or the narrowed input of our LSTM
    layers, ``hls_project.input_stream``) is wider than ``MAX_TOP_BITS``, with the numbers."""
    from hls_project.input_stream import stream_element_values

    io_type = hls_model.config.get_config_value("IOType")
    for role, variable in (
        ("input", hls_model.get_input_variables()[0]),
        ("output", hls_model.get_output_variables()[0]),
    ):
        values = variable.size() if io_type == "io_parallel" else stream_element_values(variable)
        bits = values * variable.type.precision.width
        if bits > MAX_TOP_BITS:
            what = "port (all values of a call in one word)" if io_type == "io_parallel" else "stream element"
            raise ValueError(
                f"the accelerator's {role} {what} would be {bits:,} bits ({values:,} values x "
                f"{variable.type.precision.width} bits), wider than the {MAX_TOP_BITS:,} bits this flow writes "
                f"(Vivado HLS stops at 65,536 for a port and makes one FIFO per stream element): use "
                f"{'io_stream or ' if io_type == 'io_parallel' else ''}fewer values per frame"
            )


def training_dataset(model_path) -> dict:
    """The data set description ``models.train`` left beside the model (empty if none)."""
    report = Path(model_path).parent / "train_report.json"
    return json.loads(report.read_text()).get("dataset", {}) if report.exists() else {}


def compile_emulator(hls_dir: Path, project: str = "myproject") -> Path:
    """g++ -Wall the accelerator top + model into ``emulator/libaccel.so`` (warnings are shown)."""
    target = hls_dir / "emulator" / "libaccel.so"
    target.parent.mkdir(exist_ok=True)
    log_text = compile_top(
        hls_dir,
        ["emulator_bridge.cpp"],
        target,
        "-fPIC",
        "-shared",
        # every project names its layers config2, ...: keep each library's statics (LSTM state,
        # buffers) its own when several are loaded in one process
        "-fno-gnu-unique",
        "-Wl,-Bsymbolic",
        # the weights' .txt files are read from the folder the host names (accel_set_weights_dir),
        # not from this build's path: the overlay folder is relocatable
        "-DWEIGHTS_DIR=accel_weights_dir()",
        "-include",
        "emulator_weights.h",
        project=project,
    )
    (target.parent / "compile.log").write_text(log_text)
    report_warnings(log_text, target.parent / "compile.log")
    return target


def warning_origins(log_text: str) -> dict:
    """The g++ warning lines of a log by origin: ``ours`` (our headers, the top, the bridge),
    ``ap_types`` (the fixed-point headers hls4ml bundles), ``hls4ml`` (its nnet_utils), ``other``."""
    from hls_project import HEADERS

    ours = (*(path.name for path in HEADERS.glob("nnet_*.h")), "_axi.cpp", "emulator_bridge.cpp")
    origins = {"ours": [], "ap_types": [], "hls4ml": [], "other": []}
    for line in log_text.splitlines():
        if "warning:" not in line:
            continue
        source = line.split(":", 1)[0]
        origin = (
            "ours"
            if any(name in source for name in ours)
            else "ap_types"
            if "ap_types/" in source
            else "hls4ml"
            if "nnet_utils/" in source
            else "other"
        )
        origins[origin].append(line)
    return origins


def report_warnings(log_text: str, log_path: Path) -> None:
    """Say where the compiler's warnings come from; print those in our code in full."""
    origins = warning_origins(log_text)
    counts = ", ".join(f"{len(lines)} in {name}" for name, lines in origins.items() if lines)
    if not counts:
        log("g++ -Wall -Wextra: no warnings")
        return
    log(
        f"g++ -Wall -Wextra warnings: {counts} (ap_types: the fixed-point headers hls4ml bundles, "
        f"hls4ml: its nnet_utils; full log {log_path})"
    )
    for line in origins["ours"] + origins["other"]:
        print(line, file=sys.stderr)


def tool_commands(board: str) -> list:
    record = boards.board(board)
    if record.kind == "alveo":
        link = (
            f"mkdir -p xo_files xclbin_files && cd xclbin_files && v++ -t hw --platform {record.platform} "
            "--link ../xo_files/myproject_kernel.xo -o myproject_kernel.xclbin "
            "--user_ip_repo_paths ../myproject_prj/solution1/impl/ip"
        )
        return [("vivado_hls", HLS_COMMAND), ("vivado", "vivado -mode batch -source design.tcl"), ("v++", link)]
    return [("vivado_hls", HLS_COMMAND), ("vivado", "vivado -mode batch -source design.tcl")]


def tool_version(tool: str) -> str:
    result = subprocess.run([tool, "-version"], capture_output=True, text=True)
    return (result.stdout or result.stderr).strip().splitlines()[0] if result.returncode == 0 else "unknown"


def run_tools(hls_dir: Path, board: str) -> dict:
    """Run every vendor step; raise ``MissingToolError`` before starting if a tool is missing."""
    steps = tool_commands(board)
    alveo = boards.board(board).kind == "alveo"
    missing = [tool for tool, _ in steps if shutil.which(tool) is None]
    if missing:
        commands = "\n".join(f"  {command}" for _, command in steps)
        raise MissingToolError(
            f"{', '.join(missing)} not found on PATH: the HLS project and block design are written to "
            f"{hls_dir}; on a machine with Vivado HLS / Vivado{' / Vitis' if alveo else ''} "
            f"run, in that directory:\n{commands}\n"
            f"then: python -m overlay collect --out {shlex.quote(str(hls_dir.parent))}"
        )
    versions = {}
    for tool, command in steps:
        log(f"running {command}")
        result = subprocess.run(command, shell=True, cwd=hls_dir)
        if result.returncode != 0:
            raise RuntimeError(f"'{command}' failed with exit code {result.returncode} in {hls_dir}")
        versions[tool] = tool_version(tool)
    return versions


def find_outputs(hls_dir: Path, board: str) -> dict:
    """The bitstream files the vendor flow left behind, by role."""
    alveo = boards.board(board).kind == "alveo"
    patterns = {"xclbin": "**/*.xclbin"} if alveo else {"bitstream": "**/*.bit", "hwh": "**/*.hwh"}
    found = {}
    for role, pattern in patterns.items():
        matches = sorted(hls_dir.glob(pattern))
        if not matches:
            raise FileNotFoundError(
                f"no {pattern} under {hls_dir}: the vendor tools have not produced a bitstream there "
                f"(run the commands 'overlay build' printed, in that directory, then collect again)"
            )
        found[role] = matches[-1]
    return found


def measured_against_estimate(hls_dir: Path, estimate: dict) -> dict:
    """What the vendor tools reported (``overlay.reports``), next to the build's estimate.

    A negative worst slack stops here: a bitstream that failed timing is not handed to the host.
    Returns ``{"wns_ns", "hls", "synth", "error"}`` for the reports that exist, ``error`` being
    (measured - estimate) / measured per resource of the C-synthesis report.
    """
    from overlay.estimate import relative_errors
    from overlay.reports import find_reports, read_csynth, read_vivado_utilization, read_wns

    reports, measured = find_reports(hls_dir), {}
    if "timing_summary" in reports:
        wns = read_wns(reports["timing_summary"])
        if wns is not None and wns < 0:
            raise ValueError(
                f"the design failed timing (worst negative slack {wns} ns in {reports['timing_summary']}): "
                "no bitstream collected; raise the reuse factor or lower the clock and rebuild"
            )
        measured["wns_ns"] = wns
    if "vivado_synth" in reports:
        measured["synth"] = read_vivado_utilization(reports["vivado_synth"])
    if "csynth" in reports:
        hls = read_csynth(reports["csynth"])
        measured["hls"] = hls
        tool = dict(hls["resources"], bram36=hls["resources"]["bram18"] / 2)
        estimated = estimate.get("total", {})
        measured["error"] = relative_errors(tool, estimated)
        for key, error in measured["error"].items():
            shown = "n/a" if error is None else f"{error:+.0%}"
            log(f"{key}: {tool[key]:,} from Vivado HLS, {estimated[key]:,} estimated (error {shown})")
    return measured


def collect(out_dir: Path, manifest: Manifest) -> Manifest:
    """Check the tools' reports (timing), record them next to the estimate, copy the bitstream
    files next to the manifest (one base name, ``accelerator``) and record their hashes; rewrite
    the board package with them (``overlay.package``)."""
    hls_dir = out_dir / "hls"
    manifest.measured = measured_against_estimate(hls_dir, manifest.estimate)
    for role, path in find_outputs(hls_dir, manifest.board).items():
        target = out_dir / f"accelerator{path.suffix}"
        shutil.copyfile(path, target)
        manifest.add_file(role, out_dir, target)
    manifest.save(out_dir)
    write_package(out_dir, manifest)
    return manifest


def convert_for_board(model, board: str, hls_dir: Path, io_type: str, reuse_factor, head_reuse_factor, force: bool):
    """Convert for ``board`` at the LSTM reuse factor given, or (None) the most parallel one whose
    estimate fits; refuse a design whose estimate exceeds the board unless ``force``. Returns
    ``(hls_model, estimate)``."""
    from overlay.estimate import convert_for_board, estimate_network, format_table, largest_fitting_setting

    clock_mhz = boards.board(board).clock_mhz

    def convert(factor):
        log(f"converting for {board} ({io_type}, LSTM reuse factor {factor}, HLS clock {clock_mhz} MHz)")
        hls_model = convert_for_board(
            model, hls_dir, board, io_type, reuse_factor=factor, head_reuse_factor=head_reuse_factor, reset_port=True
        )
        check_top_interface(hls_model)
        return hls_model, estimate_network(hls_model, board, clock_mhz)

    hls_model, estimate = convert(reuse_factor or 1)
    if estimate.over():
        fits = largest_fitting_setting(hls_model, board, clock_mhz, reuse_factor or 1)
        if reuse_factor is None and fits is not None:
            over = ", ".join(estimate.over())
            log(f"reuse factor 1 exceeds {board} (estimate: {over}); {fits} is the most parallel that fits (estimate)")
            hls_model, estimate = convert(fits)
        elif not force:
            total, available = estimate.total(), estimate.part.available()
            needs = ", ".join(f"{key} {total[key]:,} of {available[key]:,}" for key in estimate.over())
            advice = f"--reuse-factor {fits} fits (estimate)" if fits else "no LSTM reuse factor up to 4,096 fits"
            raise ValueError(f"the design does not fit {board} (estimate: {needs}); {advice}; --force builds it anyway")
        else:
            log(f"--force: building a design whose estimate exceeds {board} ({', '.join(estimate.over())})")
    print(format_table(estimate), flush=True)
    return hls_model, estimate


@contextmanager
def accelerator_writer_sees_the_frames_input():
    """While hls4ml 1.3.0's VivadoAccelerator writer runs, its accelerator config sees only the
    model's first input (the frames). It asserts a single input because its own AXI wrapper
    handles one; we replace that wrapper (``overlay.axi_wrapper``), whose second input is the
    stateful layers' reset port. Everything else it writes (the HLS project with both inputs,
    the block design) does not depend on it."""
    from hls4ml.backends import VivadoAcceleratorConfig

    original = VivadoAcceleratorConfig.__init__

    def frames_only(self, config, model_inputs, model_outputs):
        original(self, config, model_inputs[:1], model_outputs)

    VivadoAcceleratorConfig.__init__ = frames_only
    try:
        yield
    finally:
        VivadoAcceleratorConfig.__init__ = original


def write_project(hls_model, hls_dir: Path, board: str) -> None:
    """Write hls4ml's HLS and board projects, our accelerator top in place of its wrapper, and the
    board's stream and memory widths in them (``overlay.board_widths``)."""
    with accelerator_writer_sees_the_frames_input():
        hls_model.write()
    write_wrapper(hls_model, hls_dir)
    set_board_widths(hls_dir, boards.board(board))


def build_overlay(
    model_path,
    board: str,
    out_dir,
    io_type="io_stream",
    reuse_factor=None,
    head_reuse_factor=None,
    force=False,
    stream=False,
) -> Manifest:
    """Run the build steps above; returns the manifest (raises ``MissingToolError`` without Vivado).

    ``reuse_factor`` None: the most parallel LSTM reuse factor whose estimate fits the board.
    ``stream``: build the model's stateful one-frame-per-call copy (``models.train.streaming_copy``),
    for frame-by-frame video. A build that fails leaves nothing behind in ``out_dir``."""
    boards.board(board)  # an unknown board is refused before any work
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    prepare_output_folder(out_dir)
    try:
        return build_into(model_path, board, out_dir, io_type, reuse_factor, head_reuse_factor, force, stream)
    except MissingToolError:
        raise  # everything but the vendor tools' outputs is written
    except BaseException:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        else:
            prepare_output_folder(out_dir)  # the artefacts this build wrote
        raise


def build_into(model_path, board, out_dir: Path, io_type, reuse_factor, head_reuse_factor, force, stream) -> Manifest:
    from fixedpoint.hls_types import from_hls4ml
    from hls_project.convert import family_layers

    hls_dir = out_dir / "hls"
    log(f"loading {model_path}")
    model = load_keras_model(model_path)
    if stream:
        from models.train import streaming_copy

        model = streaming_copy(model)
        log("building the stateful one-frame-per-call copy of the model (--stream)")
    hls_model, estimate = convert_for_board(model, board, hls_dir, io_type, reuse_factor, head_reuse_factor, force)
    summary = estimate.as_dict()
    (out_dir / "estimate.json").write_text(json.dumps(summary, indent=1))
    write_project(hls_model, hls_dir, board)
    log(f"HLS project and block design written to {hls_dir} (build_prj.tcl, design.tcl)")
    emulator = compile_emulator(hls_dir)
    log(f"accelerator C++ compiled with g++ -Wall: {emulator}")
    lstm_layers = family_layers(model)
    manifest = Manifest(
        board=board,
        io_type=io_type,
        input_shape=list(model.input_shape[1:]),
        output_shape=list(model.output_shape[1:]),
        input_type=from_hls4ml(hls_model.get_input_variables()[0].type.precision),
        output_type=from_hls4ml(hls_model.get_output_variables()[0].type.precision, rounding_matters=False),
        stateful=any(layer.stateful for layer in lstm_layers),
        model_sha256=sha256_of(model_path),
        layers=[{"name": layer.name, "class": type(layer).__name__} for layer in lstm_layers],
        dataset=training_dataset(model_path),
        estimate=summary,
    )
    manifest.add_file("emulator", out_dir, emulator)
    for weights in sorted((hls_dir / "firmware" / "weights").glob("*.txt")):
        manifest.add_file(f"{WEIGHTS_ROLE}{weights.name}", out_dir, weights)
    manifest.save(out_dir)
    log(f"manifest written to {out_dir / 'manifest.json'}")
    testbench = write_testbench(hls_dir, manifest, emulator)
    log(f"C/RTL co-simulation testbench with the emulator's transfers: {testbench}")
    expected = write_expected_outputs(out_dir, manifest)
    log(f"expected outputs (seeded inputs, the emulator's outputs): {expected}")
    package = write_package(out_dir, manifest)
    log(f"board package (on the board: python3 -m pip install DIR; pynq get-notebooks {package.name}): {package}")
    manifest.tools = run_tools(hls_dir, board)
    collect(out_dir, manifest)
    log(f"bitstream collected in {out_dir}")
    return manifest


def main_build(args) -> int:
    try:
        build_overlay(
            args.model,
            args.board,
            args.out,
            io_type=args.io_type,
            reuse_factor=args.reuse_factor,
            head_reuse_factor=args.head_reuse_factor,
            force=args.force,
            stream=args.stream,
        )
    except MissingToolError as err:
        print(f"[overlay] error: {err}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"[overlay] error: {err}", file=sys.stderr)
        return 2
    return 0


def main_collect(args) -> int:
    out_dir = Path(args.out)
    try:
        manifest = Manifest.load(out_dir)
        collect(out_dir, manifest)
    except (ValueError, FileNotFoundError) as err:
        print(f"[overlay] error: {err}", file=sys.stderr)
        return 2
    log(f"bitstream collected in {out_dir}")
    return 0
