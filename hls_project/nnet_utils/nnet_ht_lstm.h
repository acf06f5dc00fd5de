#ifndef NNET_HT_LSTM_H_
#define NNET_HT_LSTM_H_

// HT-LSTM input map: hierarchical-Tucker mat-vec, one tree node per call, leaves then transfer
// tensors in post-order (models/ht.py). Every node is
//     out[a, p, q, t, b] = sum_{u, v} in[a, p, u, q, v, b] * core[u, v, t]
// over a buffer that is never transposed: each buffer is stored in banks chosen for the step
// that reads it (bank = (u, v) digits of the logical address), so the u * v reads of one output
// element hit u * v different banks in the same cycle, and the writer re-indexes its outputs
// into that layout by address arithmetic (hls_project/ht_lstm.py checks the schedule).

#include "nnet_common.h"
#include "nnet_lstm_cell.h"

namespace nnet {

// The banked layout of a buffer read as (a, p, u, q, v, b): bank = u * V + v,
// offset = ((a * P + p) * Q + q) * B + b.
template <unsigned P, unsigned U, unsigned Q, unsigned V, unsigned B> struct bank_view {
    static const unsigned banks = U * V;
    static const unsigned p = P, u = U, q = Q, v = V, b = B;
};

// Walks the logical addresses 0, 1, 2, ... of a buffer in VIEW's banked layout without division:
// the address's digits (ap, u, q, v, b) in VIEW's radices, advanced with carries.
template <class VIEW> struct bank_cursor {
    unsigned ap, u, q, v, b;
    bank_cursor() : ap(0), u(0), q(0), v(0), b(0) {}
    unsigned bank() const { return u * VIEW::v + v; }
    unsigned offset() const { return (ap * VIEW::q + q) * VIEW::b + b; }
    void next() {
        if (++b < VIEW::b) {
            return;
        }
        b = 0;
        if (++v < VIEW::v) {
            return;
        }
        v = 0;
        if (++q < VIEW::q) {
            return;
        }
        q = 0;
        if (++u < VIEW::u) {
            return;
        }
        u = 0;
        ap++;
    }
};

struct ht_node_config {
    static const unsigned a = 1, p = 1, u = 1, q = 1, v = 1, t = 1, b = 1;
    static const unsigned reuse_factor = 1;
    // typedef core_t; typedef mac_t (exact sum of u * v products);
    // typedef bank_view<...> out_view (the next step's layout of this step's output)
};

// Scatter a plain array into the banked layout of the first step.
template <class T, class VIEW, unsigned N> void ht_scatter(const T in[N], T out[VIEW::banks][N / VIEW::banks]) {
    bank_cursor<VIEW> cursor;
    for (unsigned i = 0; i < N; i++) {
        #pragma HLS PIPELINE
        out[cursor.bank()][cursor.offset()] = in[i];
        cursor.next();
    }
}

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
