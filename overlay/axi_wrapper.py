"""The accelerator top ``myproject_axi``: hls4ml's block design around our stream protocol.

hls4ml's VivadoAccelerator writes a block design that connects an AXI DMA to the ports ``in``
and ``out`` of ``<project>_axi``; we replace its wrapper (which converts floats and has no way
to reset a stateful layer) by one that speaks ``host.protocol``: 64-bit ``ap_axiu`` beats (TLAST
as a side channel in Vivado HLS and Vitis HLS alike), a control beat, then raw fixed-point values
packed several per beat, several model calls per transfer, TLAST on the last output beat, and a
status beat that reports a malformed transfer (the top drains it and is ready for the next).
``emulator_bridge.cpp`` drives the very same function from C for the host's emulated backend.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from host.protocol import BEAT_BITS, CALLS_SHIFT, CONTROL_RESET, STATUS_LONG, STATUS_SHORT, beats_for

# For g++ builds only (emulator, testbench): Vivado HLS and Vitis HLS bring their own.
AXI_SDATA_SHIM = Path(__file__).parent / "emulator_include"

HEADER = """#ifndef {guard}_AXI_H_
#define {guard}_AXI_H_

// Accelerator top for the AXI-stream DMA (see host/protocol.py for the stream protocol).
#include "ap_axi_sdata.h"
#include "ap_int.h"
#include "hls_stream.h"
#include "{project}.h"

typedef ap_axiu<{beat_bits}, 1, 1, 1> axis_beat;

static const unsigned N_X = {n_x};               // input values per call (frames * features)
static const unsigned N_OUT = {n_out};           // output values per call
static const unsigned IN_WIDTH = {in_width};     // bits per input value
static const unsigned OUT_WIDTH = {out_width};   // bits per output value
static const unsigned IN_PER_BEAT = {in_per_beat};
static const unsigned OUT_PER_BEAT = {out_per_beat};
static const unsigned IN_BEATS = {in_beats};     // beats per call in
static const unsigned OUT_BEATS = {out_beats};   // beats per call out
static const unsigned CONTROL_RESET = {control_reset}; // control bit 0: reset stateful LSTM layers
static const unsigned CALLS_SHIFT = {calls_shift};     // control bits 16..47: calls in this transfer
static const unsigned long long STATUS_SHORT = {status_short}ULL; // the input ended early
static const unsigned long long STATUS_LONG = {status_long}ULL;   // the input went on past its end

void {project}_axi(hls::stream<axis_beat> &in, hls::stream<axis_beat> &out);

