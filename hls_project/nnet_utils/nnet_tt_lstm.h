#ifndef NNET_TT_LSTM_H_
#define NNET_TT_LSTM_H_

// TT-LSTM input map: the tensor-train mat-vec, one core per step, last core first (models/tt.py).
// The first step is the last core on the streaming frame (frame_mode_contract in
// nnet_decomposed.h); every other core is one tt_core_contract over a banked buffer. The
// schedule, buffer layouts, core layouts and exact MAC types are computed in Python
// (hls_project/tt_lstm.py) and emitted as one config per step.

#include "nnet_common.h"
#include "nnet_decomposed.h"

namespace nnet {

struct tt_core_config {
    // core shape (rank_out, n_in, n_out, rank_in); buffers:
    // in  (n_left, n_in, n_right, rank_in), out (n_left, n_out, n_right, rank_out)
    static const unsigned n_left = 1;
    static const unsigned n_in = 1;
    static const unsigned n_out = 1;
    static const unsigned n_right = 1;
    static const unsigned rank_in = 1;
    static const unsigned rank_out = 1;
    static const unsigned reuse_factor = 1;
    static const unsigned multiplier_limit = 1; // ceil(n_in * rank_in / reuse_factor)
    // typedef core_t; typedef mac_t (exact sum of n_in * rank_in products);
    // typedef bank_view<...> out_view (the next step's layout of this step's output)
};

// out[l, j, p, a] = sum_{i, b} core[a, i, j, b] * in[l, i, p, b], rounded once.
// in is banked by (i, b) (bank_view<1, n_in, n_right, rank_in, 1>: bank i * rank_in + b,
// offset l * n_right + p) and the core is stored as (i, b, a, j) in n_in * rank_in blocks, so the
// n_in * rank_in terms of one output come from different banks of both in one cycle.
template <class in_T, class out_T, class CONFIG_T, unsigned OUT_DEPTH>
void tt_core_contract(
    const in_T in[CONFIG_T::n_in * CONFIG_T::rank_in][CONFIG_T::n_left * CONFIG_T::n_right],
    out_T out[CONFIG_T::out_view::banks][OUT_DEPTH],
    const typename CONFIG_T::core_t core[CONFIG_T::n_in * CONFIG_T::rank_in * CONFIG_T::rank_out * CONFIG_T::n_out]) {
    const unsigned n_out = CONFIG_T::n_out, n_right = CONFIG_T::n_right, rank_out = CONFIG_T::rank_out;
    const unsigned terms = CONFIG_T::n_in * CONFIG_T::rank_in;
    #pragma HLS ARRAY_PARTITION variable=core block factor=terms
    // outputs leave in address order (l, j, p, a): the cursor banks them for the next step
    bank_cursor<typename CONFIG_T::out_view> cursor;
Left:
    for (unsigned l = 0; l < CONFIG_T::n_left; l++) {
    Out:
        for (unsigned j = 0; j < n_out; j++) {
        Right:
            for (unsigned p = 0; p < n_right; p++) {
            RankOut:
                for (unsigned a = 0; a < rank_out; a++) {
                    #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
                    #pragma HLS ALLOCATION operation instances=mul limit=CONFIG_T::multiplier_limit
                    typename CONFIG_T::mac_t acc = 0;
                Terms: // (i, b) = term: one bank of in and of core each
                    for (unsigned term = 0; term < terms; term++) {
                        acc += core[term * rank_out * n_out + a * n_out + j] * in[term][l * n_right + p];
                    }
                    out[cursor.bank()][cursor.offset()] = acc;
                    cursor.next();
                }
            }
        }
    }
}

} // namespace nnet

#endif
