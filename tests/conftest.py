"""Shared helpers: quantizer presets and small models for every LSTM family's tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from qkeras import quantized_bits  # noqa: E402

# name -> (bits, integer) per quantizer; "w8" keeps every type at 8 bits or fewer.
PRESETS = {
    "w8": dict(
        kernel=(8, 1), recurrent=(8, 0), bias=(8, 2), state=(8, 2), input=(8, 1), accumulator=(8, 3), activation=(8, 0)
    ),
    "w12": dict(
        kernel=(10, 0),
        recurrent=(10, 0),
        bias=(10, 2),
        state=(12, 3),
        input=(10, 2),
        accumulator=(12, 4),
        activation=(10, 1),
    ),
    "w16": dict(
        kernel=(16, 2),
        recurrent=(16, 1),
        bias=(16, 4),
        state=(16, 4),
        input=(16, 3),
        accumulator=(14, 4),
        activation=(12, 1),
    ),
}


def quantizers(preset: str) -> dict:
    """Keyword arguments with one ``quantized_bits`` per quantizer of an LSTM family layer."""
    return {
        f"{name}_quantizer": quantized_bits(bits, integer, alpha=1) for name, (bits, integer) in PRESETS[preset].items()
    }


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def random_weights(layer, rng, scale=1.0):
    """Replace a built layer's weights with random values spread over several quantizer steps."""
    layer.set_weights([rng.normal(0.0, scale, w.shape).astype(np.float32) for w in layer.get_weights()])
