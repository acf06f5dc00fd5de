#ifndef NNET_HT_LSTM_H_
#define NNET_HT_LSTM_H_

// HT-LSTM and FDHT-LSTM input maps: hierarchical-Tucker mat-vec in its streaming order, one core
// per step (models/ht.py), every core one mode_contract process of a frame pipeline
// (nnet_decomposed.h): the HT-LSTM's over a call's frames, the FDHT-LSTM's over one frame of
// [x_t; h_t-1] (hls_project/decomposed.py, StreamChain).

#include "nnet_common.h"
#include "nnet_decomposed.h"

namespace nnet {

// A core of the streaming order (models.ht.StreamStep) as a step of the frame pipeline: a
// mode_contract, the core stored in read order (n_in, rank_in, rank_out, n_out).
struct ht_pipeline_config : mode_contract_config {};

} // namespace nnet

#endif
