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
   expected outputs and the board package (``overlay.package``: ``pip install DIR`` on the board);
   the emulator's expected outputs are compared with the Keras model's on the same inputs, and an
   overlay that differs by more than 1 LSB of the output type is refused unless ``--force``
   (``refuse_keras_disagreement``; the manifest's ``keras_check``).

Without the tools, steps 1-3 and 5 still run and the build exits non-zero, naming the missing
tool and the commands to run on a machine that has it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path

from host import boards
from host.manifest import ACCELERATOR_VLNV, MANIFEST_NAME, REQUIRED_FIELDS, WEIGHTS_ROLE, Manifest, sha256_of
from overlay.axi_wrapper import compile_top, top_packings, write_wrapper
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


def is_overlay_manifest(path: Path) -> bool:
    """Whether ``path`` is a manifest this flow wrote: a JSON object with every field ``Manifest``
    requires (of any format version, edited or not: it is ours to replace)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and all(name in data for name in REQUIRED_FIELDS)


def check_clearable(out_dir: Path, model_path) -> None:
    """Refuse to clear an ``--out`` that holds the model (at any depth), or that is neither empty
    nor an overlay folder (this flow's manifest and only names of its artefacts)."""
    model = Path(model_path).resolve()
    if model.is_relative_to(out_dir.resolve()):
        raise ValueError(
            f"--out {out_dir} holds the model {model_path}: building there would delete it; use another folder"
        )
    entries = sorted(path.name for path in out_dir.iterdir())
    if not entries:
        return
    manifest = out_dir / MANIFEST_NAME
    if not manifest.exists():
        shown = ", ".join(entries[:5])
        raise ValueError(
            f"--out {out_dir} is not empty and holds no overlay ({MANIFEST_NAME}) but {shown}: use another folder"
        )
    if not is_overlay_manifest(manifest):
        raise ValueError(
            f"--out {out_dir}: its {MANIFEST_NAME} is not this flow's overlay manifest: use another folder"
        )
    others = [name for name in entries if name not in OVERLAY_ARTEFACTS]
    if others:
        raise ValueError(
            f"--out {out_dir} holds files that are not an overlay's ({', '.join(others[:5])}): use another folder"
        )


def prepare_output_folder(out_dir: Path, model_path) -> None:
    """Empty an existing ``--out`` for this build (``check_clearable`` first): a previous overlay's
    artefacts are removed, so nothing a vendor run left for another model is collected for this one."""
    check_clearable(out_dir, model_path)
    remove_artefacts(out_dir)


def remove_artefacts(out_dir: Path) -> None:
    """Remove a previous overlay's artefacts (or a failed build's) from ``out_dir``."""
    for name in OVERLAY_ARTEFACTS:
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


@contextmanager
def locked_output_folder(out_dir: Path):
    """Hold an exclusive ``flock`` on the folder itself while a build or collect writes into it
    (released when the process ends, however it ends); a second one is refused at once."""
    try:
        descriptor = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as err:
        raise ValueError(f"--out {out_dir}: cannot open the folder ({err.strerror})") from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(
                f"--out {out_dir}: another build is running into this folder (or collecting from it); "
                "wait for it to end or use another folder"
            ) from None
        yield
    finally:
        os.close(descriptor)


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


def read_train_report(path: Path) -> dict:
    """A ``train_report.json`` (``models.train``): an object with a ``dataset`` object and a
    ``models`` object of entries; anything else is refused, naming the file."""
    try:
        report = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{path} is not a readable training report ({err}): remove or fix it") from None
    if not (
        isinstance(report, dict)
        and isinstance(report.get("dataset"), dict)
        and isinstance(report.get("models"), dict)
        and all(isinstance(entry, dict) for entry in report["models"].values())
    ):
        raise ValueError(f"{path} is not a training report (an object with 'dataset' and 'models'): remove or fix it")
    return report


def training_dataset(model_path) -> dict:
    """The data set description of the ``train_report.json`` beside the model (empty if none),
    from a report that names this model file and, where it records one, its SHA-256; a report of
    another training run is ignored with a warning (the overlay then has no data set description)."""
    model_path = Path(model_path)
    path = model_path.parent / "train_report.json"
    if not path.exists():
        return {}
    report = read_train_report(path)
    entries = [entry for entry in report["models"].values() if Path(str(entry.get("path"))).name == model_path.name]
    hashes = [entry["sha256"] for entry in entries if "sha256" in entry]
    if not entries:
        stale = f"does not name {model_path.name}"
    elif hashes and sha256_of(model_path) not in hashes:
        stale = f"was written for another {model_path.name} (its sha256 differs)"
    else:
        return report["dataset"]
    log(f"warning: {path} {stale}: ignored, the overlay gets no data set description from it")
    return {}


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


def check_hwh(path: Path) -> None:
    """Refuse a .hwh that is not XML naming our accelerator top (a ``MODULE`` of VLNV
    ``ACCELERATOR_VLNV``, the IP ``host.pynq_driver`` looks for on the board)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise ValueError(f"{path} is not XML ({err}): not a Vivado hardware handoff") from None
    if not any(module.get("VLNV") == ACCELERATOR_VLNV for module in root.iter("MODULE")):
        raise ValueError(
            f"{path} has no module {ACCELERATOR_VLNV}: not the block design 'overlay build' wrote "
            "(rerun its commands in hls/, then collect again)"
        )


# what a vendor run's reports let collect check, by the manifest's ``measured`` key they fill
CHECKED_BY = {"hls": "C-synthesis report", "synth": "post-synthesis utilization", "wns_ns": "routed timing summary"}


def collected_message(out_dir: Path, measured: dict) -> str:
    """What ``collect`` did: the bitstream, and what of it the Vivado reports checked (or not)."""
    missing = [report for key, report in CHECKED_BY.items() if key not in measured]
    if not missing:
        return f"bitstream collected in {out_dir}, its timing and resources read from the Vivado reports"
    return (
        f"bitstream collected in {out_dir}, unchecked against the Vivado reports missing under "
        f"{out_dir / 'hls'}: {', '.join(missing)}"
    )


def collect(out_dir: Path, manifest: Manifest) -> Manifest:
    """Check the tools' reports (timing) and the .hwh (``check_hwh``), record the reports next to
    the estimate, copy the bitstream files next to the manifest (one base name, ``accelerator``)
    and record their hashes; rewrite the board package with them (``overlay.package``). Says which
    reports were missing (``collected_message``)."""
    hls_dir = out_dir / "hls"
    manifest.measured = measured_against_estimate(hls_dir, manifest.estimate)
    outputs = find_outputs(hls_dir, manifest.board)
    if "hwh" in outputs:
        check_hwh(outputs["hwh"])
    for role, path in outputs.items():
        target = out_dir / f"accelerator{path.suffix}"
        shutil.copyfile(path, target)
        manifest.add_file(role, out_dir, target)
    manifest.save(out_dir)
    write_package(out_dir, manifest)
    log(collected_message(out_dir, manifest.measured))
    return manifest


def convert_for_board(
    model,
    board: str,
    hls_dir: Path,
    io_type: str,
    reuse_factor,
    head_reuse_factor,
    force: bool,
    margin=None,
    target_fps=None,
):
    """Convert for ``board``: with ``reuse_factor`` (the expert override), every LSTM stage at it;
    else each stage at the reuse factor the folding pass (``overlay.folding``) chooses for
    ``target_fps`` (None: the fastest design that fits). Fits means within ``margin``
    (``overlay.estimate.DEFAULT_MARGIN`` when None); a design that does not fit is refused unless
    ``force`` (then it is built at reuse factor 1, or the one given). Returns ``(hls_model, estimate)``."""
    from overlay.estimate import convert_for_board, estimate_network, format_table, largest_fitting_setting
    from overlay.folding import fold

    if reuse_factor is not None and target_fps is not None:
        raise ValueError("give --reuse-factor (every stage at one reuse factor) or --target-fps, not both")
    clock_mhz = boards.board(board).clock_mhz

    def convert(factor, folding=None):
        hls_model = convert_for_board(
            model,
            hls_dir,
            board,
            io_type,
            reuse_factor=factor,
            head_reuse_factor=head_reuse_factor,
            reset_port=True,
            folding=folding,
            echo=print if folding is None else (lambda message: None),  # said by the first conversion
        )
        check_top_interface(hls_model)
        return hls_model, estimate_network(hls_model, board, clock_mhz, margin)

    if reuse_factor is not None:
        log(
            f"converting for {board} ({io_type}, every LSTM stage at reuse factor {reuse_factor}, "
            f"HLS clock {clock_mhz} MHz)"
        )
        hls_model, estimate = convert(reuse_factor)
        if estimate.over():
            fits = largest_fitting_setting(hls_model, board, clock_mhz, reuse_factor, margin)
            advice = f"--reuse-factor {fits} fits (estimate)" if fits else "no LSTM reuse factor up to 4,096 fits"
            refuse_unless_forced(estimate, advice, force)
    else:
        wanted = f"{target_fps:,g} frames/s" if target_fps else "the fastest design that fits"
        log(f"converting for {board} ({io_type}, HLS clock {clock_mhz} MHz); folding every LSTM stage for {wanted}")
        hls_model, estimate = convert(1)
        result = fold(hls_model, board, clock_mhz, target_fps, margin)
        if not result.fits:
            folded = result.estimate.total()
            needs = ", ".join(f"{key} {folded[key]:,}" for key in result.estimate.over())
            advice = f"not even the most folded design fits (estimate: {needs})"
            refuse_unless_forced(estimate, advice, force)
        else:
            if not result.target_met:
                log(
                    f"the target {target_fps:,g} frames/s is not reached within the margin: the fastest design "
                    f"that fits runs at {result.estimate.frames_per_s:,.1f} frames/s (estimate)"
                )
            unfolded = all(factor == 1 for stages in result.folding.values() for factor in stages.values())
            if not unfolded:  # the weights' layout follows the folding: convert again
                hls_model, estimate = convert(1, result.folding)
    print(format_table(estimate), flush=True)
    return hls_model, estimate


def refuse_unless_forced(estimate, advice: str, force: bool) -> None:
    """Refuse (``ValueError``) a design whose estimate exceeds the margin, with the numbers and
    ``advice``; with ``force``, say that it is built anyway."""
    over = estimate.over()
    if force:
        log(f"--force: building a design whose estimate exceeds {estimate.board} ({', '.join(over)})")
        return
    total, available = estimate.total(), estimate.part.available()
    needs = ", ".join(f"{key} {total[key]:,} of {available[key]:,} (margin {estimate.margin[key]:.0%})" for key in over)
    raise ValueError(
        f"the design does not fit {estimate.board} (estimate: {needs}); {advice}; --force builds it anyway"
    )


def refuse_keras_disagreement(check: dict, force: bool) -> None:
    """Refuse (``ValueError``) an overlay whose emulator differs from the Keras model by more than 1 LSB
    of the output type on the expected outputs' inputs (``overlay.package.keras_check``), with the
    largest difference and the number of differing outputs; with ``force``, say so and build it (the
    manifest records the disagreement); else say that they agree."""
    found = (
        f"the emulator differs from the Keras model by up to {check['max_abs_diff']:.6g} "
        f"({check['differing_outputs']} of {check['outputs']} outputs by more than 1 LSB = {check['lsb']:g} "
        "of the output type, on the seeded inputs of the expected outputs)"
    )
    if check["within_1_lsb"]:
        log(f"the emulator equals the Keras model within 1 LSB (max |diff| {check['max_abs_diff']:.3g})")
    elif force:
        log(f"--force: building an overlay that does not compute what Keras does: {found}")
    else:
        raise ValueError(f"{found}: the accelerator would not compute what Keras does; --force builds it anyway")


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
    margin=None,
    target_fps=None,
) -> Manifest:
    """Run the build steps above; returns the manifest (raises ``MissingToolError`` without Vivado).

    ``reuse_factor`` None: the most parallel LSTM reuse factor whose estimate fits the board within
    ``margin`` (resource -> usable share; ``overlay.estimate.DEFAULT_MARGIN`` when None), each LSTM
    stage folded for ``target_fps`` (``convert_for_board``).
    ``stream``: build the model's stateful one-frame-per-call copy (``models.train.streaming_copy``),
    for frame-by-frame video. ``out_dir`` is refused unless it is new, empty or an overlay folder
    that does not hold the model (``prepare_output_folder``), and while another build writes into it
    (``locked_output_folder``). A build that fails leaves nothing behind in ``out_dir``."""
    boards.board(board)  # an unknown board is refused before any work
    out_dir = Path(out_dir)
    check_output_folder(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    with locked_output_folder(out_dir):
        prepare_output_folder(out_dir, model_path)
        try:
            return build_into(
                model_path, board, out_dir, io_type, reuse_factor, head_reuse_factor, force, stream, margin, target_fps
            )
        except MissingToolError:
            raise  # everything but the vendor tools' outputs is written
        except BaseException:
            if created:
                shutil.rmtree(out_dir, ignore_errors=True)
            else:
                remove_artefacts(out_dir)  # the artefacts this build wrote
            raise


def build_into(
    model_path, board, out_dir: Path, io_type, reuse_factor, head_reuse_factor, force, stream, margin, target_fps
) -> Manifest:
    from fixedpoint.hls_types import from_hls4ml
    from hls_project.convert import family_layers

    hls_dir = out_dir / "hls"
    dataset = training_dataset(model_path)
    log(f"loading {model_path}")
    model = load_keras_model(model_path)
    if stream:
        from models.train import streaming_copy

        model = streaming_copy(model)
        log("building the stateful one-frame-per-call copy of the model (--stream)")
    hls_model, estimate = convert_for_board(
        model, board, hls_dir, io_type, reuse_factor, head_reuse_factor, force, margin, target_fps
    )
    summary = estimate.as_dict()
    (out_dir / "estimate.json").write_text(json.dumps(summary, indent=1))
    write_project(hls_model, hls_dir, board)
    log(f"HLS project and block design written to {hls_dir} (build_prj.tcl, design.tcl)")
    emulator = compile_emulator(hls_dir)
    log(f"accelerator C++ compiled with g++ -Wall: {emulator}")
    lstm_layers = family_layers(model)
    in_packing, out_packing = top_packings(hls_model)
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
        dataset=dataset,
        estimate=summary,
        in_pack_values=in_packing.pack,
        out_pack_values=out_packing.pack,
    )
    manifest.add_file("emulator", out_dir, emulator)
    for weights in sorted((hls_dir / "firmware" / "weights").glob("*.txt")):
        manifest.add_file(f"{WEIGHTS_ROLE}{weights.name}", out_dir, weights)
    manifest.save(out_dir)
    log(f"manifest written to {out_dir / 'manifest.json'}")
    testbench = write_testbench(hls_dir, manifest, emulator)
    log(f"C/RTL co-simulation testbench with the emulator's transfers: {testbench}")
    expected = write_expected_outputs(out_dir, manifest, model)
    log(f"expected outputs (seeded inputs, the emulator's outputs): {expected}")
    refuse_keras_disagreement(manifest.keras_check, force)
    package = write_package(out_dir, manifest)
    log(f"board package (on the board: python3 -m pip install DIR; pynq get-notebooks {package.name}): {package}")
    manifest.tools = run_tools(hls_dir, board)
    return collect(out_dir, manifest)


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
            margin=args.margin,
            target_fps=args.target_fps,
        )
    except MissingToolError as err:
        log(f"no bitstream built here: {err}")  # the expected outcome without Vivado, not an error
        return 3
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"[overlay] error: {err}", file=sys.stderr)
        return 2
    return 0


def main_collect(args) -> int:
    out_dir = Path(args.out)
    try:
        with locked_output_folder(out_dir):
            collect(out_dir, Manifest.load(out_dir))
    except (ValueError, FileNotFoundError) as err:
        print(f"[overlay] error: {err}", file=sys.stderr)
        return 2
    return 0
