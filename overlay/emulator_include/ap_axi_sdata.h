#ifndef OVERLAY_EMULATOR_AP_AXI_SDATA_H_
#define OVERLAY_EMULATOR_AP_AXI_SDATA_H_

// For g++ builds of the accelerator top only (the host's emulator and the co-simulation
// testbench run here): the members of ap_axiu from Vivado HLS / Vitis HLS's ap_axi_sdata.h,
// which the tools use instead of this file. Written for this project, not Xilinx's header.
#include "ap_int.h"

template <int D, int U, int TI, int TD> struct ap_axiu {
    ap_uint<D> data;
    ap_uint<(D + 7) / 8> keep;
    ap_uint<(D + 7) / 8> strb;
    ap_uint<U> user;
    ap_uint<1> last;
    ap_uint<TI> id;
    ap_uint<TD> dest;
};

// Without TUSER, TID and TDEST (widths 0), as in the tools' header: the struct has no such members.
template <int D> struct ap_axiu<D, 0, 0, 0> {
    ap_uint<D> data;
    ap_uint<(D + 7) / 8> keep;
    ap_uint<(D + 7) / 8> strb;
    ap_uint<1> last;
};

#endif
