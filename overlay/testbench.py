"""The accelerator top's C/RTL co-simulation testbench, from the emulator's word vectors.

``overlay build`` replaces hls4ml's ``myproject_test.cpp`` (which does not compile against our
top) with one that feeds recorded DMA transfers to ``myproject_axi`` and compares every output
beat, and TLAST on the last one, with what the emulator (the same C++) returned. Vivado HLS runs
the same file for C simulation and, with ``cosim=1``, for RTL co-simulation
(``vivado_hls -f build_prj.tcl "csim=1 synth=1 cosim=1 validation=1"``); here g++ runs it
(``run_testbench``). Input: ``tb_data/accel_beats_in.dat`` (one transfer per line, the control
beat first), expected: ``tb_data/accel_beats_out.dat``. The transfers include one cut short and
one too long: the top must report them and serve the next transfer from a clean state.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np

from host.emulator import EmulatedBackend
from host.manifest import Manifest
from host.protocol import encode_input
from overlay.axi_wrapper import THREADED_STREAMS, compile_top

BEATS_IN = "tb_data/accel_beats_in.dat"
BEATS_OUT = "tb_data/accel_beats_out.dat"
# The threaded testbench's exit code on a deadlock (threaded_csim::deadlock_exit_code), its line
# per bounded FIFO, and a bound on its run (a deadlock is reported within seconds).
THREADED_DEADLOCK_EXIT = 3
FIFO_LINE = re.compile(r"threaded C-sim: FIFO '(\w+)' depth (\d+), max occupancy (\d+)")
RUN_TIMEOUT = 600

TESTBENCH = """// C/RTL co-simulation testbench of {project}_axi (written by overlay/testbench.py).
// Each line of {beats_in} is one DMA transfer (64-bit beats, the control beat first; TLAST goes
// on the last); the matching line of {beats_out} holds the beats the emulator returned for it.
// The top runs one model call per invocation: it is invoked until it writes TLAST. In the
// threaded C-simulation its processes run free on their threads: every transfer is queued at
// once (as a DMA's descriptors), and each transfer's last output beat is held back until the
// reader has taken the next transfer's first value beat, which shows consecutive calls overlap.
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "firmware/{project}_axi.h"

namespace nnet {{
bool trace_enabled = false;
std::map<std::string, void *> *trace_outputs = NULL;
size_t trace_type_size = sizeof(double);
}} // namespace nnet

static std::vector<unsigned long long> beats_of(const std::string &line) {{
    std::istringstream values(line);
    std::vector<unsigned long long> beats;
    unsigned long long beat;
    while (values >> beat) {{
        beats.push_back(beat);
    }}
    return beats;
}}

static void send(hls::stream<axis_beat> &in, const std::vector<unsigned long long> &beats) {{
    for (unsigned i = 0; i < beats.size(); i++) {{
        axis_beat word;
        word.data = beats[i];
        word.keep = -1;
        word.last = (i + 1 == beats.size());
        in.write(word);
    }}
}}

#ifdef NNET_THREADED_CSIM
// Seconds to wait for the reader to take the next transfer's first value beat.
static const int OVERLAP_TIMEOUT_S = 30;

// Wait until no more than `left` beats of the queued input are unread; false on timeout.
static bool wait_for_reader(hls::stream<axis_beat> &in, size_t left) {{
    const std::chrono::steady_clock::time_point until =
        std::chrono::steady_clock::now() + std::chrono::seconds(OVERLAP_TIMEOUT_S);
    while (in.size() > left) {{
        if (std::chrono::steady_clock::now() > until) {{
            return false;
        }}
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }}
    return true;
}}
#endif

