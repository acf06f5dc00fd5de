"""The accelerator top's C/RTL co-simulation testbench, from the emulator's word vectors.

``overlay build`` replaces hls4ml's ``myproject_test.cpp`` (which does not compile against our
top) with one that feeds recorded DMA transfers to ``myproject_axi`` and compares every output
word, and TLAST on the last one, with what the emulator (the same C++) returned. Vivado HLS runs
the same file for C simulation and, with ``cosim=1``, for RTL co-simulation
(``vivado_hls -f build_prj.tcl "csim=1 synth=1 cosim=1 validation=1"``); here g++ runs it
(``run_testbench``). Input: ``tb_data/accel_words_in.dat`` (one transfer per line, control word
first), expected: ``tb_data/accel_words_out.dat``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from host.accelerator import EmulatedBackend
from host.manifest import Manifest
from host.protocol import encode_input

WORDS_IN = "tb_data/accel_words_in.dat"
WORDS_OUT = "tb_data/accel_words_out.dat"

TESTBENCH = """// C/RTL co-simulation testbench of {project}_axi (written by overlay/testbench.py).
// Each line of {words_in} is one DMA transfer (N_IN words, the control word first); the
// matching line of {words_out} holds the N_OUT words the emulator returned for it.
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "firmware/{project}_axi.h"

namespace nnet {{
bool trace_enabled = false;
std::map<std::string, void *> *trace_outputs = NULL;
size_t trace_type_size = sizeof(double);
}} // namespace nnet

int main() {{
#ifdef RTL_SIM
    std::ofstream log("tb_data/rtl_cosim_results.log");
#else
    std::ofstream log("tb_data/csim_results.log");
#endif
    std::ifstream words_in("{words_in}"), words_out("{words_out}");
    if (!words_in.is_open() || !words_out.is_open()) {{
        std::cerr << "ERROR: cannot open {words_in} / {words_out}" << std::endl;
        return 2;
    }}
    static input_axi_t in[N_IN];
    static output_axi_t out[N_OUT];
    std::string line_in, line_out;
    unsigned transfers = 0, errors = 0;
    while (std::getline(words_in, line_in) && std::getline(words_out, line_out)) {{
        std::istringstream values_in(line_in), values_out(line_out);
        for (unsigned i = 0; i < N_IN; i++) {{
            long long word = 0;
            values_in >> word;
            in[i].data = word;
            in[i].last = (i == N_IN - 1);
        }}
        {project}_axi(in, out);
        for (unsigned j = 0; j < N_OUT; j++) {{
            long long expected = 0;
            values_out >> expected;
            const long long got = out[j].data.to_int64();
            log << got << (j + 1 < N_OUT ? " " : "\\n");
            if (got != expected) {{
                std::cerr << "ERROR: transfer " << transfers << ", word " << j << ": " << got << " != " << expected
                          << std::endl;
                errors++;
            }}
        }}
        if (out[N_OUT - 1].last != 1) {{
            std::cerr << "ERROR: transfer " << transfers << ": no TLAST on the last output word" << std::endl;
            errors++;
        }}
        transfers++;
    }}
    if (transfers == 0) {{
        std::cerr << "ERROR: no transfers in {words_in}" << std::endl;
        return 2;
    }}
    std::cout << (errors ? "FAIL" : "PASS") << ": " << transfers << " transfers, " << errors << " mismatches"
              << std::endl;
    return errors ? 1 : 0;
}}
"""


def record_transfers(manifest: Manifest, library: Path, calls: int = 3, seed: int = 0) -> tuple:
    """Run ``calls`` transfers of seeded random features (over the input type's range and beyond)
    through the emulator: the first with the reset bit, the rest continuing a stateful layer.
    Returns ``(words_in (calls, N_IN), words_out (calls, N_OUT))`` as int64."""
    rng = np.random.default_rng(seed)
    span = 1.25 * max(abs(manifest.input_type.min_value), manifest.input_type.max_value)
    backend = EmulatedBackend(library, manifest.words_in, manifest.words_out)
    words_in, words_out = [], []
    try:
        for call in range(calls):
            features = rng.uniform(-span, span, (manifest.frames_per_call, manifest.n_features))
            words = encode_input(
                features, manifest.input_type, manifest.frames_per_call, manifest.n_features, call == 0
            )
            words_in.append(words.astype(np.int64))
            words_out.append(backend.transfer(words).astype(np.int64))
    finally:
        backend.close()
    return np.stack(words_in), np.stack(words_out)


def write_testbench(hls_dir: Path, manifest: Manifest, library: Path, project: str = "myproject") -> Path:
    """Write the testbench over hls4ml's ``<project>_test.cpp`` and its recorded transfers."""
    words_in, words_out = record_transfers(manifest, library)
    (hls_dir / "tb_data").mkdir(exist_ok=True)
    for name, words in ((WORDS_IN, words_in), (WORDS_OUT, words_out)):
        np.savetxt(hls_dir / name, words, fmt="%d")
    path = hls_dir / f"{project}_test.cpp"
    path.write_text(TESTBENCH.format(project=project, words_in=WORDS_IN, words_out=WORDS_OUT))
    return path


def run_testbench(hls_dir: Path, project: str = "myproject") -> subprocess.CompletedProcess:
    """Compile the testbench with the real top (g++ -Wall) and run it in ``hls_dir``."""
    binary = hls_dir / "emulator" / "testbench"
    command = [
        "g++",
        "-std=c++14",
        "-O2",
        "-Wall",
        "-Wno-unused-label",
        "-Wno-unknown-pragmas",
        "-isystem",
        "firmware/ap_types",
        "-Ifirmware",
        '-DWEIGHTS_DIR="firmware/weights"',
        f"{project}_test.cpp",
        f"firmware/{project}.cpp",
        f"firmware/{project}_axi.cpp",
        "-o",
        str(binary.resolve()),
    ]
    compiled = subprocess.run(command, cwd=hls_dir, capture_output=True, text=True)
    if compiled.returncode != 0:
        raise RuntimeError(f"g++ failed to compile the testbench in {hls_dir}:\n{compiled.stderr[-4000:]}")
    return subprocess.run([str(binary.resolve())], cwd=hls_dir, capture_output=True, text=True)
