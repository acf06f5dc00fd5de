#ifndef NNET_DATAFLOW_H_
#define NNET_DATAFLOW_H_

// Our DATAFLOW regions (the accelerator top's run_transfer, lstm_call, a decomposed family's step
// chain) and their FIFO depths, in a form the threaded C-simulation also runs
// (overlay/emulator_include/threaded/hls_stream.h, which defines NNET_THREADED_CSIM):
//   NNET_STREAM_DEPTH(stream, n): `#pragma HLS STREAM variable=stream depth=n` for Vivado / Vitis
//       HLS (and ignored by the sequential g++ builds, as the pragma was); in the threaded build,
//       the stream holds at most n elements.
//   NNET_DATAFLOW(p1, p2, ...): the region's process calls (2 to 8), in order (`p1; p2; ...`: what
//       HLS sees is the calls as written); in the threaded build, each call on its own thread,
//       joined before the region returns. A call whose template arguments hold a comma is written
//       in parentheses, `(f<a, b>(x))`, so the macro takes it as one argument.
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

// The number of a macro's arguments (1 to 8), and a macro name with a number appended.
#define NNET_COUNT(...) NNET_COUNT_(__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define NNET_COUNT_(a1, a2, a3, a4, a5, a6, a7, a8, n, ...) n
#define NNET_CAT_(a, b) a##b
#define NNET_CAT(a, b) NNET_CAT_(a, b)
// f(p1), f(p2), ... and p1; p2; ... for 1 to 8 arguments
#define NNET_MAP1(f, p) f(p)
#define NNET_MAP2(f, p, ...) f(p), NNET_MAP1(f, __VA_ARGS__)
#define NNET_MAP3(f, p, ...) f(p), NNET_MAP2(f, __VA_ARGS__)
#define NNET_MAP4(f, p, ...) f(p), NNET_MAP3(f, __VA_ARGS__)
#define NNET_MAP5(f, p, ...) f(p), NNET_MAP4(f, __VA_ARGS__)
#define NNET_MAP6(f, p, ...) f(p), NNET_MAP5(f, __VA_ARGS__)
#define NNET_MAP7(f, p, ...) f(p), NNET_MAP6(f, __VA_ARGS__)
#define NNET_MAP8(f, p, ...) f(p), NNET_MAP7(f, __VA_ARGS__)
#define NNET_SEQUENCE1(p) p
#define NNET_SEQUENCE2(p, ...)                                                                                              \
    p;                                                                                                                      \
    NNET_SEQUENCE1(__VA_ARGS__)
#define NNET_SEQUENCE3(p, ...)                                                                                              \
    p;                                                                                                                      \
    NNET_SEQUENCE2(__VA_ARGS__)
#define NNET_SEQUENCE4(p, ...)                                                                                              \
    p;                                                                                                                      \
    NNET_SEQUENCE3(__VA_ARGS__)
#define NNET_SEQUENCE5(p, ...)                                                                                              \
    p;                                                                                                                      \
    NNET_SEQUENCE4(__VA_ARGS__)
#define NNET_SEQUENCE6(p, ...)                                                                                              \
    p;                                                                                                                      \
    NNET_SEQUENCE5(__VA_ARGS__)
#define NNET_SEQUENCE7(p, ...)                                                                                              \
    p;                                                                                                                      \
    NNET_SEQUENCE6(__VA_ARGS__)
#define NNET_SEQUENCE8(p, ...)                                                                                              \
    p;                                                                                                                      \
    NNET_SEQUENCE7(__VA_ARGS__)

#ifdef NNET_THREADED_CSIM
#define NNET_STREAM_DEPTH(stream, n) (stream).set_depth(n)
#define NNET_PROCESS(call) threaded_csim::process(#call, [&] { call; })
#define NNET_DATAFLOW(...) threaded_csim::dataflow({NNET_CAT(NNET_MAP, NNET_COUNT(__VA_ARGS__))(NNET_PROCESS, __VA_ARGS__)})
#define NNET_FREE_RUNNING3(p1, p2, p3)                                                                                      \
    static threaded_csim::free_running nnet_free_running_region({NNET_PROCESS(p1), NNET_PROCESS(p2), NNET_PROCESS(p3)})
#else
#define NNET_STREAM_DEPTH(stream, n) NNET_PRAGMA(HLS STREAM variable = stream depth = n)
#define NNET_DATAFLOW(...) NNET_CAT(NNET_SEQUENCE, NNET_COUNT(__VA_ARGS__))(__VA_ARGS__)
#define NNET_FREE_RUNNING3(p1, p2, p3) NNET_DATAFLOW(p1, p2, p3)
#endif

#endif
