"""The accelerator's word protocol, shared by the board driver and the emulator (NumPy only).

One AXI-stream beat is one 32-bit word.

* input, ``1 + frames * features`` words: word 0 is the control word (bit 0: zero the state of
  stateful LSTM layers before this call); then every input value as the raw integer of the
  input type (two's complement, sign-extended to 32 bits), frame by frame.
* output, one word per output value: the raw integer of the output type, sign-extended.

Floats are rounded to the input type exactly as the C-simulation rounds them (half to even,
saturate), so the board, the emulator and ``hls_model.predict`` see the same integers.
"""

from __future__ import annotations

import numpy as np

from fixedpoint import FixedType

CONTROL_RESET = 1


def encode_input(features, input_type: FixedType, frames: int, n_features: int, reset: bool) -> np.ndarray:
    """(frames, n_features) floats -> int32 words ``[control, raw...]``."""
    features = np.asarray(features, dtype=np.float64)
    if features.shape != (frames, n_features):
        raise ValueError(f"expected features of shape {(frames, n_features)}, got {features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError("features contain NaN or infinity")
    words = np.empty(1 + frames * n_features, dtype=np.int32)
    words[0] = CONTROL_RESET if reset else 0
    words[1:] = input_type.to_raw(features.reshape(-1))
    return words


def decode_output(words, output_type: FixedType) -> np.ndarray:
    """int32 words -> float64 values of ``output_type``."""
    raw = np.asarray(words, dtype=np.int64)
    if not output_type.signed:
        raw = raw & ((1 << output_type.width) - 1)
    return output_type.from_raw(raw)
