"""Every array our kernels declare is a memory of the estimate: the arrays of the generated C++ of
every family (our nnet_utils headers and the layer's code in parameters.h) against the memories
of the layer's ``estimate()``; a new array without its memory fails here. And every stage's reads
per cycle against the banks its memories are partitioned into."""

from __future__ import annotations

import re

import pytest
from test_estimate import FAMILIES, small_model

import hls_project
from hls_project import HEADERS

# a declaration inside a function: a type, a name, one or more [extents], an optional initializer
DECLARATION = re.compile(
    r"^\s*(?!return\b)(?:static\s+)?(?:const\s+)?(?:typename\s+)?[A-Za-z_][\w:]*(?:<[^;]*?>)?\s+(\w+)((?:\[[^\]]+\])+)\s*(?:=[^;]*)?;",
    re.M,
)
# C++ array name -> the estimate memory that owns it (a regex on Memory.name), per source
OWNERS = {
    "nnet_lstm_cell.h": {"z": "^z$", "zh": "^zh$", "h": "^h$", "c": "^c$", "frame_zx": "^frame_zx$", "zx": "^zx$"},
    "nnet_decomposed.h": {"acc": "^acc \\(step", "x": "^input values", "v": "^output values"},
    "nnet_bc_lstm.h": {"partial": "partial sums$", "acc": " acc$", "x": "input block$", "window": "input window$"},
    "nnet_rbs_lstm.h": {"acc": "row sums$", "done": "row sums$", "x": "input copies$"},
    "parameters.h": {},
}
# arrays that are no memory, with the reason
NO_MEMORY = {
    ("nnet_lstm_cell.h", "no_state"): "constant zeros: the maps that get it never read it",
    ("parameters.h", "no_state"): "constant zeros: the maps that get it never read it",
    ("nnet_lstm_cell.h", "none"): "a one-entry placeholder for the tables PWL activations do not read",
    ("nnet_lstm_cell.h", "x"): "join_reader::next's one value: a register",
    ("nnet_bc_lstm.h", "v"): "a read's one value: a register",
    ("nnet_bc_lstm.h", "rotated"): "the window's next value: the wires into its registers",
    ("nnet_rbs_lstm.h", "v"): "a read's pack of values: registers",
}
# arrays of a code path a family does not take: fused families (FDHT) have no recurrent map, no
# frame FIFO and no preactivation loop (zh and z are declared but never written: their state update
# reads zx and the bias), the others no per-frame zx array, and a family whose input map takes a
# whole call (TT) or writes the FIFO itself (input_map_streams_zx) no frame_zx either
UNUSED = {True: {"zh", "frame_zx", "z"}, False: {"zx"}}
WHOLE_CALL_UNUSED = {"frame_zx"}


def declared_arrays(text: str) -> set:
    return {name for name, _ in DECLARATION.findall(text)}


@pytest.mark.parametrize("name", FAMILIES)
def test_every_array_of_the_generated_code_is_a_memory_of_the_estimate(name, tmp_path):
    hls_model = hls_project.convert(small_model(name), tmp_path / "prj", io_type="io_stream", echo=lambda m: None)
    hls_model.write()
    node = next(n for n in hls_model.get_layers() if type(n).__name__.endswith("LSTMLayer"))
    memories = [memory.name for stage in node.estimate().stages for memory in stage.memories]
    included = re.findall(r'#include "nnet_utils/(nnet_\w+\.h)"', (tmp_path / "prj/firmware/parameters.h").read_text())
    sources = {header: (HEADERS / header).read_text() for header in {"nnet_lstm_cell.h", *included} if header in OWNERS}
    for header in list(sources):  # the headers our headers include
        for nested in re.findall(r'#include "(nnet_\w+\.h)"', sources[header]):
            if nested in OWNERS:
                sources.setdefault(nested, (HEADERS / nested).read_text())
    sources["parameters.h"] = (tmp_path / "prj/firmware/parameters.h").read_text()
    assert len(sources) > 2  # the cell, the family's kernel and the generated code
    unowned, missing = [], []
    for source, text in sources.items():
        for array in sorted(declared_arrays(text)):
            whole_call = node.call_input_map or node.input_map_streams_zx
            unused = UNUSED[node.fused_recurrent] | (WHOLE_CALL_UNUSED if whole_call else set())
            if (source, array) in NO_MEMORY or array in unused and source == "nnet_lstm_cell.h":
                continue
            owner = next(
                (pattern for key, pattern in OWNERS[source].items() if re.fullmatch(f"{key}\\d*", array)), None
            )
            if owner is None:
                unowned.append(f"{source}: {array}")
            elif not any(re.search(owner, memory) for memory in memories):
                missing.append(f"{source}: {array} (no memory /{owner}/ in {memories})")
    assert not unowned, f"arrays the estimate does not know: {unowned}"
    assert not missing, f"arrays without their memory in the estimate: {missing}"


def test_the_declaration_pattern_finds_arrays_and_skips_statements():
    text = """
    static typename CONFIG_T::mac_t acc[T][B]; // static
    accum_t z[n_gates];
    static const typename CONFIG_T::act_t none[1] = {0};
    partial[lane] = sum;
    return table[index];
    out[cursor.bank()][cursor.offset()] = acc;
        static accum_t buf2[4][16];
    """
    assert declared_arrays(text) == {"acc", "z", "none", "buf2"}


@pytest.mark.parametrize("reuse_factor", [1, 4])
@pytest.mark.parametrize("name", FAMILIES)
def test_every_stage_reads_no_more_per_cycle_than_its_banks_serve(name, reuse_factor, tmp_path):
    """The reads an iteration makes of each memory (the coefficients of its products, the
    accumulators, the cell's pre-activations and tables) over the memory's banks (two ports each) fit the
    stage's II, the state update's at reuse factor 1 too (the gate table read twice, its copy for
    the o gate once)."""
    hls_model = hls_project.convert(
        small_model(name), tmp_path / "prj", io_type="io_stream", reuse_factor=reuse_factor, echo=lambda m: None
    )
    node = next(n for n in hls_model.get_layers() if type(n).__name__.endswith("LSTMLayer"))
    for stage in node.estimate().stages:
        if stage.multipliers and stage.name != "state update":  # every product reads a coefficient
            assert stage.reads, f"{stage.name} declares no reads"
        for memory, count in stage.reads:
            # beyond a read per product: the cell's pre-activations (z, or a fused family's zx and bias)
            # and gate table, and a mode step's acc (the previous row's rounding reads its output pack too)
            cell = ("z", "zx", "bias", "gate table")
            assert count <= stage.products_per_iteration or memory in cell or memory.startswith("acc")
        limited = [memory for memory, count in stage.reads if -(-count // (2 * stage.memory(memory).banks)) > stage.ii]
        assert limited == [], stage.name
