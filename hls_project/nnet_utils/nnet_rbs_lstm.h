#ifndef NNET_RBS_LSTM_H_
#define NNET_RBS_LSTM_H_

// Row-balanced sparse LSTM maps (models/row_balanced.py): every output row o of W keeps nnz values
// and their column indices, y[o] = sum_j values[o][j] * x[indices[o][j]].
// Processing elements: PE p owns rows p, p + pes, p + 2 pes, ... (row group g: rows g * pes + p;
// the last group's missing rows, when pes does not divide n_rows, hold zero terms); every row has
// nnz terms, so all PEs finish a row in the same nnz cycles and none waits for another. Each cycle
// every PE takes one term of its row: a value and an index from its own cyclic bank (values and
// indices stored as [row group][slot][pe], hls_project/rbs_lstm.py) and one input value from its
// copy of the input (one copy per two PEs: a block RAM has two ports). hls_project/rbs_lstm.py
// checks the ports of every cycle in Python.

#include "nnet_common.h"
#include "nnet_lstm_cell.h"

namespace nnet {

struct rbs_matvec_config {
    static const unsigned n_in = 1;   // columns (inputs)
    static const unsigned n_rows = 4; // outputs: 4 * n_state
    static const unsigned nnz = 1;    // terms per row
    static const unsigned pes = 1;    // processing elements
    static const unsigned groups = 4; // row groups: ceil(n_rows / pes)
    static const unsigned copies = 1; // copies of the input: ceil(pes / 2)
    // typedef value_t; typedef index_t (ap_uint); typedef mac_t (exact sum of nnz products)
};

// One cycle of the PEs: each adds term `slot` of its row in row group `group` into acc (exact).
template <class CONFIG_T, class in_T>
void rbs_terms(const in_T x[CONFIG_T::copies][CONFIG_T::n_in],
               const typename CONFIG_T::value_t values[CONFIG_T::groups * CONFIG_T::nnz * CONFIG_T::pes],
               const typename CONFIG_T::index_t indices[CONFIG_T::groups * CONFIG_T::nnz * CONFIG_T::pes],
               typename CONFIG_T::mac_t acc[CONFIG_T::pes], unsigned group, unsigned slot) {
    #pragma HLS INLINE
PEs:
    for (unsigned p = 0; p < CONFIG_T::pes; p++) {
        const unsigned address = (group * CONFIG_T::nnz + slot) * CONFIG_T::pes + p; // [group][slot][pe]
        const typename CONFIG_T::mac_t sum = (slot == 0) ? typename CONFIG_T::mac_t(0) : acc[p];
        acc[p] = sum + values[address] * x[p / 2][indices[address]];
    }
}

// Where a row group's sums go (rounded once to the sink's type): into an array (the recurrent
// map's zh), all at once when the group's last term is in; or into a FIFO in row order (the input
// map's zx, which the recurrent half reads in order), one per cycle during the next group's cycles
// (from `done`), then the last group's.
template <class out_T> struct rbs_sink {
    static const bool fifo = false;
    template <class CONFIG_T, class mac_T> static void leave(out_T, const mac_T[], unsigned, unsigned) {}
    template <class CONFIG_T, class mac_T> static void group_done(out_T out, const mac_T acc[], mac_T[], unsigned group) {
        #pragma HLS INLINE
        #pragma HLS ARRAY_PARTITION variable=out cyclic factor=CONFIG_T::pes
        for (unsigned p = 0; p < CONFIG_T::pes; p++) {
            if (group * CONFIG_T::pes + p < CONFIG_T::n_rows) {
                out[group * CONFIG_T::pes + p] = acc[p];
            }
        }
    }
    template <class CONFIG_T, class mac_T> static void last(out_T, const mac_T[]) {}
};
template <class value_T> struct rbs_sink<hls::stream<value_T>> {
    static const bool fifo = true;
    template <class CONFIG_T, class mac_T>
    static void leave(hls::stream<value_T> &out, const mac_T done[], unsigned group, unsigned slot) {
        #pragma HLS INLINE
        if (group > 0 && slot < CONFIG_T::pes && (group - 1) * CONFIG_T::pes + slot < CONFIG_T::n_rows) {
            out.write(done[slot]);
        }
    }
    template <class CONFIG_T, class mac_T>
    static void group_done(hls::stream<value_T> &, const mac_T acc[], mac_T done[], unsigned) {
        #pragma HLS INLINE
        for (unsigned p = 0; p < CONFIG_T::pes; p++) {
            done[p] = acc[p];
        }
    }
    template <class CONFIG_T, class mac_T> static void last(hls::stream<value_T> &out, const mac_T done[]) {
    Last:
        for (unsigned p = 0; p < CONFIG_T::pes; p++) {
            #pragma HLS PIPELINE II=1
            if ((CONFIG_T::groups - 1) * CONFIG_T::pes + p < CONFIG_T::n_rows) {
                out.write(done[p]);
            }
        }
    }
};

// out[o] = sum_j values[o][j] * x[indices[o][j]], exact, rounded once to the sink's type (an
// array, or a FIFO: rbs_sink); x: the input, copied `copies` times. A row group every G cycles:
// nnz into an array; max(nnz, pes) into a FIFO (its sums leave one per cycle while the next group
// accumulates: the PEs wait when nnz < pes).
template <class CONFIG_T, class in_T, class out_T>
void rbs_products(const in_T x[CONFIG_T::copies][CONFIG_T::n_in], out_T &out,
                  const typename CONFIG_T::value_t values[CONFIG_T::groups * CONFIG_T::nnz * CONFIG_T::pes],
                  const typename CONFIG_T::index_t indices[CONFIG_T::groups * CONFIG_T::nnz * CONFIG_T::pes]) {
    typedef rbs_sink<out_T> sink;
    const unsigned P = CONFIG_T::pes, nnz = CONFIG_T::nnz, G = sink::fifo && P > nnz ? P : nnz;
    #pragma HLS ARRAY_PARTITION variable=values cyclic factor=P
    #pragma HLS ARRAY_PARTITION variable=indices cyclic factor=P
    typename CONFIG_T::mac_t acc[P], done[P]; // done: a FIFO's previous group, leaving
    #pragma HLS ARRAY_PARTITION variable=acc complete
    #pragma HLS ARRAY_PARTITION variable=done complete
    unsigned group = 0, slot = 0;
Terms:
    for (unsigned step = 0; step < CONFIG_T::groups * G; step++) {
        #pragma HLS PIPELINE II=1
        #pragma HLS ALLOCATION operation instances=mul limit=P
        sink::template leave<CONFIG_T>(out, done, group, slot);
        if (slot < nnz) {
            rbs_terms<CONFIG_T>(x, values, indices, acc, group, slot);
        }
        if (slot + 1 == G) { // the group's sums are in (its last term was at slot nnz - 1)
            sink::template group_done<CONFIG_T>(out, acc, done, group);
            slot = 0;
            group++;
        } else {
            slot++;
        }
    }
    sink::template last<CONFIG_T>(out, done);
}

// A map: its input stored as it arrives, `reader_T::pack` values per cycle (the input map's
// frame, a pack of the layer's input stream: pack_reader; the recurrent map's h: array_reader),
// each value into its own bank of every copy (x is cyclic in that many banks per copy), then the
// products into `out` (an array, or a FIFO: rbs_products). The input is held inside the layer:
// sparse rows read it out of order (each PE's read picks its bank at run time: it reads every
// bank of its copy, one port each).
template <class CONFIG_T, class reader_T, class source_T, class state_T, class out_T>
void rbs_map(source_T &in, const state_T *h, out_T &out,
             const typename CONFIG_T::value_t values[CONFIG_T::groups * CONFIG_T::nnz * CONFIG_T::pes],
             const typename CONFIG_T::index_t indices[CONFIG_T::groups * CONFIG_T::nnz * CONFIG_T::pes]) {
    const unsigned P = reader_T::pack;
    static_assert(CONFIG_T::n_in % P == 0, "the input is whole packs");
    static typename reader_T::value_t x[CONFIG_T::copies][CONFIG_T::n_in]; // static: large for a C-sim stack
    #pragma HLS ARRAY_PARTITION variable=x complete dim=1
    #pragma HLS ARRAY_PARTITION variable=x cyclic factor=P dim=2
    reader_T reader;
Store:
    for (unsigned i = 0; i < CONFIG_T::n_in / P; i++) {
        #pragma HLS PIPELINE II=1
        typename reader_T::value_t v[P];
        #pragma HLS ARRAY_PARTITION variable=v complete
        reader.read(in, h, v);
        for (unsigned k = 0; k < P; k++) {
            for (unsigned c = 0; c < CONFIG_T::copies; c++) {
                x[c][i * P + k] = v[k];
            }
        }
    }
    rbs_products<CONFIG_T>(x, out, values, indices);
}

} // namespace nnet

#endif
