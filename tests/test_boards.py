"""The board records (``host.boards``) and the widths ``overlay build`` writes for them: the generated
``project.tcl``, ``design.tcl`` (Zynq) or RTL kernel (Alveo), the top's ``ap_axiu`` and the manifest
are parsed here and compared with the record, so a frame can not arrive cut in half unnoticed."""

import ast
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import small_classifier, tcl_is_complete

from host import boards
from host.manifest import Manifest
from host.protocol import BEAT_BITS

# set_property -dict [list CONFIG.<key> <value> ...] [get_bd_cells <cell>]
BD_SETTINGS = re.compile(r"set_property -dict \[list ([^\]]*)\] \[get_bd_cells (\w+)\]")
TCL_WORD = re.compile(r"\{([^}]*)\}|\$\{(\w+)\}|(\S+)")
TCL_SET = re.compile(r"^set (\w+) (.*)$", re.MULTILINE)
# the block automation that connects the DMA's memory-map masters to a PS port
DMA_TO_PS = re.compile(r"Master \{/axi_dma_0/M_AXI_(?:MM2S|S2MM)\} Slave \{/(\w+)/(\w+)\}")
# the PS configuration key of each port's data width (Zynq UltraScale+ calls S_AXI_HPC0_FPD S_AXI_GP0 there)
PS_PORT_WIDTH = {"S_AXI_HP0": "PCW_S_AXI_HP0_DATA_WIDTH", "S_AXI_HPC0_FPD": "PSU__SAXIGP0__DATA_WIDTH"}
DMA_STREAM_WIDTHS = ("c_m_axis_mm2s_tdata_width", "c_s_axis_s2mm_tdata_width")
DMA_MEMORY_WIDTHS = ("c_m_axi_mm2s_data_width", "c_m_axi_s2mm_data_width")
PROJECT_STREAM_WIDTHS = ("bit_width_hls_input", "bit_width_hls_output")
TOP_BEAT = re.compile(r"typedef ap_axiu<\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*>\s*axis_beat;")
KERNEL_WIDTH = re.compile(r"parameter integer\s+C_M_AXI_GMEM_DATA_WIDTH\s*=\s*(\d+)")


def tcl_variables(project_tcl: Path) -> dict:
    """The variables ``project.tcl`` sets (``set name value``), quotes removed."""
    return {name: value.strip().strip('"') for name, value in TCL_SET.findall(project_tcl.read_text())}


def bd_settings(design_tcl: Path, variables: dict) -> dict:
    """``{(cell, key): value}`` of every ``CONFIG.<key>`` the block design sets (the last one wins),
    ``${name}`` resolved from ``variables`` (what ``source project.tcl`` sets)."""
    settings = {}
    for words, cell in BD_SETTINGS.findall(design_tcl.read_text()):
        values = [
            bare or braced or variables.get(name, f"${{{name}}}") for braced, name, bare in TCL_WORD.findall(words)
        ]
        for key, value in zip(values[::2], values[1::2], strict=True):
            settings[cell, key.removeprefix("CONFIG.")] = value
    return settings


def expect(found, wanted: int, where: str) -> list:
    """``[]`` when ``found`` (text, None when not set) is ``wanted``, else one line saying what is where."""
    return [] if found == str(wanted) else [f"{where}: {found or 'not set'}, the board's is {wanted}"]


def zynq_mismatches(hls_dir: Path, record: boards.Board, variables: dict) -> list:
    """The DMA's stream and memory-map widths, and the PS port it moves data through, in ``design.tcl``."""
    text = (hls_dir / "design.tcl").read_text()
    settings = bd_settings(hls_dir / "design.tcl", variables)
    found = []
    for keys, bits in ((DMA_STREAM_WIDTHS, record.beat_bits), (DMA_MEMORY_WIDTHS, record.memory_bits)):
        for key in keys:
            found += expect(settings.get(("axi_dma_0", key)), bits, f"design.tcl axi_dma_0 {key}")
    ports = sorted(set(DMA_TO_PS.findall(text)))
    if not ports:
        found.append("design.tcl: the DMA is connected to no PS port")
    for cell, port in ports:
        key = PS_PORT_WIDTH.get(port, f"<the width of {port}>")
        found += expect(settings.get((cell, key)), record.memory_bits, f"design.tcl {cell} {port} ({key})")
    return found


