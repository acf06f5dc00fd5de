"""hls4ml's board project at the board's widths (``host.boards``): what the DMA and the PS move.

hls4ml 1.3.0 writes its board project for 32-bit words: the AXI DMA's stream widths in
``project.tcl`` (``bit_width_hls_input`` / ``bit_width_hls_output``, from its default accelerator
precision, float), the DMA's memory-map widths and the PS port it moves data through in the Zynq
block design ``design.tcl``, the ``m_axi`` width of the Alveo RTL kernel (``src/``). The top moves
``beat_bits``-wide beats; these edits of the files hls4ml wrote set the board record's widths. Each
replaces text the file must hold exactly once: a file that does not is an error naming it (another
hls4ml version needs its edits checked again). hls4ml's own knob for the stream widths, its
accelerator precision, is not used: it also types hls4ml's C-simulation wrapper (``hls_model.compile``),
which hls4ml 1.3.0 writes as invalid C++ for any ``ap_`` type (``typedef uint<64> T_in``), and whose
only other 64-bit choice, ``double``, is not what the stream carries.
"""

from __future__ import annotations

from pathlib import Path

from host.boards import Board

# hls4ml 1.3.0's Alveo RTL kernel (``src/``, copied by its VivadoAccelerator writer): both files
# declare the m_axi data width, which is also the width of the words the kernel streams to the top
ALVEO_KERNEL_SOURCES = ("myproject_kernel.v", "krnl_rtl_int.sv")
ALVEO_WIDTH = "parameter integer  C_M_AXI_GMEM_DATA_WIDTH = {}"
HLS4ML_ALVEO_WIDTH = 32
HLS4ML_STREAM_WIDTH = 32  # bits of hls4ml's default accelerator precision, float


def replace_once(path: Path, edits) -> None:
    """Apply ``(old, new)`` text edits to ``path``; each ``old`` must occur exactly once."""
    text = path.read_text()
    for old, new in edits:
        if text.count(old) != 1:
            raise RuntimeError(f"{path}: expected one {old.strip()!r} (hls4ml 1.3.0's), found {text.count(old)}")
        text = text.replace(old, new)
    path.write_text(text)


def zynq_design_edits(record: Board) -> tuple:
    """``(text, ours)`` edits of hls4ml 1.3.0's ``templates/vivado_accelerator/<board>/tcl_scripts/
    axi_stream_design.tcl`` that put the DMA's memory-map side and the PS port it reads and writes
    through at ``record.memory_bits``."""
    bits = f"{{{record.memory_bits}}}"  # a Tcl word
    return {
        "pynq-z2": (
            # S_AXI_HP0, the port the DMA is connected to
            ("PCW_USE_S_AXI_HP0 {1}]", f"PCW_USE_S_AXI_HP0 {{1}} CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {bits}]"),
            ("CONFIG.c_m_axi_mm2s_data_width ${bit_width_hls_input}", f"CONFIG.c_m_axi_mm2s_data_width {bits}"),
            # the template sets c_s_axis_s2mm_data_width, which the AXI DMA does not have (its S2MM
            # widths are c_m_axi_s2mm_data_width and c_s_axis_s2mm_tdata_width)
            ("CONFIG.c_s_axis_s2mm_data_width ${bit_width_hls_output}", f"CONFIG.c_m_axi_s2mm_data_width {bits}"),
            (
                "CONFIG.c_s_axis_s2mm_tdata_width.VALUE_SRC USER]",
                "CONFIG.c_m_axi_s2mm_data_width.VALUE_SRC USER CONFIG.c_s_axis_s2mm_tdata_width.VALUE_SRC USER]",
            ),
        ),
        "zcu102": (
            # S_AXI_HPC0_FPD, the port the DMA is connected to, is S_AXI_GP0 in the PS configuration
            ("CONFIG.PSU__SAXIGP0__DATA_WIDTH {32}", f"CONFIG.PSU__SAXIGP0__DATA_WIDTH {bits}"),
            ("CONFIG.c_m_axi_mm2s_data_width ${bit_width_hls_input}", f"CONFIG.c_m_axi_mm2s_data_width {bits}"),
            ("CONFIG.c_m_axi_s2mm_data_width ${bit_width_hls_output}", f"CONFIG.c_m_axi_s2mm_data_width {bits}"),
        ),
    }[record.name]


def set_zynq_design_widths(project_dir, record: Board) -> Path:
    """The DMA's memory-map widths and the PS port's width in ``design.tcl``; returns its path."""
    path = Path(project_dir) / "design.tcl"
    replace_once(path, zynq_design_edits(record))
    return path


def widen_alveo_kernel(project_dir, bits: int) -> list:
    """Set the m_axi data width of hls4ml's Alveo kernel (both files that declare it) to ``bits``;
    a template that does not declare it as expected is an error. Returns the paths."""
    paths = [Path(project_dir) / "src" / name for name in ALVEO_KERNEL_SOURCES]
    for path in paths:
        replace_once(path, [(ALVEO_WIDTH.format(HLS4ML_ALVEO_WIDTH), ALVEO_WIDTH.format(bits))])
    return paths


def set_project_widths(project_dir, record: Board) -> Path:
    """The DMA's stream widths in ``project.tcl`` (hls4ml writes them for its float precision)."""
    path = Path(project_dir) / "project.tcl"
    edits = [
        (f"set bit_width_hls_{role} {HLS4ML_STREAM_WIDTH}\n", f"set bit_width_hls_{role} {record.beat_bits}\n")
        for role in ("input", "output")
    ]
    replace_once(path, edits)
    return path


def set_board_widths(project_dir, record: Board) -> list:
    """The board's stream and memory widths in the project hls4ml wrote; returns the files edited."""
    project = set_project_widths(project_dir, record)
    if record.kind == "alveo":
        return [project, *widen_alveo_kernel(project_dir, record.memory_bits)]
    return [project, set_zynq_design_widths(project_dir, record)]
