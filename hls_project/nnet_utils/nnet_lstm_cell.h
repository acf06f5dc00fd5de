#ifndef NNET_LSTM_CELL_H_
#define NNET_LSTM_CELL_H_

// The gate and state block shared by every compressed LSTM family (TT, HT, ...).
// A family supplies CONFIG_T::input_map(x, zx): one frame (n_in values of CONFIG_T::input_t)
// to the gate pre-activations without the recurrent part (4 * n_state values of accum_t, gate
// order i, f, c, o). Everything else -- recurrent mat-vec, bias, lookup-table activations, state
// update, whole-clip and stateful streaming -- is here. hls_project/reference.py is the
// bit-accurate model of this file.

#include "ap_fixed.h"
#include "hls_stream.h"
#include "nnet_common.h"

namespace nnet {

struct lstm_cell_config {
    static const unsigned n_in = 1;        // features per frame
    static const unsigned n_state = 1;     // H
    static const unsigned n_timesteps = 1; // frames per call
    static const bool return_sequences = false;
    static const bool stateful = false; // keep (h, c) between calls until lstm_reset_all()
    static const unsigned reuse_factor = 1;
    // fused families (FDHT) take [x_t; h_t-1] (n_join values of join_t) and have no recurrent matrix
    static const bool fused_recurrent = false;
    static const unsigned n_join = 1;              // n_in, or n_in + n_state + padding when fused
    static const unsigned n_recurrent_state = 1;   // n_state, 0 when fused
    static const unsigned n_recurrent_weights = 1; // n_state * 4 * n_state, 1 (unused) when fused
    // typedef join_t; typedef input_t (input_quantizer), accum_t (accumulator_quantizer), state_t, act_t,
    // recurrent_weight_t, bias_t, preact_mac_t (exact zx + h U + b)
    // gate/candidate/state lookup tables: raw index of entry 0 and size
    static const int gate_lut_lo = 0;
    static const unsigned gate_lut_size = 1;
    static const int candidate_lut_lo = 0;
    static const unsigned candidate_lut_size = 1;
    static const int state_lut_lo = 0;
    static const unsigned state_lut_size = 1;
};

// The reset request of stateful layers: each stateful layer zeroes its state once after the
// epoch changes. The accelerator top calls lstm_reset_all() when the host asks for a reset.
inline unsigned &lstm_reset_epoch() {
    static unsigned epoch = 0;
    return epoch;
}

inline void lstm_reset_all() {
    lstm_reset_epoch()++;
}

// The raw integer behind a fixed-point value: two's complement for ap_fixed, plain for ap_ufixed.
template <class T> struct fixed_raw_int;
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N> struct fixed_raw_int<ap_fixed<W, I, Q, O, N>> {
    typedef ap_int<W> type;
};
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N> struct fixed_raw_int<ap_ufixed<W, I, Q, O, N>> {
    typedef ap_uint<W> type;
};

template <class T> long long fixed_raw(T x) {
    typename fixed_raw_int<T>::type raw;
    raw.range(T::width - 1, 0) = x.range(T::width - 1, 0);
    return raw.to_int64();
}

// f(x) from an exact table over x's grid, clamped outside [lo, lo + size).
template <class in_T, class out_T, int lo, unsigned size> out_T lut_lookup(in_T x, const out_T table[size]) {
    long long index = fixed_raw(x) - lo;
    if (index < 0) {
        index = 0;
    }
    if (index > (long long)size - 1) {
        index = size - 1;
    }
    return table[index];
}

// One step: (zx, h, c) -> (h, c). zx: 4 * n_state pre-activations from the input map.
template <class CONFIG_T>
void lstm_cell_step(const typename CONFIG_T::accum_t zx[4 * CONFIG_T::n_state],
                    typename CONFIG_T::state_t h[CONFIG_T::n_state], typename CONFIG_T::state_t c[CONFIG_T::n_state],
                    const typename CONFIG_T::recurrent_weight_t recurrent[CONFIG_T::n_recurrent_weights],
                    const typename CONFIG_T::bias_t bias[4 * CONFIG_T::n_state],
                    const typename CONFIG_T::act_t gate_lut[CONFIG_T::gate_lut_size],
                    const typename CONFIG_T::act_t candidate_lut[CONFIG_T::candidate_lut_size],
                    const typename CONFIG_T::act_t state_lut[CONFIG_T::state_lut_size]) {
    typedef typename CONFIG_T::accum_t accum_t;
    typedef typename CONFIG_T::act_t act_t;
    typedef typename CONFIG_T::state_t state_t;
    const unsigned n_gates = 4 * CONFIG_T::n_state;
    accum_t z[n_gates];

// z = zx + h U + b, exact in preact_mac_t, one rounding to accum_t
Preactivation:
    for (unsigned j = 0; j < n_gates; j++) {
#pragma HLS PIPELINE II = CONFIG_T::reuse_factor
        typename CONFIG_T::preact_mac_t acc = zx[j];
        acc += bias[j];
        for (unsigned i = 0; i < CONFIG_T::n_recurrent_state; i++) {
            acc += h[i] * recurrent[i * n_gates + j];
        }
        z[j] = acc;
    }

State:
    for (unsigned k = 0; k < CONFIG_T::n_state; k++) {
#pragma HLS PIPELINE II = CONFIG_T::reuse_factor
        const unsigned n = CONFIG_T::n_state;
        act_t gate_i = lut_lookup<accum_t, act_t, CONFIG_T::gate_lut_lo, CONFIG_T::gate_lut_size>(z[k], gate_lut);
        act_t gate_f = lut_lookup<accum_t, act_t, CONFIG_T::gate_lut_lo, CONFIG_T::gate_lut_size>(z[n + k], gate_lut);
        act_t cand = lut_lookup<accum_t, act_t, CONFIG_T::candidate_lut_lo, CONFIG_T::candidate_lut_size>(z[2 * n + k],
                                                                                                          candidate_lut);
        act_t gate_o = lut_lookup<accum_t, act_t, CONFIG_T::gate_lut_lo, CONFIG_T::gate_lut_size>(z[3 * n + k], gate_lut);
        state_t c_new = gate_f * c[k] + gate_i * cand; // exact products and sum, one rounding
        act_t c_act = lut_lookup<state_t, act_t, CONFIG_T::state_lut_lo, CONFIG_T::state_lut_size>(c_new, state_lut);
        c[k] = c_new;
        h[k] = gate_o * c_act;
    }
}

// The per-layer state: zero at start, kept between calls when CONFIG_T::stateful, zeroed again
// after lstm_reset_all(); zeroed on every call otherwise.
template <class CONFIG_T>
void lstm_load_state(typename CONFIG_T::state_t h[CONFIG_T::n_state], typename CONFIG_T::state_t c[CONFIG_T::n_state]) {
    static unsigned seen_epoch = 0;
    const bool reset = !CONFIG_T::stateful || seen_epoch != lstm_reset_epoch();
    seen_epoch = lstm_reset_epoch();
    if (reset) {
        for (unsigned k = 0; k < CONFIG_T::n_state; k++) {
#pragma HLS UNROLL
            h[k] = 0;
            c[k] = 0;
        }
    }
}

// The family's input map on x (or, fused, on [x; h; 0...] in join_t).
template <class CONFIG_T, bool fused> struct lstm_input_map {
    static void run(const typename CONFIG_T::input_t x[CONFIG_T::n_in], const typename CONFIG_T::state_t[],
                    typename CONFIG_T::accum_t zx[4 * CONFIG_T::n_state]) {
        CONFIG_T::input_map(x, zx);
    }
};

template <class CONFIG_T> struct lstm_input_map<CONFIG_T, true> {
    static void run(const typename CONFIG_T::input_t x[CONFIG_T::n_in],
                    const typename CONFIG_T::state_t h[CONFIG_T::n_state],
                    typename CONFIG_T::accum_t zx[4 * CONFIG_T::n_state]) {
        typename CONFIG_T::join_t joined[CONFIG_T::n_join];
        for (unsigned i = 0; i < CONFIG_T::n_join; i++) {
            if (i < CONFIG_T::n_in) {
                joined[i] = x[i];
            } else if (i < CONFIG_T::n_in + CONFIG_T::n_state) {
                joined[i] = h[i - CONFIG_T::n_in];
            } else {
                joined[i] = 0;
            }
        }
        CONFIG_T::input_map(joined, zx);
    }
};

// One frame through input map and cell; writes h into res at frame t when returning sequences.
template <class data_T, class CONFIG_T>
void lstm_frame(const data_T frame[CONFIG_T::n_in], typename CONFIG_T::state_t h[CONFIG_T::n_state],
                typename CONFIG_T::state_t c[CONFIG_T::n_state],
                const typename CONFIG_T::recurrent_weight_t recurrent[CONFIG_T::n_recurrent_weights],
                const typename CONFIG_T::bias_t bias[4 * CONFIG_T::n_state],
                const typename CONFIG_T::act_t gate_lut[CONFIG_T::gate_lut_size],
                const typename CONFIG_T::act_t candidate_lut[CONFIG_T::candidate_lut_size],
                const typename CONFIG_T::act_t state_lut[CONFIG_T::state_lut_size]) {
    typename CONFIG_T::input_t x[CONFIG_T::n_in];
    typename CONFIG_T::accum_t zx[4 * CONFIG_T::n_state];
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        x[i] = frame[i]; // round to the layer's input_quantizer type
    }
    lstm_input_map<CONFIG_T, CONFIG_T::fused_recurrent>::run(x, h, zx);
    lstm_cell_step<CONFIG_T>(zx, h, c, recurrent, bias, gate_lut, candidate_lut, state_lut);
}

