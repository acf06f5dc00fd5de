#ifndef NNET_RBS_LSTM_H_
#define NNET_RBS_LSTM_H_

// Row-balanced sparse LSTM maps (models/row_balanced.py): every output row o of W keeps nnz values
// and their column indices, y[o] = sum_j values[o][j] * x[indices[o][j]].
// Processing elements: PE p owns rows p, p + pes, p + 2 pes, ...; every row has nnz terms, so all
// PEs finish a row in the same nnz cycles and none waits for another. Each cycle every PE takes
// one term of its row: a value and an index from its own cyclic bank (values and indices stored as
// [row group][slot][pe], hls_project/rbs_lstm.py) and one input value from its copy of the input
// (one copy per two PEs: a block RAM has two ports). hls_project/rbs_lstm.py checks the ports of
// every cycle in Python.

#include "nnet_common.h"
#include "nnet_lstm_cell.h"

namespace nnet {

struct rbs_matvec_config {
    static const unsigned n_in = 1;   // columns (inputs)
    static const unsigned n_rows = 4; // outputs: 4 * n_state
    static const unsigned nnz = 1;    // terms per row
    static const unsigned pes = 1;    // processing elements (divides n_rows)
    static const unsigned copies = 1; // copies of the input: ceil(pes / 2)
    // typedef value_t; typedef index_t (ap_uint); typedef mac_t (exact sum of nnz products)
};

// out[o] = sum_j values[o][j] * x[indices[o][j]], exact; x: the input, copied `copies` times.
template <class CONFIG_T, class in_T, class out_T>
void rbs_products(const in_T x[CONFIG_T::copies][CONFIG_T::n_in], out_T out[CONFIG_T::n_rows],
                  const typename CONFIG_T::value_t values[CONFIG_T::n_rows * CONFIG_T::nnz],
                  const typename CONFIG_T::index_t indices[CONFIG_T::n_rows * CONFIG_T::nnz]) {
    const unsigned P = CONFIG_T::pes, nnz = CONFIG_T::nnz;
    #pragma HLS ARRAY_PARTITION variable=values cyclic factor=P
    #pragma HLS ARRAY_PARTITION variable=indices cyclic factor=P
    #pragma HLS ARRAY_PARTITION variable=out cyclic factor=P
    typename CONFIG_T::mac_t acc[P];
    #pragma HLS ARRAY_PARTITION variable=acc complete
    unsigned group = 0, slot = 0;
Terms:
    for (unsigned step = 0; step < CONFIG_T::n_rows / P * nnz; step++) {
        #pragma HLS PIPELINE II=1
        #pragma HLS ALLOCATION operation instances=mul limit=P
    PEs:
        for (unsigned p = 0; p < P; p++) {
            const unsigned address = step * P + p; // [group][slot][pe]
            const typename CONFIG_T::mac_t sum = (slot == 0) ? typename CONFIG_T::mac_t(0) : acc[p];
            acc[p] = sum + values[address] * x[p / 2][indices[address]];
            if (slot + 1 == nnz) {
                out[group * P + p] = acc[p];
            }
        }
        if (slot + 1 < nnz) {
            slot++;
        } else {
            slot = 0;
            group++;
        }
    }
}

// The input map: the frame stored as it streams in, a pack (data_T::size values) per cycle, each
// value into its own bank of every copy (x is cyclic in data_T::size banks per copy), then the
// products. The frame is held inside the layer: sparse rows read it out of order (each PE's read
// picks its bank at run time: it reads every bank of its copy, one port each).
template <class LSTM_T, class CONFIG_T, class data_T>
void rbs_input_map(hls::stream<data_T> &frame, const typename LSTM_T::state_t[LSTM_T::n_state],
                   typename LSTM_T::accum_t zx[4 * LSTM_T::n_state],
                   const typename CONFIG_T::value_t values[CONFIG_T::n_rows * CONFIG_T::nnz],
                   const typename CONFIG_T::index_t indices[CONFIG_T::n_rows * CONFIG_T::nnz]) {
    static_assert(CONFIG_T::n_in % data_T::size == 0, "a frame is whole packs");
    static typename LSTM_T::join_t x[CONFIG_T::copies][CONFIG_T::n_in]; // static: large for a C-sim stack
    #pragma HLS ARRAY_PARTITION variable=x complete dim=1
    #pragma HLS ARRAY_PARTITION variable=x cyclic factor=data_T::size dim=2
Store:
    for (unsigned p = 0; p < CONFIG_T::n_in / data_T::size; p++) {
        #pragma HLS PIPELINE II=1
        const data_T pack = frame.read();
        for (unsigned k = 0; k < data_T::size; k++) {
            const typename LSTM_T::join_t value = typename LSTM_T::input_t(pack[k]); // the input_quantizer
            for (unsigned c = 0; c < CONFIG_T::copies; c++) {
                x[c][p * data_T::size + k] = value;
            }
        }
    }
    rbs_products<CONFIG_T>(x, zx, values, indices);
}

// A map of an array (the recurrent map of h): copied `copies` times, then the products.
template <class CONFIG_T, class in_T, class out_T>
void rbs_array_map(const in_T in[CONFIG_T::n_in], out_T out[CONFIG_T::n_rows],
                   const typename CONFIG_T::value_t values[CONFIG_T::n_rows * CONFIG_T::nnz],
                   const typename CONFIG_T::index_t indices[CONFIG_T::n_rows * CONFIG_T::nnz]) {
    in_T x[CONFIG_T::copies][CONFIG_T::n_in];
    #pragma HLS ARRAY_PARTITION variable=x complete dim=1
Copy:
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        #pragma HLS PIPELINE II=1
        for (unsigned c = 0; c < CONFIG_T::copies; c++) {
            x[c][i] = in[i];
        }
    }
    rbs_products<CONFIG_T>(x, out, values, indices);
}

} // namespace nnet

#endif
