"""Quiet entry points: the start-up messages of TensorFlow, QKeras and Keras that are known to be
harmless here are dropped, and only those; every other message still shows.

``quiet_imports()`` imports TensorFlow, QKeras and hls4ml with file descriptor 2 captured (their
C++ start-up log: CUDA plug-in registration on a machine without a GPU, CPU-feature and oneDNN
notes, TensorRT absent), then writes back every captured line that is not one of those. It also
filters two Python warnings: QKeras serializing its quantizers through
``keras.constraints.serialize`` (it round-trips them correctly; tested), and Keras calling ``.h5``
"legacy" (this flow saves ``.h5`` on purpose: hls4ml reads it). Call it first in a ``main``.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import warnings

HARMLESS_LOG = re.compile(
    r"Unable to register cu(DNN|FFT|BLAS) factory"
    r"|Could not find cuda drivers on your machine"
    r"|oneDNN custom operations are on"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|^To enable the following instructions:"
    r"|TF-TRT Warning: Could not find TensorRT"
)
HARMLESS_WARNINGS = (
    r"The `keras.constraints.serialize\(\)` API should only be used for objects of type",
    r"You are saving your model as an HDF5 file via `model.save\(\)`",
)


def quiet_imports(modules=("tensorflow", "qkeras", "hls4ml")) -> None:
    for message in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    if all(name in sys.modules for name in modules):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            for name in modules:
                __import__(name)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines()
    kept = [line for line in lines if line.strip() and not HARMLESS_LOG.search(line)]
    if kept:
        print("\n".join(kept), file=sys.stderr, flush=True)