// io_parallel: data[n_timesteps * n_in] -> res[n_state] (or [n_timesteps * n_state]).
template <class data_T, class res_T, class CONFIG_T>
void lstm_sequence(const data_T data[CONFIG_T::n_timesteps * CONFIG_T::n_in],
                   res_T res[(CONFIG_T::return_sequences ? CONFIG_T::n_timesteps : 1) * CONFIG_T::n_state],
                   const typename CONFIG_T::recurrent_weight_t recurrent[CONFIG_T::n_recurrent_weights],
                   const typename CONFIG_T::bias_t bias[4 * CONFIG_T::n_state],
                   const typename CONFIG_T::act_t gate_lut[CONFIG_T::gate_lut_size],
                   const typename CONFIG_T::act_t candidate_lut[CONFIG_T::candidate_lut_size],
                   const typename CONFIG_T::act_t state_lut[CONFIG_T::state_lut_size]) {
    static typename CONFIG_T::state_t h[CONFIG_T::n_state];
    static typename CONFIG_T::state_t c[CONFIG_T::n_state];
    lstm_load_state<CONFIG_T>(h, c);
Frames:
    for (unsigned t = 0; t < CONFIG_T::n_timesteps; t++) {
        lstm_frame<data_T, CONFIG_T>(&data[t * CONFIG_T::n_in], h, c, recurrent, bias, gate_lut, candidate_lut, state_lut);
        const unsigned offset = CONFIG_T::return_sequences ? t * CONFIG_T::n_state : 0;
        for (unsigned k = 0; k < CONFIG_T::n_state; k++) {
            res[offset + k] = h[k];
        }
    }
}

