#ifndef NNET_BC_LSTM_H_
#define NNET_BC_LSTM_H_

// Block-circulant LSTM maps (models/circulant.py): y = x W with W cut into k x k circulant blocks,
// block (g, i) stored as its defining vector c[g][i][0..k), never as a matrix:
//     y[g * k + r] += c[g][i][(r - s) mod k] * x[i * k + s]
// Chessboard schedule (Wang et al., TVLSI 2017): the input arrives one block of k values at a time
// (the frame as it streams in, or h); while block i is held, every output block takes its products
// with it, `lanes` output blocks side by side and `terms` consecutive diagonals d per cycle, so
// each vector value read is used by one product per cycle and each input value by `lanes`
// products. With terms dividing k, the `terms` diagonals of one cycle fall in different cyclic
// banks of the vectors, and the lanes in different banks too (hls_project/bc_lstm.py stores the
// vectors as [i][group][d][lane]), each bank a constant of the unrolled loops; the inputs
// x[(r - d) mod k] come from a rotating window of registers. hls_project/bc_lstm.py checks the bank
// arithmetic in Python.

#include "nnet_common.h"
#include "nnet_lstm_cell.h"

namespace nnet {

struct bc_matvec_config {
    static const unsigned n_in = 1;             // real inputs; p * k - n_in zeros pad the last block
    static const unsigned n_state = 1;          // real outputs per gate; q * k - n_state padded outputs are dropped
    static const unsigned k = 1;                // block size
    static const unsigned p = 1;                // input blocks
    static const unsigned q = 1;                // output blocks per gate
    static const unsigned lanes = 1;            // output blocks per cycle (divides 4 * q)
    static const unsigned terms = 1;            // products per output and cycle (divides k)
    static const unsigned multiplier_limit = 1; // lanes * terms
    // typedef vector_t (the stored vectors); typedef mac_t (exact sum of p * k products)
};

// The products of input block i (x: its k values) with every output block, added to acc
// ([(group * k + r) * lanes + lane], exact); block 0 starts the sums. Output row r takes its k
// terms over `rounds` cycles, `terms` diagonals d = round * terms + u per cycle: the vector values
// c[d] (bank u * lanes + lane of the cyclic banks: a constant of the unrolled loops) times
// x[(r - d) mod k], which a window of registers holds at its positions u (window[j] = x[(r - round
// * terms - j) mod k]: rotated by `terms` each round, by terms - 1 to the next row), so no read
// chooses its bank at run time.
template <class CONFIG_T, class in_T>
void bc_block_products(unsigned i, const in_T x[CONFIG_T::k], typename CONFIG_T::mac_t acc[4 * CONFIG_T::q * CONFIG_T::k],
                       const typename CONFIG_T::vector_t vectors[4 * CONFIG_T::q * CONFIG_T::p * CONFIG_T::k]) {
    const unsigned K = CONFIG_T::k, L = CONFIG_T::lanes, S = CONFIG_T::terms;
    const unsigned groups = 4 * CONFIG_T::q / L, rounds = K / S;
    typename CONFIG_T::mac_t partial[L];
    #pragma HLS ARRAY_PARTITION variable=partial complete
    in_T window[K]; // row 0, round 0: window[j] = x[(-j) mod k]
    #pragma HLS ARRAY_PARTITION variable=window complete
Load:
    for (unsigned j = 0; j < K; j++) {
        #pragma HLS UNROLL
        window[j] = x[j == 0 ? 0 : K - j];
    }
    unsigned g = 0, r = 0, round = 0;
    const unsigned base = i * groups; // vectors of block i: [i][group][d][lane]
Products:
    for (unsigned step = 0; step < groups * K * rounds; step++) {
        #pragma HLS PIPELINE II=1
        #pragma HLS ALLOCATION operation instances=mul limit=CONFIG_T::multiplier_limit
        const unsigned first = round * S; // d = first + u
    Lanes:
        for (unsigned lane = 0; lane < L; lane++) {
            const unsigned address = (g * K + r) * L + lane;
            typename CONFIG_T::mac_t sum =
                (round > 0) ? partial[lane] : ((i > 0) ? acc[address] : typename CONFIG_T::mac_t(0));
        Terms:
            for (unsigned u = 0; u < S; u++) {
                sum += vectors[((base + g) * K + first + u) * L + lane] * window[u];
            }
            partial[lane] = sum;
            if (round + 1 == rounds) {
                acc[address] = sum;
            }
        }
        const bool next_row = round + 1 == rounds;
        in_T rotated[K]; // the next cycle's window
        #pragma HLS ARRAY_PARTITION variable=rotated complete
    Rotate:
        for (unsigned j = 0; j < K; j++) {
            rotated[j] = next_row ? window[(j + S - 1) % K] : window[(j + S) % K];
        }
    Shift:
        for (unsigned j = 0; j < K; j++) {
            window[j] = rotated[j];
        }
        if (!next_row) {
            round++;
        } else {
            round = 0;
            if (++r == K) { // the next group
                r = 0;
                g++;
            }
        }
    }
}

// The real outputs of acc, gate by gate: out[gate * n_state + j * k + r] (j * k + r < n_state).
template <class CONFIG_T, class out_T>
void bc_write_outputs(const typename CONFIG_T::mac_t acc[4 * CONFIG_T::q * CONFIG_T::k], out_T out[4 * CONFIG_T::n_state]) {
    const unsigned K = CONFIG_T::k, L = CONFIG_T::lanes;
    unsigned group = 0, lane = 0, o = 0;
Gates:
    for (unsigned gate = 0; gate < 4; gate++) {
    Blocks:
        for (unsigned j = 0; j < CONFIG_T::q; j++) {
        Rows:
            for (unsigned r = 0; r < K; r++) {
                #pragma HLS PIPELINE
                if (j * K + r < CONFIG_T::n_state) {
                    out[o] = acc[(group * K + r) * L + lane];
                    o++;
                }
            }
            if (++lane == L) { // the next group of lanes
                lane = 0;
                group++;
            }
        }
    }
}

// A map: in (n_in values, a value per read of reader_T: the input map's frame or [x; h] from the
// stream, join_reader; the recurrent map's h, array_reader) -> out[4 * n_state], exact, read block
// by block as it arrives (zeros past n_in).
template <class CONFIG_T, class reader_T, class source_T, class state_T, class out_T>
void bc_map(source_T &in, const state_T *h, out_T out[4 * CONFIG_T::n_state],
            const typename CONFIG_T::vector_t vectors[4 * CONFIG_T::q * CONFIG_T::p * CONFIG_T::k]) {
    static_assert(reader_T::pack == 1, "a value per read");
    #pragma HLS ARRAY_PARTITION variable=vectors cyclic factor=CONFIG_T::lanes * CONFIG_T::terms
    static typename CONFIG_T::mac_t acc[4 * CONFIG_T::q * CONFIG_T::k]; // static: large for a C-sim stack
    #pragma HLS ARRAY_PARTITION variable=acc cyclic factor=CONFIG_T::lanes
    reader_T reader;
    unsigned index = 0;
Blocks:
    for (unsigned i = 0; i < CONFIG_T::p; i++) {
        typename reader_T::value_t x[CONFIG_T::k];
        #pragma HLS ARRAY_PARTITION variable=x complete // the window loads it at once
    Read:
        for (unsigned s = 0; s < CONFIG_T::k; s++) {
            #pragma HLS PIPELINE II=1
            typename reader_T::value_t v[1] = {0};
            if (index < CONFIG_T::n_in) {
                reader.read(in, h, v);
            }
            x[s] = v[0];
            index++;
        }
        bc_block_products<CONFIG_T>(i, x, acc, vectors);
    }
    bc_write_outputs<CONFIG_T>(acc, out);
}

} // namespace nnet

#endif