def alveo_mismatches(hls_dir: Path, record: boards.Board) -> list:
    """The RTL kernel's m_axi data width, which is also the width of the words it streams to the top."""
    declared = {path.name: KERNEL_WIDTH.findall(path.read_text()) for path in sorted((hls_dir / "src").iterdir())}
    found = [] if any(declared.values()) else ["src/: no C_M_AXI_GMEM_DATA_WIDTH declared"]
    for name, widths in declared.items():
        for width in widths:
            found += expect(width, record.memory_bits, f"src/{name} m_axi data")
            found += expect(width, record.beat_bits, f"src/{name} stream to the top")
    return found


def top_mismatches(hls_dir: Path, record: boards.Board) -> list:
    """The top's beat, ``ap_axiu<data, user, id, dest>``: the board's beat, and no TUSER, TID or
    TDEST (the AXI DMA and the Alveo kernel connect none)."""
    top = TOP_BEAT.search((hls_dir / "firmware" / "myproject_axi.h").read_text())
    if top is None:
        return ["myproject_axi.h: no 'typedef ap_axiu<...> axis_beat'"]
    found = expect(top.group(1), record.beat_bits, "myproject_axi.h ap_axiu data")
    for width, side_channel in zip(top.groups()[1:], ("user", "id", "dest"), strict=True):
        found += expect(width, 0, f"myproject_axi.h ap_axiu {side_channel}")
    return found


def width_mismatches(hls_dir: Path, record: boards.Board, manifest_beat_bits=None) -> list:
    """Every width of the generated project (and the manifest's beat, when given) that is not the
    board record's, one line each; ``[]`` when all agree."""
    variables = tcl_variables(hls_dir / "project.tcl")
    found = []
    for key in PROJECT_STREAM_WIDTHS:
        found += expect(variables.get(key), record.beat_bits, f"project.tcl {key}")
    found += top_mismatches(hls_dir, record)
    if manifest_beat_bits is not None:
        found += expect(str(manifest_beat_bits), record.beat_bits, "manifest.json beat_bits")
    if record.kind == "alveo":
        return found + alveo_mismatches(hls_dir, record)
    return found + zynq_mismatches(hls_dir, record, variables)


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """A small stateful model's HLS and board projects for every board, written as ``overlay build``
    writes them (``overlay.build.write_project``), without the emulator's g++ build."""
    from overlay.build import write_project
    from overlay.estimate import convert_for_board

    root, model = tmp_path_factory.mktemp("boards"), small_classifier(1, stateful=True)
    for name in boards.BOARDS:
        hls_model = convert_for_board(model, root / name, name, reset_port=True, echo=lambda message: None)
        write_project(hls_model, root / name, name)
    return root


@pytest.mark.parametrize("name", boards.BOARDS)
def test_the_generated_project_carries_the_boards_widths(projects, name):
    assert width_mismatches(projects / name, boards.board(name)) == []


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh is not installed")
@pytest.mark.parametrize("name", boards.BOARDS)
def test_the_edited_tcl_is_complete_tcl(projects, name):
    for script in ("project.tcl", "design.tcl"):
        assert tcl_is_complete(projects / name / script), script


def test_a_built_overlay_carries_the_boards_widths(overlays):
    """The overlays ``overlay build`` made (pynq-z2, io_parallel and io_stream), manifest included."""
    for built in overlays.values():
        manifest = Manifest.load(built["overlay"])
        assert width_mismatches(built["overlay"] / "hls", boards.board(manifest.board), manifest.beat_bits) == []


def copy_project(projects, name, tmp_path) -> Path:
    """A copy of the board's generated project, to break."""
    return Path(shutil.copytree(projects / name, tmp_path / name))


# what the check reports on the project as hls4ml writes it, beside its 32-bit streams: the memory
# side at its stream width of old (the pynq-z2's S2MM one under a parameter name the AXI DMA does
# not have) and the PS port at its default
HLS4ML_MEMORY_SIDE = {
    "pynq-z2": (
        "design.tcl axi_dma_0 c_m_axi_s2mm_data_width: not set, the board's is 64",
        "design.tcl processing_system7_0 S_AXI_HP0 (PCW_S_AXI_HP0_DATA_WIDTH): not set, the board's is 64",
    ),
    "zcu102": (
        "design.tcl axi_dma_0 c_m_axi_s2mm_data_width: 32, the board's is 64",
        "design.tcl zynq_ultra_ps_e_0 S_AXI_HPC0_FPD (PSU__SAXIGP0__DATA_WIDTH): 32, the board's is 64",
    ),
    "alveo-u250": (
        "src/krnl_rtl_int.sv m_axi data: 32, the board's is 64",
        "src/myproject_kernel.v stream to the top: 32, the board's is 64",
    ),
}


