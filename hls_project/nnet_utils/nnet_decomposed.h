#ifndef NNET_DECOMPOSED_H_
#define NNET_DECOMPOSED_H_

// Pieces shared by the decomposed input maps (TT, HT, FDHT):
// - banked buffers: a buffer between two steps is stored as [banks][depth], the banks chosen for
//   the step that reads it (bank_view), and its writer walks its addresses in that layout
//   (bank_cursor), so a step's parallel reads hit different banks in the same cycle;
// - frame_mode_contract: the first step, one mode of the frame contracted as the frame streams
//   in, so no family holds a frame.
// hls_project/decomposed.py generates the configs and checks the layouts.

#include "nnet_common.h"
#include "nnet_lstm_cell.h"

namespace nnet {

// The banked layout of a buffer read as (a, p, u, q, v, b): bank = u * V + v,
// offset = ((a * P + p) * Q + q) * B + b. bank_view<1, 1, 1, 1, 1> is a plain array.
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

struct frame_mode_config {
    // the frame read as (a, u, b): mode u is contracted, a and b are the modes before and after it
    static const unsigned a = 1, u = 1, t = 1, b = 1;
    static const unsigned reuse_factor = 1;
    static const unsigned multiplier_limit = 1; // ceil(t / reuse_factor)
    // typedef core_t (core[u][t]); typedef mac_t (exact sum of u products);
    // typedef bank_view<...> out_view (the next step's layout of this step's output)
};

// out[a, t, b] = sum_u x[a, u, b] * core[u, t] on the frame as it arrives in address order
// (a, u, b) from READER_T::next(frame, h). Each a's t * b exact sums live in acc (mac_t, t banks:
// one cycle adds one frame value times t coefficients), then are rounded once into out, banked
// for the next step. Buffers: acc t * b words; the frame itself is never stored.
template <class LSTM_T, class CONFIG_T, class data_T, class out_T, unsigned OUT_DEPTH>
void frame_mode_contract(hls::stream<data_T> &frame, const typename LSTM_T::state_t h[LSTM_T::n_state],
                         out_T out[CONFIG_T::out_view::banks][OUT_DEPTH],
                         const typename CONFIG_T::core_t core[CONFIG_T::u * CONFIG_T::t]) {
    const unsigned U = CONFIG_T::u, T = CONFIG_T::t, B = CONFIG_T::b;
    #pragma HLS ARRAY_PARTITION variable=core cyclic factor=T
    static typename CONFIG_T::mac_t acc[T][B]; // static: large for a C-sim stack
    #pragma HLS ARRAY_PARTITION variable=acc complete dim=1
    join_reader<data_T, LSTM_T> reader;
    bank_cursor<typename CONFIG_T::out_view> cursor;
Rows:
    for (unsigned a = 0; a < CONFIG_T::a; a++) {
    Accumulate:
        for (unsigned u = 0; u < U; u++) {
            for (unsigned b = 0; b < B; b++) {
                #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
                #pragma HLS ALLOCATION operation instances=mul limit=CONFIG_T::multiplier_limit
                const typename LSTM_T::join_t x = reader.next(frame, h);
                for (unsigned t = 0; t < T; t++) {
                    const typename CONFIG_T::mac_t sum = (u == 0) ? typename CONFIG_T::mac_t(0) : acc[t][b];
                    acc[t][b] = sum + x * core[u * T + t];
                }
            }
        }
    Round: // outputs in address order (a, t, b)
        for (unsigned t = 0; t < T; t++) {
            for (unsigned b = 0; b < B; b++) {
                #pragma HLS PIPELINE
                out[cursor.bank()][cursor.offset()] = acc[t][b];
                cursor.next();
            }
        }
    }
}

} // namespace nnet

#endif
