"""The accelerator top ``myproject_axi``: hls4ml's block design around our stream protocol.

hls4ml's VivadoAccelerator writes a block design that connects an AXI DMA to the ports ``in``
and ``out`` of ``<project>_axi``; we replace its wrapper (which converts floats and has no way
to reset a stateful layer) by one that speaks ``host.protocol``: 64-bit ``ap_axiu`` beats (TLAST
as a side channel in Vivado HLS and Vitis HLS alike), a control beat, then raw fixed-point values
in the model's stream packs (``host.protocol.Packing``: a pack that fits a beat is one beat, so
the reader and writer move a beat per cycle), several model calls per transfer, TLAST on the last output beat, and a
status beat that reports a malformed transfer: a call cut short is completed with zeros (its
outputs are flagged, and the LSTM state is meaningless until the next reset), a long one is
drained, and the top is ready for the next transfer. Reader, model and writer are a dataflow
region on FIFOs a few packs deep, so no stage of the top holds a frame (the threaded
C-simulation, ``overlay.testbench.run_threaded_testbench``, runs them concurrently on those depths).
``emulator_bridge.cpp`` drives the very same function from C for the host's emulated backend.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from host.protocol import BEAT_BITS, CALLS_SHIFT, CONTROL_RESET, STATUS_LONG, STATUS_SHORT, Packing, values_per_beat

# Packs each FIFO of the top holds: enough for the reader to run a few beats ahead of the model.
FIFO_DEPTH = 16
# For g++ builds only (emulator, testbench): Vivado HLS and Vitis HLS bring their own.
AXI_SDATA_SHIM = Path(__file__).parent / "emulator_include"
# For the threaded g++ build only (overlay.testbench.run_threaded_testbench): its hls_stream.h
# runs each process of our dataflow regions on a thread, on FIFOs of their declared depths.
THREADED_STREAMS = AXI_SDATA_SHIM / "threaded"

HEADER = """#ifndef {guard}_AXI_H_
#define {guard}_AXI_H_

// Accelerator top for the AXI-stream DMA (see host/protocol.py for the stream protocol).
#include "ap_axi_sdata.h"
#include "ap_int.h"
#include "hls_stream.h"
#include "{project}.h"

// data, keep, strb and last: the AXI DMA's streams have no TUSER, TID or TDEST
typedef ap_axiu<{beat_bits}, 0, 0, 0> axis_beat;

static const unsigned N_X = {n_x};               // input values per call (frames * features)
static const unsigned N_OUT = {n_out};           // output values per call
static const unsigned IN_WIDTH = {in_width};     // bits per input value
static const unsigned OUT_WIDTH = {out_width};   // bits per output value
static const unsigned IN_PER_BEAT = {in_per_beat};     // input values per beat of a pack
static const unsigned OUT_PER_BEAT = {out_per_beat};   // output values per beat of a pack
static const unsigned IN_PACK_BEATS = {in_pack_beats}; // beats per input pack (host.protocol.Packing)
static const unsigned OUT_PACK_BEATS = {out_pack_beats};
static const unsigned IN_BEATS = {in_beats};     // beats per call in
static const unsigned OUT_BEATS = {out_beats};   // beats per call out
static const unsigned CONTROL_RESET = {control_reset}; // control bit 0: reset stateful LSTM layers
static const unsigned CALLS_SHIFT = {calls_shift};     // control bits 16..47: calls in this transfer
static const unsigned long long STATUS_SHORT = {status_short}ULL; // the input ended early
static const unsigned long long STATUS_LONG = {status_long}ULL;   // the input went on past its end

void {project}_axi(hls::stream<axis_beat> &in, hls::stream<axis_beat> &out);