#endif
"""

PARALLEL_IO = """
// One call: IN_BEATS beats -> x, the model, y -> OUT_BEATS beats. Returns false (nothing run,
// zero beats out) when the input ends before the call's last beat.
static bool accel_call(hls::stream<axis_beat> &in, hls::stream<axis_beat> &out, bool &ended) {{
    {input_t} x[N_X];
    {output_t} y[N_OUT];
    bool complete = true;
ReadBeats:
    for (unsigned beat = 0; beat < IN_BEATS; beat++) {{
        #pragma HLS PIPELINE
        const ap_uint<{beat_bits}> data = next_beat(in, ended, complete);
        for (unsigned k = 0; k < IN_PER_BEAT; k++) {{
            const unsigned i = beat * IN_PER_BEAT + k;
            if (i < N_X) {{
                x[i].range(IN_WIDTH - 1, 0) = data.range(k * IN_WIDTH + IN_WIDTH - 1, k * IN_WIDTH);
            }}
        }}
    }}
    if (complete) {{
        {project}(x, y);
    }}
WriteBeats:
    for (unsigned beat = 0; beat < OUT_BEATS; beat++) {{
        #pragma HLS PIPELINE
        ap_uint<{beat_bits}> data = 0;
        for (unsigned k = 0; k < OUT_PER_BEAT; k++) {{
            const unsigned j = beat * OUT_PER_BEAT + k;
            if (j < N_OUT && complete) {{
                data.range(k * OUT_WIDTH + OUT_WIDTH - 1, k * OUT_WIDTH) = y[j].range(OUT_WIDTH - 1, 0);
            }}
        }}
        out.write(beat_of(data, false));
    }}
    return complete;
}}
"""

STREAM_IO = """
// One call: IN_BEATS beats -> the input stream (packs of {input_t}::size), the model, the output
// stream -> OUT_BEATS beats. Returns false (nothing run, zero beats out) when the input ends
// before the call's last beat.
static bool accel_call(hls::stream<axis_beat> &in, hls::stream<axis_beat> &out, bool &ended) {{
    hls::stream<{input_t}> x("x");
    hls::stream<{output_t}> y("y");
    #pragma HLS STREAM variable=x depth={x_depth}
    #pragma HLS STREAM variable=y depth={y_depth}
    {input_t} x_pack;
    bool complete = true;
ReadBeats:
    for (unsigned beat = 0; beat < IN_BEATS; beat++) {{
        #pragma HLS PIPELINE
        const ap_uint<{beat_bits}> data = next_beat(in, ended, complete);
        for (unsigned k = 0; k < IN_PER_BEAT; k++) {{
            const unsigned i = beat * IN_PER_BEAT + k;
            if (i < N_X) {{
                x_pack[i % {input_t}::size].range(IN_WIDTH - 1, 0) =
                    data.range(k * IN_WIDTH + IN_WIDTH - 1, k * IN_WIDTH);
                if (i % {input_t}::size == {input_t}::size - 1 && complete) {{
                    x.write(x_pack);
                }}
            }}
        }}
    }}
    {output_t} y_pack;
    if (complete) {{
        {project}(x, y);
    }}
WriteBeats:
    for (unsigned beat = 0; beat < OUT_BEATS; beat++) {{
        #pragma HLS PIPELINE
        ap_uint<{beat_bits}> data = 0;
        for (unsigned k = 0; k < OUT_PER_BEAT; k++) {{
            const unsigned j = beat * OUT_PER_BEAT + k;
            if (j < N_OUT && complete) {{
                if (j % {output_t}::size == 0) {{
                    y_pack = y.read();
                }}
                data.range(k * OUT_WIDTH + OUT_WIDTH - 1, k * OUT_WIDTH) =
                    y_pack[j % {output_t}::size].range(OUT_WIDTH - 1, 0);
            }}
        }}
        out.write(beat_of(data, false));
    }}
    return complete;
}}
"""

SOURCE = """#include "{project}_axi.h"
#include "nnet_utils/nnet_lstm_cell.h"

static axis_beat beat_of(ap_uint<{beat_bits}> data, bool last) {{
    axis_beat word;
    word.data = data;
    word.keep = -1;
    word.strb = -1;
    word.user = 0;
    word.id = 0;
    word.dest = 0;
    word.last = last;
    return word;
}}

// The next input beat's data; once the transfer has ended (TLAST seen), 0 and complete = false.
static ap_uint<{beat_bits}> next_beat(hls::stream<axis_beat> &in, bool &ended, bool &complete) {{
    if (ended) {{
        complete = false;
        return 0;
    }}
    axis_beat word = in.read();
    ended = word.last;
    return word.data;
}}
{call}
void {project}_axi(hls::stream<axis_beat> &in, hls::stream<axis_beat> &out) {{
    #pragma HLS INTERFACE axis port=in
    #pragma HLS INTERFACE axis port=out
    #pragma HLS INTERFACE ap_ctrl_none port=return

    axis_beat control = in.read();
    bool ended = control.last;
    if (control.data & CONTROL_RESET) {{
        nnet::lstm_reset_all();
    }}
    const unsigned calls = control.data.range(CALLS_SHIFT + 31, CALLS_SHIFT).to_uint();
    unsigned done = 0;
    bool short_input = false;
Calls:
    for (unsigned call = 0; call < calls; call++) {{
        if (accel_call(in, out, ended)) {{
            done++;
        }} else {{
            short_input = true;
        }}
    }}
    bool long_input = false;
Drain:
    while (!ended) {{
        ended = in.read().last;
        long_input = true;
    }}
    ap_uint<{beat_bits}> status = done;
    if (short_input) {{
        status |= STATUS_SHORT;
    }}
    if (long_input) {{
        status |= STATUS_LONG;
    }}
    out.write(beat_of(status, true));
}}
"""

BRIDGE = """// C entry points of the accelerator top for host.Accelerator's emulated backend (not synthesized).
#include <stdint.h>
#include <string>

#include "firmware/{project}_axi.h"

static std::string weights_dir = "firmware/weights";

// WEIGHTS_DIR of the emulator build (emulator_weights.h): where the model reads its weight files.
const char *accel_weights_dir() {{ return weights_dir.c_str(); }}