int main() {{
#ifdef RTL_SIM
    std::ofstream log("tb_data/rtl_cosim_results.log");
#else
    std::ofstream log("tb_data/csim_results.log");
#endif
    std::ifstream file_in("{beats_in}"), file_out("{beats_out}");
    if (!file_in.is_open() || !file_out.is_open()) {{
        std::cerr << "ERROR: cannot open {beats_in} / {beats_out}" << std::endl;
        return 2;
    }}
    std::vector<std::vector<unsigned long long>> inputs, outputs;
    std::string line_in, line_out;
    while (std::getline(file_in, line_in) && std::getline(file_out, line_out)) {{
        inputs.push_back(beats_of(line_in));
        outputs.push_back(beats_of(line_out));
    }}
    if (inputs.empty()) {{
        std::cerr << "ERROR: no transfers in {beats_in}" << std::endl;
        return 2;
    }}
    static hls::stream<axis_beat> in("in"), out("out"); // the top's ports, for its lifetime
    unsigned errors = 0;
#ifdef NNET_THREADED_CSIM
    out.set_depth(1); // the writer waits for each beat to be taken
    size_t queued = 0;
    for (const std::vector<unsigned long long> &beats : inputs) {{
        send(in, beats);
        queued += beats.size();
    }}
    {project}_axi(in, out); // starts the free-running processes
    size_t sent = 0;
#endif
    for (unsigned transfer = 0; transfer < inputs.size(); transfer++) {{
        const std::vector<unsigned long long> &expected = outputs[transfer];
#ifndef NNET_THREADED_CSIM
        send(in, inputs[transfer]);
#endif
        unsigned got = 0;
        bool last = false;
        while (!last) {{
#ifdef NNET_THREADED_CSIM
            if (got + 2 == expected.size() && transfer + 1 < inputs.size()) {{
                // the writer holds the last beat: the next transfer's control and first value beat must go in
                const size_t left = queued - sent - inputs[transfer].size() - 2;
                const bool overlap = wait_for_reader(in, left);
                std::cout << "overlap: transfer " << transfer + 1 << " entered before transfer " << transfer
                          << " ended: " << (overlap ? "yes" : "NO") << std::endl;
                errors += !overlap;
            }}
#else
            if (out.empty()) {{
                {project}_axi(in, out);
                continue;
            }}
#endif
            axis_beat word = out.read();
            const unsigned long long data = word.data.to_uint64();
            last = word.last;
            log << data << (last ? "\\n" : " ");
            if (got >= expected.size() || data != expected[got]) {{
                std::cerr << "ERROR: transfer " << transfer << ", beat " << got << ": " << data << std::endl;
                errors++;
            }}
            got++;
        }}
#ifdef NNET_THREADED_CSIM
        sent += inputs[transfer].size();
        const bool input_left = in.size() > queued - sent; // the reader may be into the next
#else
        const bool input_left = !in.empty();
#endif
        if (got != expected.size() || input_left) {{
            std::cerr << "ERROR: transfer " << transfer << ": " << got << " beats out (expected " << expected.size()
                      << "), input left " << input_left << std::endl;
            errors++;
        }}
    }}
    std::cout << (errors ? "FAIL" : "PASS") << ": " << inputs.size() << " transfers, " << errors << " mismatches"
              << std::endl;
    return errors ? 1 : 0;
}}
"""

# calls per recorded transfer, and how each is sent: whole, cut short by a beat, or with 2 beats too many
TRANSFERS = ((2, "whole"), (1, "whole"), (2, "short"), (1, "long"), (3, "whole"))


def record_transfers(manifest: Manifest, library: Path, weights_dir: Path, seed: int = 0) -> list:
    """Run ``TRANSFERS`` through the emulator: seeded random features over the input type's range
    and beyond, the first and every transfer after a malformed one with the reset bit.
    Returns ``[(beats_in, beats_out)]`` (uint64 arrays)."""
    rng = np.random.default_rng(seed)
    span = 1.25 * max(abs(manifest.input_type.min_value), manifest.input_type.max_value)
    backend = EmulatedBackend(library, manifest, weights_dir)
    recorded, reset = [], True
    try:
        for calls, how in TRANSFERS:
            features = rng.uniform(-span, span, (calls * manifest.frames_per_call, manifest.n_features))
            beats = encode_input(
                features,
                manifest.input_type,
                manifest.frames_per_call,
                manifest.n_features,
                reset,
                manifest.in_pack_values,
            )
            beats = {"whole": beats, "short": beats[:-1], "long": np.append(beats, [7, 7]).astype(np.uint64)}[how]
            recorded.append((beats, backend.transfer(beats, manifest.beats_out(calls))))
            reset = how != "whole"
    finally:
        backend.close()
    return recorded


def write_testbench(hls_dir: Path, manifest: Manifest, library: Path, project: str = "myproject") -> Path:
    """Write the testbench over hls4ml's ``<project>_test.cpp`` and its recorded transfers."""
    recorded = record_transfers(manifest, library, hls_dir / "firmware" / "weights")
    (hls_dir / "tb_data").mkdir(exist_ok=True)
    for name, column in ((BEATS_IN, 0), (BEATS_OUT, 1)):
        lines = (" ".join(str(int(beat)) for beat in transfer[column]) for transfer in recorded)
        (hls_dir / name).write_text("\n".join(lines) + "\n")
    path = hls_dir / f"{project}_test.cpp"
    path.write_text(TESTBENCH.format(project=project, beats_in=BEATS_IN, beats_out=BEATS_OUT))
    return path


def run_testbench(hls_dir: Path, project: str = "myproject") -> subprocess.CompletedProcess:
    """Compile the testbench with the real top (g++ -Wall) and run it in ``hls_dir``."""
    return compile_and_run(hls_dir, "testbench", project)


def run_threaded_testbench(hls_dir: Path, project: str = "myproject") -> subprocess.CompletedProcess:
    """The testbench on the threaded C-simulation of the top: every process of our dataflow
    regions (the top's reader, model and writer; each LSTM call's input and recurrent halves) on
    its own thread, on FIFOs of their declared depths (``overlay/emulator_include/threaded``).
    It must equal the sequential emulator bit for bit like ``run_testbench``; a deadlock is
    reported on stderr with the blocked streams (exit code ``THREADED_DEADLOCK_EXIT``), and the
    largest occupancy of each bounded FIFO is printed (``fifo_occupancy``)."""
    include = os.path.relpath(THREADED_STREAMS, hls_dir)
    return compile_and_run(hls_dir, "threaded_testbench", project, "-pthread", "-isystem", include)


def compile_and_run(hls_dir: Path, name: str, project: str, *flags: str) -> subprocess.CompletedProcess:
    """g++ -Wall the testbench with the real top and ``flags`` into ``emulator/<name>``; run it in ``hls_dir``."""
    binary = (hls_dir / "emulator" / name).resolve()
    compile_top(hls_dir, [f"{project}_test.cpp"], binary, '-DWEIGHTS_DIR="firmware/weights"', *flags, project=project)
    return subprocess.run([str(binary)], cwd=hls_dir, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def fifo_occupancy(stdout: str) -> dict:
    """``{(name, depth): largest occupancy}`` of the bounded FIFOs, from a threaded run's output."""
    return {(name, int(depth)): int(most) for name, depth, most in FIFO_LINE.findall(stdout)}