#endif
"""

# The model's process of the top: io_stream, the model itself on the packs as they come
# (hls4ml's io_stream model is a DATAFLOW region: it restarts for the next call while its later
# layers finish this one); io_parallel, the whole call as one port of the model.
STREAM_MODEL = """{project}(x, {reset_port}y)"""

PARALLEL_MODEL = """
// The model on arrays (io_parallel, small models only: the whole call is one port of the model).
static void run_call(hls::stream<x_pack_t> &x, {reset_param}hls::stream<y_pack_t> &y) {{
{parallel_reset}    {input_t} x_call[N_X];
    {output_t} y_call[N_OUT];
    #pragma HLS ARRAY_PARTITION variable=x_call cyclic factor=x_pack_t::size
    #pragma HLS ARRAY_PARTITION variable=y_call cyclic factor=y_pack_t::size
Unpack: // a pack per cycle; the call's last pack is padded
    for (unsigned p = 0; p < (N_X + x_pack_t::size - 1) / x_pack_t::size; p++) {{
        #pragma HLS PIPELINE
        const x_pack_t pack = x.read();
        for (unsigned k = 0; k < x_pack_t::size; k++) {{
            if (p * x_pack_t::size + k < N_X) {{
                x_call[p * x_pack_t::size + k] = pack[k];
            }}
        }}
    }}
    {project}(x_call, {reset_arg}y_call);
Pack:
    for (unsigned p = 0; p < (N_OUT + y_pack_t::size - 1) / y_pack_t::size; p++) {{
        #pragma HLS PIPELINE
        y_pack_t pack;
        for (unsigned k = 0; k < y_pack_t::size; k++) {{
            pack[k] = (p * y_pack_t::size + k < N_OUT) ? y_call[p * y_pack_t::size + k] : {output_t}(0);
        }}
        y.write(pack);
    }}
}}
"""
# io_parallel's reset argument: the reader's token of this call.
PARALLEL_RESET = """    {reset_t} lstm_reset_call[1];
    lstm_reset_call[0] = lstm_reset.read();
"""

# The reader's reset token of a call, for the stateful layers' reset port (set on the first call
# of a transfer whose control word asks for it): io_stream, the model's one-value reset pack.
STREAM_RESET_TOKEN = """    {reset_t} reset_pack;
    reset_pack[0] = reset;
    lstm_reset.write(reset_pack);
"""
PARALLEL_RESET_TOKEN = """    lstm_reset.write(reset);
"""
NO_RESET_TOKEN = """    (void)reset; // no stateful layer: nothing to reset
"""

SOURCE = """#include "{project}_axi.h"
#include "nnet_utils/nnet_dataflow.h"
#include "nnet_utils/nnet_lstm_cell.h"
#include "nnet_utils/nnet_types.h"

typedef {x_pack} x_pack_t; // an element of the model's input stream ({x_size} values)
typedef {y_pack} y_pack_t; // an element of the model's output stream ({y_size} values)
// The reader's word to the writer after each call: bit BEAT_BITS, the call ends its transfer;
// below it, that transfer's status beat (calls complete, STATUS_SHORT, STATUS_LONG).
typedef ap_uint<{beat_bits} + 1> call_status_t;

static axis_beat beat_of(ap_uint<{beat_bits}> data, bool last) {{
    axis_beat word;
    word.data = data;
    word.keep = -1;
    word.strb = -1;
    word.last = last;
    return word;
}}