extern "C" {{
// The folder of the weight files (the host passes the overlay's, checked against the manifest).
void accel_set_weights_dir(const char *path) {{ weights_dir = path; }}

unsigned accel_in_beats_per_call() {{ return IN_BEATS; }}
unsigned accel_out_beats_per_call() {{ return OUT_BEATS; }}

// One DMA round trip: n_in beats in (TLAST on the last), at most max_out beats out. Returns the
// beats the top wrote if the last carried TLAST and the top read all input, else -1.
int accel_transfer(const uint64_t *beats_in, unsigned n_in, uint64_t *beats_out, unsigned max_out) {{
    hls::stream<axis_beat> in("in"), out("out");
    for (unsigned i = 0; i < n_in; i++) {{
        axis_beat word;
        word.data = beats_in[i];
        word.keep = -1;
        word.last = (i == n_in - 1);
        in.write(word);
    }}
    {project}_axi(in, out);
    int written = 0;
    bool last = false;
    while (!out.empty()) {{
        axis_beat word = out.read();
        if ((unsigned)written < max_out) {{
            beats_out[written] = word.data.to_uint64();
        }}
        written++;
        last = word.last;
    }}
    return (last && in.empty()) ? written : -1;
}}
}}
"""


WEIGHTS_HEADER = """// Included first in the emulator build: weights are read from the folder the host sets.
const char *accel_weights_dir();
"""


def write_wrapper(hls_model, project_dir) -> list:
    """Write ``<project>_axi.{h,cpp}``, ``emulator_bridge.cpp`` and ``emulator_weights.h``; returns their paths."""
    from fixedpoint.hls_types import from_hls4ml

    project = hls_model.config.get_project_name()
    io_type = hls_model.config.get_config_value("IOType")
    inp = hls_model.get_input_variables()[0]
    out = hls_model.get_output_variables()[0]
    n_x, n_out = inp.size(), out.size()
    in_type = from_hls4ml(inp.type.precision)
    out_type = from_hls4ml(out.type.precision, rounding_matters=False)
    fields = dict(project=project, input_t=inp.type.name, output_t=out.type.name, beat_bits=BEAT_BITS)
    if io_type == "io_parallel":
        call = PARALLEL_IO.format(**fields)
    else:
        call = STREAM_IO.format(**fields, x_depth=max(1, n_x // inp.shape[-1]), y_depth=max(1, n_out // out.shape[-1]))
    header = HEADER.format(
        guard=project.upper(),
        project=project,
        beat_bits=BEAT_BITS,
        n_x=n_x,
        n_out=n_out,
        in_width=in_type.width,
        out_width=out_type.width,
        in_per_beat=BEAT_BITS // in_type.width,
        out_per_beat=BEAT_BITS // out_type.width,
        in_beats=beats_for(n_x, in_type),
        out_beats=beats_for(n_out, out_type),
        control_reset=CONTROL_RESET,
        calls_shift=CALLS_SHIFT,
        status_short=STATUS_SHORT,
        status_long=STATUS_LONG,
    )
    firmware = Path(project_dir) / "firmware"
    project_dir = Path(project_dir)
    paths = [firmware / f"{project}_axi.h", firmware / f"{project}_axi.cpp", project_dir / "emulator_bridge.cpp"]
    paths[0].write_text(header)
    paths[1].write_text(SOURCE.format(project=project, beat_bits=BEAT_BITS, call=call))
    paths[2].write_text(BRIDGE.format(project=project))
    paths.append(project_dir / "emulator_weights.h")
    paths[3].write_text(WEIGHTS_HEADER)
    return paths


def compile_top(hls_dir: Path, sources: list, target: Path, *flags: str, project: str = "myproject") -> str:
    """g++ -Wall the model and the accelerator top with ``sources`` into ``target``; returns the
    compiler's messages (warnings included), raises with them on failure."""
    command = [
        "g++",
        "-std=c++14",
        "-O2",
        "-Wall",
        "-Wextra",
        "-Wno-unused-label",
        "-Wno-unknown-pragmas",
        *flags,
        "-isystem",
        "firmware/ap_types",
        "-isystem",
        str(AXI_SDATA_SHIM),
        "-Ifirmware",
        f"firmware/{project}.cpp",
        f"firmware/{project}_axi.cpp",
        *sources,
        "-o",
        str(Path(target).resolve()),
    ]
    result = subprocess.run(command, cwd=hls_dir, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"g++ failed on {target.name} in {hls_dir}:\n{result.stderr[-4000:]}")
    return " ".join(command) + "\n" + result.stderr