@pytest.mark.parametrize("name", boards.BOARDS)
def test_the_project_as_hls4ml_writes_it_is_reported(tmp_path, monkeypatch, name):
    """Negative control: hls4ml's own widths (its default float accelerator precision, its templates
    unedited) are mismatches, on the DMA's streams and on the memory side."""
    import overlay.build
    from overlay.estimate import convert_for_board

    record = boards.board(name)
    monkeypatch.setattr(overlay.build, "set_board_widths", lambda hls_dir, record: [])
    hls_model = convert_for_board(
        small_classifier(1, stateful=True), tmp_path, name, reset_port=True, echo=lambda message: None
    )
    overlay.build.write_project(hls_model, tmp_path, name)
    found = width_mismatches(tmp_path, record)
    assert "project.tcl bit_width_hls_input: 32, the board's is 64" in found
    assert record.kind == "alveo" or "design.tcl axi_dma_0 c_m_axis_mm2s_tdata_width: 32, the board's is 64" in found
    assert set(HLS4ML_MEMORY_SIDE[name]) <= set(found), found


@pytest.mark.parametrize("name", boards.BOARDS)
@pytest.mark.parametrize(
    "path, written, broken, expected",
    [
        # hls4ml's default accelerator precision (float): 32-bit DMA streams
        (
            "project.tcl",
            "set bit_width_hls_input 64",
            "set bit_width_hls_input 32",
            "project.tcl bit_width_hls_input: 32",
        ),
        # the top's beat before this change: TUSER, TID and TDEST that nothing drives
        ("firmware/myproject_axi.h", "ap_axiu<64, 0, 0, 0>", "ap_axiu<64, 1, 1, 1>", "ap_axiu user: 1"),
        ("firmware/myproject_axi.h", "ap_axiu<64, 0, 0, 0>", "ap_axiu<32, 0, 0, 0>", "ap_axiu data: 32"),
    ],
)
def test_a_width_put_back_is_reported(projects, tmp_path, name, path, written, broken, expected):
    """Negative control: one width changed back in the generated project is a mismatch naming it
    (on a Zynq, the DMA's 32-bit stream is reported in design.tcl too)."""
    hls_dir = copy_project(projects, name, tmp_path)
    text = (hls_dir / path).read_text()
    assert text.count(written) == 1
    (hls_dir / path).write_text(text.replace(written, broken))
    found = width_mismatches(hls_dir, boards.board(name))
    assert any(expected in line for line in found), found
    if path == "project.tcl" and boards.board(name).kind == "zynq":
        assert "design.tcl axi_dma_0 c_m_axis_mm2s_tdata_width: 32, the board's is 64" in found


def test_a_manifest_beat_other_than_the_boards_is_reported(projects):
    found = width_mismatches(projects / "zcu102", boards.board("zcu102"), manifest_beat_bits=32)
    assert found == ["manifest.json beat_bits: 32, the board's is 64"]


@pytest.mark.parametrize("record", boards.BOARD_RECORDS, ids=boards.BOARDS)
def test_every_record_is_hls4mls_board_and_the_protocols_beat(record):
    """The part is the one hls4ml's supported_boards.json gives (its templates are written for it),
    and ``convert`` passes it; the beat is the host protocol's."""
    from hls_project.convert import board_part, hls4ml_boards

    assert hls4ml_boards()[record.name]["part"] == record.part == board_part(record.name)
    assert record.beat_bits == BEAT_BITS
    assert (record.kind == "zynq") == (record.hwh_device is not None) == (record.platform is None)


def test_an_unknown_board_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown board 'ultra96' \(known: pynq-z2, zcu102, alveo-u250\)"):
        boards.board("ultra96")


def test_a_record_whose_memory_side_cannot_carry_a_beat_is_refused():
    from dataclasses import replace

    with pytest.raises(ValueError, match="memory_bits 32 cannot carry 64-bit beats"):
        replace(boards.PYNQ_Z2, memory_bits=32)
    with pytest.raises(ValueError, match="equal widths on Alveo"):
        replace(boards.ALVEO_U250, memory_bits=512)


def test_the_board_records_import_only_the_standard_library():
    """``host/boards.py`` runs on the board (the board package ships ``host/``)."""
    tree = ast.parse(Path(boards.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} <= set(sys.stdlib_module_names) | {"__future__"}