// One call's input beats -> the model's input packs, values in order: a beat per cycle, a pack
// every IN_PACK_BEATS beats (one beat when a pack fits it), every slot a constant field of the
// beat. The first call of a transfer reads its control beat first (a control word of 0 calls is
// served as 1: the model runs once per call of the top). A call cut short (TLAST before its last
// beat) is completed with zeros, and so are the transfer's calls after it; after a transfer's
// last call, beats up to TLAST are drained. The transfer's place lives in this process (static),
// so the top runs one call per invocation and the next call's beats come in while the model and
// the writer still work on this one.
static void read_call(hls::stream<axis_beat> &in, hls::stream<x_pack_t> &x, {reset_param}
                      hls::stream<call_status_t> &status) {{
    static unsigned calls_left = 0; // calls of the current transfer still to read (0: a control beat is next)
    static bool ended = false;      // TLAST seen in the current transfer
    static unsigned done = 0;       // complete calls of the current transfer
    static bool short_input = false;
    bool reset = false;
    if (calls_left == 0) {{
        const axis_beat control = in.read();
        ended = control.last;
        reset = (control.data & CONTROL_RESET) != 0;
        const unsigned calls = control.data.range(CALLS_SHIFT + 31, CALLS_SHIFT).to_uint();
        calls_left = calls ? calls : 1;
        done = 0;
        short_input = false;
    }}
{reset_token}    x_pack_t pack;
    unsigned part = 0; // the beat's place in its pack; every call starts a pack
    bool complete = true;
ReadBeats:
    for (unsigned beat = 0; beat < IN_BEATS; beat++) {{
        #pragma HLS PIPELINE II=1
        ap_uint<{beat_bits}> data = 0;
        if (ended) {{
            complete = false;
        }} else {{
            axis_beat word = in.read();
            ended = word.last;
            data = word.data;
        }}
        for (unsigned k = 0; k < IN_PER_BEAT; k++) {{
            if (part * IN_PER_BEAT + k < x_pack_t::size) {{
                pack[part * IN_PER_BEAT + k].range(IN_WIDTH - 1, 0) =
                    data.range(k * IN_WIDTH + IN_WIDTH - 1, k * IN_WIDTH);
            }}
        }}
        if (++part == IN_PACK_BEATS) {{
            x.write(pack);
            part = 0;
        }}
    }}
    if (complete) {{
        done++;
    }} else {{
        short_input = true;
    }}
    call_status_t token = 0;
    if (--calls_left == 0) {{
        bool long_input = false;
    Drain:
        while (!ended) {{
            ended = in.read().last;
            long_input = true;
        }}
        ap_uint<{beat_bits}> word = done;
        if (short_input) {{
            word |= STATUS_SHORT;
        }}
        if (long_input) {{
            word |= STATUS_LONG;
        }}
        token = word;
        token[{beat_bits}] = 1;
    }}
    status.write(token);
}}
{run_call}
// One call's output packs -> OUT_BEATS beats (a pack every OUT_PACK_BEATS beats, a beat per
// cycle), then, after the last call of a transfer, its status beat with TLAST.
static void write_call(hls::stream<y_pack_t> &y, hls::stream<call_status_t> &status, hls::stream<axis_beat> &out) {{
    y_pack_t pack;
    unsigned part = 0; // the beat's place in its pack
WriteBeats:
    for (unsigned beat = 0; beat < OUT_BEATS; beat++) {{
        #pragma HLS PIPELINE II=1
        if (part == 0) {{
            pack = y.read();
        }}
        ap_uint<{beat_bits}> data = 0;
        for (unsigned k = 0; k < OUT_PER_BEAT; k++) {{
            if (part * OUT_PER_BEAT + k < y_pack_t::size) {{
                data.range(k * OUT_WIDTH + OUT_WIDTH - 1, k * OUT_WIDTH) =
                    pack[part * OUT_PER_BEAT + k].range(OUT_WIDTH - 1, 0);
            }}
        }}
        out.write(beat_of(data, false));
        part = (part + 1 == OUT_PACK_BEATS) ? 0 : part + 1;
    }}
    const call_status_t token = status.read();
    if (token[{beat_bits}]) {{
        out.write(beat_of(token.range({beat_bits} - 1, 0), true));
    }}
}}

