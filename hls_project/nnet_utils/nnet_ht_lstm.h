#ifndef NNET_HT_LSTM_H_
#define NNET_HT_LSTM_H_

// HT-LSTM and FDHT-LSTM input maps: hierarchical-Tucker mat-vec, one core per step (models/ht.py).
// The HT-LSTM runs its streaming order as a frame pipeline, every core one mode_contract process
// (nnet_decomposed.h; ht_pipeline_config). The FDHT-LSTM (its map reads [x_t; h_t-1], frame by
// frame) runs its children-first order: its first leaf on the streaming frame with mode_contract,
// every other node with ht_node_contract,
//     out[a, p, q, t, b] = sum_{u, v} in[a, p, u, q, v, b] * core[u, v, t],
// over a buffer that is never transposed: each buffer is stored in banks chosen for the step
// that reads it (bank = (u, v) digits of the logical address), so the u * v reads of one output
// element hit u * v different banks in the same cycle, and the writer re-indexes its outputs
// into that layout with a bank_cursor (hls_project/decomposed.py checks the schedule).

#include "nnet_common.h"
#include "nnet_decomposed.h"

namespace nnet {

// A core of the HT-LSTM's streaming order (models.ht.StreamStep) as a step of its frame pipeline:
// a mode_contract over the call's frames, the core stored in read order (n_in, rank_in, rank_out,
// n_out).
struct ht_pipeline_config : mode_contract_config {};

struct ht_node_config {
    static const unsigned a = 1, p = 1, u = 1, q = 1, v = 1, t = 1, b = 1;
    static const unsigned reuse_factor = 1;
    static const unsigned multiplier_limit = 1; // ceil(u * v / reuse_factor)
    // typedef core_t; typedef mac_t (exact sum of u * v products);
    // typedef bank_view<...> out_view (the next step's layout of this step's output)
};

template <class in_T, class out_T, class CONFIG_T, unsigned OUT_DEPTH>
void ht_node_contract(const in_T in[CONFIG_T::u * CONFIG_T::v][CONFIG_T::a * CONFIG_T::p * CONFIG_T::q * CONFIG_T::b],
                      out_T out[CONFIG_T::out_view::banks][OUT_DEPTH],
                      const typename CONFIG_T::core_t core[CONFIG_T::u * CONFIG_T::v * CONFIG_T::t]) {
    const unsigned P = CONFIG_T::p, U = CONFIG_T::u, Q = CONFIG_T::q, V = CONFIG_T::v;
    const unsigned T = CONFIG_T::t, B = CONFIG_T::b;
    // the u * v coefficients of one cycle lie in u * v blocks of t words: one block per bank
    const unsigned core_banks = U * V;
    #pragma HLS ARRAY_PARTITION variable=core block factor=core_banks
    // outputs leave in address order (a, p, q, t, b): the cursor banks them for the next step
    bank_cursor<typename CONFIG_T::out_view> cursor;
Outputs:
    for (unsigned a = 0; a < CONFIG_T::a; a++) {
        for (unsigned p = 0; p < P; p++) {
            for (unsigned q = 0; q < Q; q++) {
                for (unsigned t = 0; t < T; t++) {
                    for (unsigned b = 0; b < B; b++) {
                        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
                        #pragma HLS ALLOCATION operation instances=mul limit=CONFIG_T::multiplier_limit
                        const unsigned offset = ((a * P + p) * Q + q) * B + b;
                        typename CONFIG_T::mac_t acc = 0;
                    Terms: // u * v reads, one per bank of in and of core
                        for (unsigned uv = 0; uv < core_banks; uv++) {
                            acc += in[uv][offset] * core[uv * T + t];
                        }
                        out[cursor.bank()][cursor.offset()] = acc;
                        cursor.next();
                    }
                }
            }
        }
    }
}

} // namespace nnet

#endif
