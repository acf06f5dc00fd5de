#ifndef NNET_DECOMPOSED_H_
#define NNET_DECOMPOSED_H_

// Pieces shared by the decomposed input maps (TT, HT, FDHT):
// - mode_contract: one contraction step, input-stationary: its input (the frame as it streams in,
//   so no family holds a frame, or the previous step's stream) is consumed as it arrives, its
//   output leaves through a writer (a stream for the next step, or the layer's zx);
// - the writers a step is built with (its readers are every map's: nnet_lstm_cell.h).
// hls_project/decomposed.py generates the configs and chains the steps.

#include "nnet_common.h"
#include "nnet_lstm_cell.h"

namespace nnet {

// The writers of a contraction's output, `pack` values per write(out, v):
// - pack_writer<array_T>: a stream whose element is a pack of array_T::size values (the next
//   step's input);
// - value_writer<value_T>: a stream of single values (the zx FIFO);
// - array_writer<value_T>: an array, one value per write in address order (a fused family's zx).
template <class array_T> struct pack_writer {
    typedef typename array_T::value_type value_t;
    static const unsigned pack = array_T::size;
    void write(hls::stream<array_T> &out, const value_t v[pack]) {
        #pragma HLS INLINE
        array_T values;
        for (unsigned k = 0; k < pack; k++) {
            values[k] = v[k];
        }
        out.write(values);
    }
};

template <class value_T> struct value_writer {
    typedef value_T value_t;
    static const unsigned pack = 1;
    void write(hls::stream<value_T> &out, const value_T v[1]) {
        #pragma HLS INLINE
        out.write(v[0]);
    }
};

template <class value_T> struct array_writer {
    typedef value_T value_t;
    static const unsigned pack = 1;
    unsigned index;
    array_writer() : index(0) {}
    void write(value_T *out, const value_T v[1]) {
        #pragma HLS INLINE
        out[index++] = v[0];
    }
};

// A product a * b in out_T (exact), built from LUTs (the fabric) when FABRIC, else as the tool
// chooses (a DSP slice for wide operands): mode_contract binds the products of narrow operands to
// the fabric, where a DSP would be wasted on them (hls_project.cost.FABRIC_PRODUCT_BITS).
template <bool FABRIC> struct multiplier {
    template <class out_T, class a_T, class b_T> static out_T product(a_T a, b_T b) {
        #pragma HLS INLINE
        return a * b;
    }
};
template <> struct multiplier<true> {
    template <class out_T, class a_T, class b_T> static out_T product(a_T a, b_T b) {
        #pragma HLS INLINE
        const out_T p = a * b;
#ifdef __VITIS_HLS__
        #pragma HLS BIND_OP variable=p op=mul impl=fabric
#else
        #pragma HLS RESOURCE variable=p core=Mul_LUT
#endif
        return p;
    }
};

struct mode_contract_config {
    // in (rows, n_in, n_right, rank_in, trail) -> out (rows, n_out, n_right, rank_out, trail), both
    // in address order: out[l, j, p, a, e] = sum_{i, b} in[l, i, p, b, e] * core[i, b, a, j]. A TT
    // core is one such step (trail = 1), an HT node too (n_out = 1); a frame step (a mode of the
    // frame contracted) has rank_in = 1. rows: of one frame, or of a whole call's frames
    static const unsigned rows = 1, n_in = 1, n_right = 1, rank_in = 1, n_out = 1, rank_out = 1, trail = 1;
    // input values per iteration (the reader's pack) walk e, then b, p, i; outputs per iteration
    // (the writer's pack) walk e, then a, p, j; acc_banks, trail_banks, j_banks, a_banks: banks of
    // acc along p, e, j and a (an iteration adds (n_out / j_banks) * (rank_out / a_banks) of its
    // sums into each bank, at most reuse_factor: hls_project.decomposed.ModeStep.sum_banks)
    static const unsigned pack_in = 1, pack_out = 1, acc_banks = 1, trail_banks = 1, j_banks = 1, a_banks = 1;
    static const unsigned reuse_factor = 1;
    static const unsigned multiplier_limit = 1; // ceil(pack_in * n_out * rank_out / reuse_factor)
    static const bool fabric_products = false;  // the products built from LUTs (multiplier<true>)
    // typedef core_t (core[n_in][rank_in][rank_out][n_out]); typedef mac_t (exact sum of
    // n_in * rank_in products)
};

// A pack of N consecutive addresses of a row (outer, middle, inner, trail) as counts along each:
// the trail first, then inner, middle, outer (every count but the outermost one > 1 only when
// the ones inside it are whole).
template <unsigned N, unsigned OUTER, unsigned MIDDLE, unsigned INNER, unsigned TRAIL> struct pack_counts {
    static const unsigned outer_size = OUTER, middle_size = MIDDLE, inner_size = INNER, trail_size = TRAIL;
    static const unsigned trail = N < TRAIL ? N : TRAIL;
    static const unsigned inner = N / trail < INNER ? N / trail : INNER;
    static const unsigned middle = N / trail / inner < MIDDLE ? N / trail / inner : MIDDLE;
    static const unsigned outer = N / trail / inner / middle;
    static const bool tiles = outer * middle * inner * trail == N && TRAIL % trail == 0 && INNER % inner == 0 &&
                              MIDDLE % middle == 0 && OUTER % outer == 0;
};

// The first address of a row's next pack (PACK: pack_counts) as its digits (outer, middle, inner,
// trail), advanced a pack at a time with carries, back to 0 after the row's last pack.
template <class PACK> struct pack_cursor {
    unsigned outer, middle, inner, trail;
    pack_cursor() : outer(0), middle(0), inner(0), trail(0) {}
    void next() {
        if ((trail += PACK::trail) < PACK::trail_size) {
            return;
        }
        trail = 0;
        if ((inner += PACK::inner) < PACK::inner_size) {
            return;
        }
        inner = 0;
        if ((middle += PACK::middle) < PACK::middle_size) {
            return;
        }
        middle = 0;
        outer = (outer + PACK::outer == PACK::outer_size) ? 0 : outer + PACK::outer;
    }
};

// The next pack of a row's sums (`round` at its first address), each rounded once to the writer's
// type, written to `out`.
template <class CONFIG_T, class out_pack, class writer_T, class sink_T>
void write_sums(const typename CONFIG_T::mac_t sums[CONFIG_T::n_out][CONFIG_T::n_right][CONFIG_T::rank_out][CONFIG_T::trail],
                pack_cursor<out_pack> &round, writer_T &writer, sink_T &out) {
    #pragma HLS INLINE
    const unsigned QP = out_pack::middle, QA = out_pack::inner, QT = out_pack::trail;
    typename writer_T::value_t v[writer_T::pack];
    #pragma HLS ARRAY_PARTITION variable=v complete
    for (unsigned qj = 0; qj < out_pack::outer; qj++) {
        for (unsigned qp = 0; qp < QP; qp++) {
            for (unsigned qa = 0; qa < QA; qa++) {
                for (unsigned qt = 0; qt < QT; qt++) {
                    v[((qj * QP + qp) * QA + qa) * QT + qt] =
                        sums[round.outer + qj][round.middle + qp][round.inner + qa][round.trail + qt];
                }
            }
        }
    }
    writer.write(out, v);
    round.next();
}

// out[l, j, p, a, e] = sum_{i, b} in[l, i, p, b, e] * core[i, b, a, j], input-stationary: the
// values of row l arrive in address order (i, p, b, e), `reader_T::pack` per iteration, each added
// times its n_out * rank_out coefficients into the row's exact sums acc[j][p][a][e] (mac_t) as it
// comes; the row's sums are rounded once, `writer_T::pack` per iteration in address order
// (j, p, a, e). One pipelined loop of rows passes: pass l accumulates row l into one half of acc
// while it rounds row l - 1 out of the other half, so the rounding overlaps the next row and no
// row refills the pipeline; then the last row's rounding, which has no products, at II 1.
// Buffers: acc 2 * n_out * n_right * rank_out * trail words, banked so that a bank takes at most
// reuse_factor of an iteration's sums (a read and a write per cycle of the II); the input is never
// stored.
template <class CONFIG_T, class LSTM_T, class reader_T, class writer_T, class source_T, class sink_T>
void mode_contract(
    source_T &in, const typename LSTM_T::state_t h[LSTM_T::n_state], sink_T &out,
    const typename CONFIG_T::core_t core[CONFIG_T::n_in * CONFIG_T::rank_in * CONFIG_T::rank_out * CONFIG_T::n_out]) {
    const unsigned I = CONFIG_T::n_in, R = CONFIG_T::n_right, B = CONFIG_T::rank_in, E = CONFIG_T::trail;
    const unsigned J = CONFIG_T::n_out, A = CONFIG_T::rank_out, AJ = A * J;
    const unsigned P = reader_T::pack, Q = writer_T::pack;
    typedef pack_counts<P, I, R, B, E> in_pack;  // PI values of i, PP of p, PK of b, PT of e
    typedef pack_counts<Q, J, R, A, E> out_pack; // QJ of j, QP of p, QA of a, QT of e
    const unsigned PI = in_pack::outer, PP = in_pack::middle, PK = in_pack::inner, PT = in_pack::trail;
    static_assert(P == CONFIG_T::pack_in && Q == CONFIG_T::pack_out, "the config's packs");
    static_assert(in_pack::tiles && out_pack::tiles, "a pack lies in a row");
    const unsigned STEPS = I * R * B * E / P;                // accumulate iterations of a row
    const unsigned OUTPUTS = J * R * A * E / Q;              // rounding iterations of a row
    const unsigned PASS = STEPS > OUTPUTS ? STEPS : OUTPUTS; // iterations of a pass
    // one iteration reads the coefficients of PI * PK (i, b) terms: one bank each
    #pragma HLS ARRAY_PARTITION variable=core cyclic factor=PI * PK * AJ
    static typename CONFIG_T::mac_t acc[2][J][R][A][E]; // static: large for a C-sim stack
    #pragma HLS ARRAY_PARTITION variable=acc complete dim=1
    #pragma HLS ARRAY_PARTITION variable=acc cyclic factor=CONFIG_T::j_banks dim=2
    #pragma HLS ARRAY_PARTITION variable=acc cyclic factor=CONFIG_T::acc_banks dim=3
    #pragma HLS ARRAY_PARTITION variable=acc cyclic factor=CONFIG_T::a_banks dim=4
    #pragma HLS ARRAY_PARTITION variable=acc cyclic factor=CONFIG_T::trail_banks dim=5
    reader_T reader;
    writer_T writer;
    unsigned l = 0, n = 0;       // the pass (its accumulated row) and its iteration
    pack_cursor<in_pack> at;     // the accumulated row's next input pack: (i, p, b, e)
    pack_cursor<out_pack> round; // the rounded row's next output pack: (j, p, a, e)
Passes:
    for (unsigned it = 0; it < CONFIG_T::rows * PASS; it++) {
        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
        #pragma HLS ALLOCATION operation instances=mul limit=CONFIG_T::multiplier_limit
        const unsigned fill = l & 1;
        if (n < STEPS) {
            typename reader_T::value_t x[P];
            #pragma HLS ARRAY_PARTITION variable=x complete
            reader.read(in, h, x);
            for (unsigned pp = 0; pp < PP; pp++) {
                for (unsigned tt = 0; tt < PT; tt++) {
                    for (unsigned j = 0; j < J; j++) {
                        for (unsigned a = 0; a < A; a++) {
                            typename CONFIG_T::mac_t sum = (at.outer == 0 && at.inner == 0)
                                                               ? typename CONFIG_T::mac_t(0)
                                                               : acc[fill][j][at.middle + pp][a][at.trail + tt];
                            for (unsigned ii = 0; ii < PI; ii++) {
                                for (unsigned kk = 0; kk < PK; kk++) {
                                    sum += multiplier<CONFIG_T::fabric_products>::template product<typename CONFIG_T::mac_t>(
                                        x[((ii * PP + pp) * PK + kk) * PT + tt],
                                        core[((at.outer + ii) * B + at.inner + kk) * AJ + a * J + j]);
                                }
                            }
                            acc[fill][j][at.middle + pp][a][at.trail + tt] = sum;
                        }
                    }
                }
            }
            at.next();
        }
        if (l > 0 && n < OUTPUTS) { // row l - 1, rounded once per output
            write_sums<CONFIG_T, out_pack>(acc[fill ^ 1], round, writer, out);
        }
        if (++n == PASS) {
            n = 0;
            l++;
        }
    }
Last: // the last row's rounding
    for (unsigned k = 0; k < OUTPUTS; k++) {
        #pragma HLS PIPELINE II=1
        write_sums<CONFIG_T, out_pack>(acc[(CONFIG_T::rows - 1) & 1], round, writer, out);
    }
}

} // namespace nnet

#endif
