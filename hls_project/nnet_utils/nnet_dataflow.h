#ifndef NNET_DATAFLOW_H_
#define NNET_DATAFLOW_H_

// Our DATAFLOW regions (the accelerator top's run_transfer, lstm_call) and their FIFO depths, in
// a form the threaded C-simulation also runs (overlay/emulator_include/threaded/hls_stream.h,
// which defines NNET_THREADED_CSIM):
//   NNET_STREAM_DEPTH(stream, n): `#pragma HLS STREAM variable=stream depth=n` for Vivado / Vitis
//       HLS (and ignored by the sequential g++ builds, as the pragma was); in the threaded build,
//       the stream holds at most n elements.
//   NNET_DATAFLOW2(p1, p2), NNET_DATAFLOW3(p1, p2, p3): the region's process calls, in order
//       (`p1; p2; p3`: what HLS sees is the calls as written); in the threaded build, each call
//       on its own thread, joined before the region returns. A call's template arguments must
//       not contain a comma (it would split the macro argument).
//   NNET_FREE_RUNNING3(p1, p2, p3): the three processes of a free-running region (the accelerator
//       top: ap_ctrl_none, its FIFOs static), which HLS restarts without a handshake, so one
//       invocation's processes overlap the next's. For HLS the calls in order, as above; in the
//       threaded build, each process on a thread started at the region's first invocation that
//       runs it again and again for the program's lifetime (later invocations do nothing), so a
//       caller feeds the region's input streams and reads its outputs as they come.
// The region keeps its `#pragma HLS DATAFLOW`.

#include "hls_stream.h"

// A pragma from a macro: `_Pragma` of the stringized text after its arguments are substituted
// (as hls4ml's PRAGMA_DATA_PACK in nnet_common.h).
#define NNET_PRAGMA_TEXT(text) _Pragma(#text)
#define NNET_PRAGMA(text) NNET_PRAGMA_TEXT(text)

#ifdef NNET_THREADED_CSIM
#define NNET_STREAM_DEPTH(stream, n) (stream).set_depth(n)
#define NNET_PROCESS(call) threaded_csim::process(#call, [&] { call; })
#define NNET_DATAFLOW2(p1, p2) threaded_csim::dataflow({NNET_PROCESS(p1), NNET_PROCESS(p2)})
#define NNET_DATAFLOW3(p1, p2, p3) threaded_csim::dataflow({NNET_PROCESS(p1), NNET_PROCESS(p2), NNET_PROCESS(p3)})
#define NNET_FREE_RUNNING3(p1, p2, p3)                                                                                      \
    static threaded_csim::free_running nnet_free_running_region({NNET_PROCESS(p1), NNET_PROCESS(p2), NNET_PROCESS(p3)})
#else
#define NNET_STREAM_DEPTH(stream, n) NNET_PRAGMA(HLS STREAM variable = stream depth = n)
#define NNET_DATAFLOW2(p1, p2)                                                                                              \
    p1;                                                                                                                     \
    p2
#define NNET_DATAFLOW3(p1, p2, p3)                                                                                          \
    p1;                                                                                                                     \
    p2;                                                                                                                     \
    p3
#define NNET_FREE_RUNNING3(p1, p2, p3) NNET_DATAFLOW3(p1, p2, p3)
#endif

#endif
