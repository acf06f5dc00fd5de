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
    static unsigned bank(unsigned address) { return ((address / (B * V * Q)) % U) * V + (address / B) % V; }
    static unsigned offset(unsigned address) {
        const unsigned b = address % B;
        const unsigned q = (address / (B * V)) % Q;
        const unsigned ap = address / (B * V * Q * U);
        return (ap * Q + q) * B + b;
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
    for (unsigned i = 0; i < N; i++) {
        #pragma HLS PIPELINE
        out[VIEW::bank(i)][VIEW::offset(i)] = in[i];
    }
}

template <class in_T, class out_T, class CONFIG_T, unsigned OUT_DEPTH>
void ht_node_contract(const in_T in[CONFIG_T::u * CONFIG_T::v][CONFIG_T::a * CONFIG_T::p * CONFIG_T::q * CONFIG_T::b],
                      out_T out[CONFIG_T::out_view::banks][OUT_DEPTH],
                      const typename CONFIG_T::core_t core[CONFIG_T::u * CONFIG_T::v * CONFIG_T::t]) {
    typedef typename CONFIG_T::out_view out_view;
    const unsigned P = CONFIG_T::p, U = CONFIG_T::u, Q = CONFIG_T::q, V = CONFIG_T::v;
    const unsigned T = CONFIG_T::t, B = CONFIG_T::b;
Outputs:
    for (unsigned a = 0; a < CONFIG_T::a; a++) {
        for (unsigned p = 0; p < P; p++) {
            for (unsigned q = 0; q < Q; q++) {
                for (unsigned t = 0; t < T; t++) {
                    for (unsigned b = 0; b < B; b++) {
                        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
                        const unsigned offset = ((a * P + p) * Q + q) * B + b;
                        typename CONFIG_T::mac_t acc = 0;
                    Terms: // u * v reads, one per bank
                        for (unsigned u = 0; u < U; u++) {
                            for (unsigned v = 0; v < V; v++) {
                                acc += in[u * V + v][offset] * core[(u * V + v) * T + t];
                            }
                        }
                        const unsigned address = (((a * P + p) * Q + q) * T + t) * B + b;
                        out[out_view::bank(address)][out_view::offset(address)] = acc;
                    }
                }
            }
        }
    }
}

} // namespace nnet

#endif
