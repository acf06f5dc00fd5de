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
    // frame values per iteration: the input stream's pack (data_T::size) when it lies inside one
    // (a, u) (b a multiple of it: it walks b) or one a (b = 1, u a multiple of it: it walks u);
    // else 1, value by value through a join_reader
    static const unsigned pack = 1;
    static const unsigned reuse_factor = 1;
    static const unsigned multiplier_limit = 1; // ceil(t * pack / reuse_factor)
    // typedef core_t (core[u][t]); typedef mac_t (exact sum of u products);
    // typedef bank_view<...> out_view (the next step's layout of this step's output)
};

// The frame values of one Accumulate iteration into x: a whole pack of the stream, or one value of
// the join (the frame, then h for fused families) through `reader`.
template <class LSTM_T, class CONFIG_T, class data_T>
void read_frame_values(hls::stream<data_T> &frame, join_reader<data_T, LSTM_T> &reader,
                       const typename LSTM_T::state_t h[LSTM_T::n_state], typename LSTM_T::join_t x[CONFIG_T::pack]) {
    #pragma HLS INLINE
    if (CONFIG_T::pack == 1) {
        x[0] = reader.next(frame, h);
    } else {
        const data_T values = frame.read();
        for (unsigned j = 0; j < CONFIG_T::pack; j++) {
            x[j] = typename LSTM_T::input_t(values[j]); // the layer's input_quantizer
        }
    }
}

// out[a, t, b] = sum_u x[a, u, b] * core[u, t] on the frame as it arrives in address order
// (a, u, b), `pack` values per iteration. Each a's t * b exact sums live in acc (mac_t, t banks,
// and `pack` banks along b when the pack walks b: one iteration adds t * pack products, into t
// sums when the pack walks u), then are rounded once into out, banked for the next step. One
// pipelined loop of a + 1 passes: pass a accumulates row a into one half of acc while it rounds
// row a - 1 out of the other half, an output per iteration, so no row refills the pipeline.
// Buffers: acc 2 * t * b words; the frame itself is never stored.
template <class LSTM_T, class CONFIG_T, class data_T, class out_T, unsigned OUT_DEPTH>
void frame_mode_contract(hls::stream<data_T> &frame, const typename LSTM_T::state_t h[LSTM_T::n_state],
                         out_T out[CONFIG_T::out_view::banks][OUT_DEPTH],
                         const typename CONFIG_T::core_t core[CONFIG_T::u * CONFIG_T::t]) {
    const unsigned U = CONFIG_T::u, T = CONFIG_T::t, B = CONFIG_T::b, P = CONFIG_T::pack;
    const unsigned PU = (B == 1) ? P : 1, PB = (B == 1) ? 1 : P; // the pack along u, along b
    const unsigned STEPS = U / PU * (B / PB);                    // accumulate iterations of a row
    const unsigned OUTPUTS = T * B;                              // rounded outputs of a row
    const unsigned PASS = STEPS > OUTPUTS ? STEPS : OUTPUTS;     // iterations of a pass
    static_assert(P == 1 || data_T::size == P, "a pack per iteration is the stream's element");
    static_assert(U % PU == 0 && B % PB == 0, "a pack lies inside one row");
    #pragma HLS ARRAY_PARTITION variable=core cyclic factor=T * PU
    static typename CONFIG_T::mac_t acc[2][T][B]; // static: large for a C-sim stack
    #pragma HLS ARRAY_PARTITION variable=acc complete dim=1
    #pragma HLS ARRAY_PARTITION variable=acc complete dim=2
    #pragma HLS ARRAY_PARTITION variable=acc cyclic factor=PB dim=3
    join_reader<data_T, LSTM_T> reader;
    bank_cursor<typename CONFIG_T::out_view> cursor;
    unsigned a = 0, i = 0;         // the pass and its iteration
    unsigned uu = 0, bb = 0;       // the accumulated row's next pack
    unsigned t_out = 0, b_out = 0; // the rounded row's next output
Passes:
    for (unsigned n = 0; n < (CONFIG_T::a + 1) * PASS; n++) {
        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
        #pragma HLS ALLOCATION operation instances=mul limit=CONFIG_T::multiplier_limit
        const unsigned fill = a & 1;
        if (a < CONFIG_T::a && i < STEPS) {
            typename LSTM_T::join_t x[P];
            #pragma HLS ARRAY_PARTITION variable=x complete
            read_frame_values<LSTM_T, CONFIG_T, data_T>(frame, reader, h, x);
            for (unsigned t = 0; t < T; t++) {
                if (PU > 1) { // one sum of P products: x[a, uu * P + j, 0] * core[uu * P + j, t]
                    typename CONFIG_T::mac_t sum = (uu == 0) ? typename CONFIG_T::mac_t(0) : acc[fill][t][0];
                    for (unsigned j = 0; j < P; j++) {
                        sum += x[j] * core[(uu * P + j) * T + t];
                    }
                    acc[fill][t][0] = sum;
                } else { // P sums of one product: x[a, uu, bb * P + j] * core[uu, t]
                    for (unsigned j = 0; j < PB; j++) {
                        const unsigned b = bb * PB + j;
                        const typename CONFIG_T::mac_t sum = (uu == 0) ? typename CONFIG_T::mac_t(0) : acc[fill][t][b];
                        acc[fill][t][b] = sum + x[j] * core[uu * T + t];
                    }
                }
            }
            if (++bb == B / PB) {
                bb = 0;
                uu = (uu + 1 == U / PU) ? 0 : uu + 1;
            }
        }
        if (a > 0 && i < OUTPUTS) { // outputs in address order (a - 1, t, b)
            out[cursor.bank()][cursor.offset()] = acc[fill ^ 1][t_out][b_out];
            cursor.next();
            if (++b_out == B) {
                b_out = 0;
                t_out = (t_out + 1 == T) ? 0 : t_out + 1;
            }
        }
        if (++i == PASS) {
            i = 0;
            a++;
        }
    }
}

} // namespace nnet

#endif
