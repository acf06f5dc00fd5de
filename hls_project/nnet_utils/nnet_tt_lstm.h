#ifndef NNET_TT_LSTM_H_
#define NNET_TT_LSTM_H_

// TT-LSTM input map: the tensor-train mat-vec, one core per call, cores as separate arrays.
// The schedule (last core first), buffer sizes and exact MAC types are computed in Python
// (models/tt.py, hls_project/tt_lstm.py) and emitted as one tt_core_config per step.

#include "nnet_common.h"
#include "nnet_lstm_cell.h"

namespace nnet {

struct tt_core_config {
    // core shape (rank_out, n_in, n_out, rank_in); buffers:
    // in  (n_left * n_in, n_right, rank_in), out (n_left, n_out * n_right, rank_out)
    static const unsigned n_left = 1;
    static const unsigned n_in = 1;
    static const unsigned n_out = 1;
    static const unsigned n_right = 1;
    static const unsigned rank_in = 1;
    static const unsigned rank_out = 1;
    static const unsigned reuse_factor = 1;
    // typedef core_t; typedef mac_t (exact sum of n_in * rank_in products)
};

// out[l, j * n_right + p, a] = sum_{i, b} core[a, i, j, b] * in[l * n_in + i, p, b], rounded once.
template <class in_T, class out_T, class CONFIG_T>
void tt_core_contract(
    const in_T in[CONFIG_T::n_left * CONFIG_T::n_in * CONFIG_T::n_right * CONFIG_T::rank_in],
    out_T out[CONFIG_T::n_left * CONFIG_T::n_out * CONFIG_T::n_right * CONFIG_T::rank_out],
    const typename CONFIG_T::core_t core[CONFIG_T::rank_out * CONFIG_T::n_in * CONFIG_T::n_out * CONFIG_T::rank_in]) {
    const unsigned n_in = CONFIG_T::n_in, n_out = CONFIG_T::n_out, n_right = CONFIG_T::n_right;
    const unsigned rank_in = CONFIG_T::rank_in, rank_out = CONFIG_T::rank_out;
Left:
    for (unsigned l = 0; l < CONFIG_T::n_left; l++) {
    Out:
        for (unsigned j = 0; j < n_out; j++) {
        Right:
            for (unsigned p = 0; p < n_right; p++) {
            RankOut:
                for (unsigned a = 0; a < rank_out; a++) {
                    #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
                    typename CONFIG_T::mac_t acc = 0;
                Terms:
                    for (unsigned i = 0; i < n_in; i++) {
                        for (unsigned b = 0; b < rank_in; b++) {
                            acc += core[((a * n_in + i) * n_out + j) * rank_in + b] *
                                   in[((l * n_in + i) * n_right + p) * rank_in + b];
                        }
                    }
                    out[((l * n_out + j) * n_right + p) * rank_out + a] = acc;
                }
            }
        }
    }
}

} // namespace nnet

#endif
