"""The accelerator top ``myproject_axi``: hls4ml's block design around our word protocol.

hls4ml's VivadoAccelerator writes a block design that connects an AXI DMA to the ports ``in``
and ``out`` of ``<project>_axi``; we replace its wrapper (which converts floats and has no way
to reset a stateful layer) by one that speaks ``host.protocol``: a control word, then raw
fixed-point words. ``emulator_bridge.cpp`` drives the very same function from C for the host's
emulated backend.
"""

from __future__ import annotations

from pathlib import Path

HEADER = """#ifndef {guard}_AXI_H_
#define {guard}_AXI_H_

// Accelerator top for the AXI-stream DMA (see host/protocol.py for the word protocol).
#include "ap_int.h"
#include "{project}.h"

static const unsigned N_X = {n_x};            // input values per call (frames * features)
static const unsigned N_IN = 1 + N_X;         // control word + input words
static const unsigned N_OUT = {n_out};        // output words
static const unsigned CONTROL_RESET = 1;      // control bit 0: reset stateful LSTM layers

struct axi_word {{
    ap_int<32> data;
    ap_uint<1> last;
}};
typedef axi_word input_axi_t;
typedef axi_word output_axi_t;

void {project}_axi(input_axi_t in[N_IN], output_axi_t out[N_OUT]);

#endif
"""

PARALLEL_IO = """    {input_t} x[N_X];
    {output_t} y[N_OUT];
Read:
    for (unsigned i = 0; i < N_X; i++) {{
        #pragma HLS PIPELINE
        x[i].range({in_width} - 1, 0) = in[1 + i].data.range({in_width} - 1, 0);
    }}
    {project}(x, y);
Write:
    for (unsigned j = 0; j < N_OUT; j++) {{
        #pragma HLS PIPELINE
        out[j].data = nnet::fixed_raw(y[j]);
        out[j].last = (j == N_OUT - 1);
    }}
"""

STREAM_IO = """    hls::stream<{input_t}> x("x");
    hls::stream<{output_t}> y("y");
    #pragma HLS STREAM variable=x depth={x_depth}
    #pragma HLS STREAM variable=y depth={y_depth}
Read:
    for (unsigned i = 0; i < N_X / {input_t}::size; i++) {{
        {input_t} pack;
        for (unsigned k = 0; k < {input_t}::size; k++) {{
            pack[k].range({in_width} - 1, 0) = in[1 + i * {input_t}::size + k].data.range({in_width} - 1, 0);
        }}
        x.write(pack);
    }}
    {project}(x, y);
Write:
    for (unsigned j = 0; j < N_OUT / {output_t}::size; j++) {{
        {output_t} pack = y.read();
        for (unsigned k = 0; k < {output_t}::size; k++) {{
            const unsigned w = j * {output_t}::size + k;
            out[w].data = nnet::fixed_raw(pack[k]);
            out[w].last = (w == N_OUT - 1);
        }}
    }}
"""

SOURCE = """#include "{project}_axi.h"
#include "nnet_utils/nnet_lstm_cell.h"

void {project}_axi(input_axi_t in[N_IN], output_axi_t out[N_OUT]) {{
    #pragma HLS INTERFACE axis port=in
    #pragma HLS INTERFACE axis port=out
    #pragma HLS INTERFACE ap_ctrl_none port=return

    if (in[0].data & CONTROL_RESET) {{
        nnet::lstm_reset_all();
    }}
{io}}}
"""

BRIDGE = """// C entry points of the accelerator top for host.Accelerator's emulated backend (not synthesized).
#include <stdint.h>

#include "firmware/{project}_axi.h"

extern "C" {{
unsigned accel_words_in() {{ return N_IN; }}
unsigned accel_words_out() {{ return N_OUT; }}

// One DMA round trip: N_IN words in, N_OUT words out.
void accel_transfer(const int32_t *words_in, int32_t *words_out) {{
    static input_axi_t in[N_IN];
    static output_axi_t out[N_OUT];
    for (unsigned i = 0; i < N_IN; i++) {{
        in[i].data = words_in[i];
        in[i].last = (i == N_IN - 1);
    }}
    {project}_axi(in, out);
    for (unsigned j = 0; j < N_OUT; j++) {{
        words_out[j] = out[j].data.to_int();
    }}
}}
}}
"""


def write_wrapper(hls_model, project_dir) -> list:
    """Write ``<project>_axi.{h,cpp}`` and ``emulator_bridge.cpp``; returns their paths."""
    project = hls_model.config.get_project_name()
    io_type = hls_model.config.get_config_value("IOType")
    inp = hls_model.get_input_variables()[0]
    out = hls_model.get_output_variables()[0]
    n_x, n_out = inp.size(), out.size()
    in_width = inp.type.precision.width
    fields = dict(project=project, input_t=inp.type.name, output_t=out.type.name, in_width=in_width)
    if io_type == "io_parallel":
        io = PARALLEL_IO.format(**fields)
    else:
        io = STREAM_IO.format(**fields, x_depth=max(1, n_x // inp.shape[-1]), y_depth=max(1, n_out // out.shape[-1]))
    firmware = Path(project_dir) / "firmware"
    paths = [firmware / f"{project}_axi.h", firmware / f"{project}_axi.cpp", Path(project_dir) / "emulator_bridge.cpp"]
    paths[0].write_text(HEADER.format(guard=project.upper(), project=project, n_x=n_x, n_out=n_out))
    paths[1].write_text(SOURCE.format(project=project, io=io))
    paths[2].write_text(BRIDGE.format(project=project))
    return paths
