"""Fuzzed exactness: hypothesis draws layer configurations and inputs for every family and checks
C-sim ``==`` the NumPy reference and Keras within 1 LSB of the state type.

- default (cheap): one compiled project per family, the stateful one-frame layer of
  ``tests/test_long_stream.py`` (shared, compiled once per process); hypothesis draws clips
  (how many, their lengths: every sequence length and a reset at each clip start, so stateful and
  not) and their values (scale from far inside to far beyond the input type, noise, constant
  frames, the input type's rails).
- ``slow`` (``make test-all``): a new layer per example: modes / rank / block size / sparsity
  (``for_task``'s ``n_modes`` and ``rank``), units, every quantizer's width and integer bits
  (including all types at 8 bits or fewer), frames per call, stateful or not, return sequences,
  input scale; each example converts and compiles its own C-sim.

Every run is derandomized (same examples each time, no example database): CI is reproducible.
A failure prints hypothesis' shrunk example; it becomes a plain regression test below.
"""

import numpy as np
import pytest
import tensorflow as tf
from conftest import random_weights
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from qkeras import quantized_bits
from test_long_stream import FAMILIES, per_family, project_root, stream_project  # noqa: F401 (fixture)

import hls_project
from benchmarks.long_stream import N_FEATURES, csim_stream, reference_stream, sequence_copy

CHEAP = settings(
    max_examples=4,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
LARGE = settings(CHEAP, max_examples=12)


@st.composite
def clips(draw, max_clips=6, max_frames=12):
    """``(frames (sum, N_FEATURES) float32, lengths)``: clips of drawn lengths and content."""
    lengths = np.array(draw(st.lists(st.integers(1, max_frames), min_size=1, max_size=max_clips)))
    scale = draw(st.sampled_from([0.01, 0.3, 1.0, 4.0, 20.0]))  # 20: far beyond every input type
    kind = draw(st.sampled_from(["uniform", "normal", "constant", "rails"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (int(lengths.sum()), N_FEATURES)
    if kind == "uniform":
        frames = rng.uniform(-scale, scale, shape)
    elif kind == "normal":
        frames = rng.normal(0, scale, shape)
    elif kind == "constant":
        frames = np.broadcast_to(rng.uniform(-scale, scale, (1, N_FEATURES)), shape)
    else:
        frames = rng.choice([-scale, scale], shape)
    return np.ascontiguousarray(frames, np.float32), lengths


def keras_stream(sequence, frames, lengths) -> np.ndarray:
    """Keras' output of every frame, each clip from a zero state (``sequence``: the layer's ``sequence_copy``)."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    out = np.empty((len(frames), sequence.cell.units))
    for length in np.unique(lengths):
        index = starts[lengths == length][:, None] + np.arange(length)[None, :]
        out[index] = sequence(frames[index]).numpy()
    return out


@pytest.mark.parametrize("name", per_family())
def test_fuzzed_clips_through_one_compiled_layer(name, project_root):  # noqa: F811
    _, layer, hls_model = stream_project(name, project_root)
    lsb = layer.cell.fixed_types["state_quantizer"].lsb
    sequence = sequence_copy(layer)

    @CHEAP
    @given(data=clips())
    def check(data):
        frames, lengths = data
        expected = reference_stream(sequence, frames, lengths)
        np.testing.assert_array_equal(csim_stream(hls_model, frames, lengths), expected)
        assert np.max(np.abs(keras_stream(sequence, frames, lengths) - expected)) <= lsb

    check()


QUANTIZER_RANGES = {  # name: (bits range, integer bits range) of quantized_bits(bits, integer)
    "kernel": ((2, 12), (0, 2)),
    "recurrent": ((2, 12), (0, 2)),
    "bias": ((3, 12), (0, 3)),
    "state": ((4, 14), (1, 4)),
    "input": ((3, 12), (0, 3)),
    "accumulator": ((5, 16), (2, 6)),
    "activation": ((3, 12), (0, 1)),
}


@st.composite
def quantizer_settings(draw):
    """Bits and integer bits of every quantizer; one example in three has every type at 8 bits or fewer."""
    narrow = draw(st.integers(0, 2)) == 0
    chosen = {}
    for name, ((lo, hi), (ilo, ihi)) in QUANTIZER_RANGES.items():
        bits = draw(st.integers(lo, min(hi, 8) if narrow else hi))
        chosen[name] = (bits, draw(st.integers(ilo, min(ihi, bits - 1))))
    return chosen


@st.composite
def layer_configs(draw):
    """A family layer's configuration: structure, size, types, sequence shape, state, input scale."""
    return dict(
        n_modes=draw(st.sampled_from([2, 3])),
        rank=draw(st.sampled_from([1, 2, 3, 4])),
        units=draw(st.sampled_from([4, 8])),
        quantizers=draw(quantizer_settings()),
        frames=draw(st.integers(1, 4)),
        stateful=draw(st.booleans()),
        return_sequences=draw(st.booleans()),
        scale=draw(st.sampled_from([0.1, 1.0, 4.0, 20.0])),
        seed=draw(st.integers(0, 1000)),
    )


def check_config(name, config, output_dir):
    """Build ``config``'s layer of family ``name``, compile its C-sim, and compare on drawn clips:
    C-sim == reference (``execute``, state carried across calls when stateful) and Keras within 1 LSB."""
    quantizers = {f"{q}_quantizer": quantized_bits(*bits, alpha=1) for q, bits in config["quantizers"].items()}
    batch = 1 if config["stateful"] else 4
    inputs = tf.keras.Input((config["frames"], N_FEATURES), batch_size=batch if config["stateful"] else None)
    try:
        layer = FAMILIES[name].for_task(
            N_FEATURES,
            config["units"],
            config["n_modes"],
            config["rank"],
            name=name,
            stateful=config["stateful"],
            return_sequences=config["return_sequences"],
            **quantizers,
        )
        model = tf.keras.Model(inputs, layer(inputs))
    except ValueError:  # e.g. a rank the tree does not allow: refused by the layer, naming it (tested elsewhere)
        reject()
    rng = np.random.default_rng(config["seed"])
    random_weights(layer, rng, 0.6)
    hls_model = hls_project.convert(model, output_dir)
    hls_model.compile()
    calls = rng.uniform(-config["scale"], config["scale"], (3, batch, config["frames"], N_FEATURES)).astype(np.float32)
    state = None
    lsb = layer.cell.fixed_types["state_quantizer"].lsb
    for x in calls:
        expected, state = hls_project.execute(layer, x, state if config["stateful"] else None)
        np.testing.assert_array_equal(np.asarray(hls_model.predict(x)).reshape(expected.shape), expected)
        assert np.max(np.abs(model.predict(x, verbose=0) - expected)) <= lsb


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_fuzzed_layer_configurations(name, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"fuzz_{name}")
    examples = []

    @LARGE
    @given(config=layer_configs())
    def check(config):
        examples.append(config)
        check_config(name, config, root / f"example{len(examples)}")

    check()
