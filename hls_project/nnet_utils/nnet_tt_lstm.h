#ifndef NNET_TT_LSTM_H_
#define NNET_TT_LSTM_H_

// TT-LSTM input map: the tensor-train mat-vec, one core per step, last core first (models/tt.py),
// as a frame pipeline. Every core is one mode_contract (nnet_decomposed.h) over the call's frames,
// a DATAFLOW process of its own: the last core reads the streaming frame, every step streams its
// rounded rows to the next as packs, and the first core's step writes the zx FIFO. The schedule,
// the packs and the exact MAC types are computed in Python (hls_project/tt_lstm.py) and emitted as
// one tt_core_config per step, with the layer's input_maps member that chains them.

#include "nnet_common.h"
#include "nnet_decomposed.h"

namespace nnet {

// A TT core of shape (rank_out, n_in, n_out, rank_in) as a mode contraction: its input buffer
// (n_left, n_in, n_right, rank_in) streams in, rows = n_left * frames; its output is
// (n_left, n_out, n_right, rank_out); the core is stored as (n_in, rank_in, rank_out, n_out).
struct tt_core_config : mode_contract_config {};

} // namespace nnet

#endif