// io_stream: n_timesteps packs of n_in values in, one (or n_timesteps) packs of n_state out.
template <class data_T, class res_T, class CONFIG_T>
void lstm_sequence(hls::stream<data_T> &data, hls::stream<res_T> &res,
                   const typename CONFIG_T::recurrent_weight_t recurrent[CONFIG_T::n_recurrent_weights],
                   const typename CONFIG_T::bias_t bias[4 * CONFIG_T::n_state],
                   const typename CONFIG_T::act_t gate_lut[CONFIG_T::gate_lut_size],
                   const typename CONFIG_T::act_t candidate_lut[CONFIG_T::candidate_lut_size],
                   const typename CONFIG_T::act_t state_lut[CONFIG_T::state_lut_size]) {
    static typename CONFIG_T::state_t h[CONFIG_T::n_state];
    static typename CONFIG_T::state_t c[CONFIG_T::n_state];
    typename data_T::value_type frame[CONFIG_T::n_in];
    lstm_load_state<CONFIG_T>(h, c);
Frames:
    for (unsigned t = 0; t < CONFIG_T::n_timesteps; t++) {
        for (unsigned p = 0; p < CONFIG_T::n_in / data_T::size; p++) {
            data_T pack = data.read();
            for (unsigned i = 0; i < data_T::size; i++) {
                frame[p * data_T::size + i] = pack[i];
            }
        }
        lstm_frame<typename data_T::value_type, CONFIG_T>(frame, h, c, recurrent, bias, gate_lut, candidate_lut, state_lut);
        if (CONFIG_T::return_sequences || t == CONFIG_T::n_timesteps - 1) {
            for (unsigned p = 0; p < CONFIG_T::n_state / res_T::size; p++) {
                res_T pack;
                for (unsigned k = 0; k < res_T::size; k++) {
                    pack[k] = h[p * res_T::size + k];
                }
                res.write(pack);
            }
        }
    }
}

} // namespace nnet

#endif