// One model call per invocation: reader, model and writer are a free-running DATAFLOW region on
// FIFOs a few packs deep (no stage holds a frame). With ap_ctrl_none the region restarts without
// a handshake, so consecutive calls, of one transfer or of the next, overlap: call t + 1's beats
// come in while the model works on call t, and the layers of a stateful model keep their state
// in their own processes (the reset is a token of the reader's). The threaded C-simulation runs
// the three processes on threads that live across invocations (NNET_FREE_RUNNING3).
void {project}_axi(hls::stream<axis_beat> &in, hls::stream<axis_beat> &out) {{
    #pragma HLS INTERFACE axis port=in
    #pragma HLS INTERFACE axis port=out
    #pragma HLS INTERFACE ap_ctrl_none port=return
    #pragma HLS DATAFLOW
    static hls::stream<x_pack_t> x("x");
    static hls::stream<y_pack_t> y("y");
    static hls::stream<call_status_t> status("status");
{reset_stream}    NNET_STREAM_DEPTH(x, {fifo_depth});
    NNET_STREAM_DEPTH(y, {fifo_depth});
    NNET_STREAM_DEPTH(status, 2);
    NNET_FREE_RUNNING3(read_call(in, x, {reset_port}status), {model_call}, write_call(y, status, out));
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

// One DMA round trip: n_in beats in (TLAST on the last), at most max_out beats out. The top runs
// one model call per invocation, so it is invoked until it writes TLAST (the free-running
// hardware restarts by itself). Returns the beats the top wrote if the last carried TLAST and the
// top read all input, else -1.
int accel_transfer(const uint64_t *beats_in, unsigned n_in, uint64_t *beats_out, unsigned max_out) {{
    static hls::stream<axis_beat> in("in"), out("out"); // the top's ports: one pair for its lifetime
    if (n_in == 0) {{
        return -1;
    }}
    for (unsigned i = 0; i < n_in; i++) {{
        axis_beat word;
        word.data = beats_in[i];
        word.keep = -1;
        word.last = (i == n_in - 1);
        in.write(word);
    }}
    int written = 0;
    bool last = false;
    while (!last) {{
        {project}_axi(in, out);
        while (!out.empty()) {{
            axis_beat word = out.read();
            if ((unsigned)written < max_out) {{
                beats_out[written] = word.data.to_uint64();
            }}
            written++;
            last = word.last;
        }}
    }}
    return in.empty() ? written : -1;
}}
}}
"""


WEIGHTS_HEADER = """// Included first in the emulator build: weights are read from the folder the host sets.
const char *accel_weights_dir();
"""


def top_packings(hls_model) -> tuple:
    """The ``host.protocol.Packing`` of the top's input and output: io_stream, the model's stream
    elements (the top hands on a whole pack); io_parallel, a full beat (the top unpacks it)."""
    from fixedpoint.hls_types import from_hls4ml
    from hls_project.input_stream import stream_element_values

    inp, out = hls_model.get_input_variables()[0], hls_model.get_output_variables()[0]
    in_type = from_hls4ml(inp.type.precision)
    out_type = from_hls4ml(out.type.precision, rounding_matters=False)
    if hls_model.config.get_config_value("IOType") == "io_parallel":
        return Packing.of(in_type, values_per_beat(in_type)), Packing.of(out_type, values_per_beat(out_type))
    return Packing.of(in_type, stream_element_values(inp)), Packing.of(out_type, stream_element_values(out))


def write_wrapper(hls_model, project_dir) -> list:
    """Write ``<project>_axi.{h,cpp}``, ``emulator_bridge.cpp`` and ``emulator_weights.h``; returns their paths."""
    project = hls_model.config.get_project_name()
    io_type = hls_model.config.get_config_value("IOType")
    inp = hls_model.get_input_variables()[0]
    out = hls_model.get_output_variables()[0]
    n_x, n_out = inp.size(), out.size()
    in_packing, out_packing = top_packings(hls_model)
    x_size, y_size = in_packing.pack, out_packing.pack
    if io_type == "io_parallel":
        x_pack, y_pack = f"nnet::array<{inp.type.name}, {x_size}>", f"nnet::array<{out.type.name}, {y_size}>"
    else:
        x_pack, y_pack = inp.type.name, out.type.name
    inputs = hls_model.get_input_variables()
    reset = inputs[1] if len(inputs) > 1 else None  # the stateful layers' reset port
    model = model_process(project, io_type, inp.type.name, out.type.name, reset.type.name if reset else None)
    header = HEADER.format(
        guard=project.upper(),
        project=project,
        beat_bits=BEAT_BITS,
        n_x=n_x,
        n_out=n_out,
        in_width=in_packing.width,
        out_width=out_packing.width,
        in_per_beat=in_packing.per_beat,
        out_per_beat=out_packing.per_beat,
        in_pack_beats=in_packing.beats_per_pack,
        out_pack_beats=out_packing.beats_per_pack,
        in_beats=in_packing.beats(n_x),
        out_beats=out_packing.beats(n_out),
        control_reset=CONTROL_RESET,
        calls_shift=CALLS_SHIFT,
        status_short=STATUS_SHORT,
        status_long=STATUS_LONG,
    )
    firmware = Path(project_dir) / "firmware"
    project_dir = Path(project_dir)
    paths = [firmware / f"{project}_axi.h", firmware / f"{project}_axi.cpp", project_dir / "emulator_bridge.cpp"]
    paths[0].write_text(header)
    source = SOURCE.format(
        project=project,
        beat_bits=BEAT_BITS,
        x_pack=x_pack,
        y_pack=y_pack,
        x_size=x_size,
        y_size=y_size,
        fifo_depth=FIFO_DEPTH,
        **model,
    )
    paths[1].write_text(source)
    paths[2].write_text(BRIDGE.format(project=project))
    paths.append(project_dir / "emulator_weights.h")
    paths[3].write_text(WEIGHTS_HEADER)
    return paths


def model_process(project: str, io_type: str, input_t: str, output_t: str, reset_t: str | None) -> dict:
    """The top's fields for its model process: ``run_call`` (io_parallel's unpack, model, pack;
    empty for io_stream, whose model is the process), ``model_call``, and for a stateful model
    (``reset_t``: the type of its reset port; None: no stateful layer) the ``lstm_reset`` FIFO on
    which the reader sends every call's reset token."""
    reset_port = "lstm_reset, " if reset_t else ""
    reset_param = f"hls::stream<{reset_t}> &lstm_reset, " if reset_t else ""
    if io_type == "io_parallel":
        run_call = PARALLEL_MODEL.format(
            project=project,
            input_t=input_t,
            output_t=output_t,
            reset_param=reset_param,
            parallel_reset=PARALLEL_RESET.format(reset_t=reset_t) if reset_t else "",
            reset_arg="lstm_reset_call, " if reset_t else "",
        )
        model_call, token = f"run_call(x, {reset_port}y)", PARALLEL_RESET_TOKEN
    else:
        run_call, model_call = "", STREAM_MODEL.format(project=project, reset_port=reset_port)
        token = STREAM_RESET_TOKEN.format(reset_t=reset_t)
    stream = f'    static hls::stream<{reset_t}> lstm_reset("lstm_reset");\n    NNET_STREAM_DEPTH(lstm_reset, 2);\n'
    return dict(
        run_call=run_call,
        model_call=model_call,
        reset_param=reset_param,
        reset_port=reset_port,
        reset_token=token if reset_t else NO_RESET_TOKEN,
        reset_stream=stream if reset_t else "",
    )


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
        os.path.relpath(AXI_SDATA_SHIM, hls_dir),
        "-Ifirmware",
        f"firmware/{project}.cpp",
        f"firmware/{project}_axi.cpp",
        *sources,
        "-o",
        os.path.relpath(target, hls_dir),  # relative: the logged command is the same in any folder
    ]
    result = subprocess.run(command, cwd=hls_dir, capture_output=True, text=True)
    log_text = " ".join(command) + "\n" + result.stderr
    if result.returncode != 0:
        raise RuntimeError(compile_failure(target, hls_dir, log_text))
    return log_text


# error lines of a failed g++ run shown in the message (the full log is kept)
SHOWN_ERRORS = 8


def compile_failure(target: Path, hls_dir: Path, log_text: str) -> str:
    """The message of a failed compile: its first ``SHOWN_ERRORS`` error lines (not the warnings
    before them), and the whole log kept in a file of the system's temporary folder, which a
    failed build's clean-up of its output folder does not remove."""
    errors = [line for line in log_text.splitlines() if re.search(r"\berror: ", line)]
    with tempfile.NamedTemporaryFile("w", prefix=f"{target.stem}-", suffix=".log", delete=False) as log:
        log.write(log_text)
    shown = "\n".join(errors[:SHOWN_ERRORS]) or log_text[-2000:]
    count = f"the first {SHOWN_ERRORS} of {len(errors)} errors" if len(errors) > SHOWN_ERRORS else "its errors"
    return f"g++ failed on {target.name} in {hls_dir} ({count} below; the whole log is {log.name}):\n{shown}"
