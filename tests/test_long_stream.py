"""Long streams, short version: every family's stateful layer streamed frame by frame through its
compiled C-sim (reset port set on each clip's first frame) equals the NumPy reference at every
frame. ``benchmarks/long_stream.py`` runs the same functions for 100,000 frames.

``stream_project(name)`` compiles one such project per family and process, shared with
``tests/test_fuzz.py``."""

import numpy as np
import pytest
from conftest import PRESETS

from benchmarks.long_stream import (
    clip_lengths,
    compile_stream,
    csim_stream,
    reference_stream,
    stream_frames,
    stream_model,
)
from hls_project.profile import Recorder
from models.families import project_families

FAMILIES = project_families()
PRESET = "w8"  # narrow state: constant frames drive c onto its rails
WEIGHT_SCALE = 3.0
_PROJECTS = {}  # family -> (model, layer, hls_model), one compile per process


def stream_project(name, root):
    """``(model, layer, compiled hls_model)`` of ``name``'s one-frame stateful layer with its reset
    port (``PRESET`` types, Keras' seeded initial weights times ``WEIGHT_SCALE``), compiled under
    ``root`` once per process."""
    if name not in _PROJECTS:
        spec = {f"{quantizer}_quantizer": bits for quantizer, bits in PRESETS[PRESET].items()}
        model, layer = stream_model(name, spec, seed=3, weight_scale=WEIGHT_SCALE)
        _PROJECTS[name] = (model, layer, compile_stream(model, root / f"stream_{name}"))
    return _PROJECTS[name]


@pytest.fixture(scope="module")
def project_root(tmp_path_factory):
    return tmp_path_factory.mktemp("streams")


def per_family():
    """The family names as parameters grouped by family for ``pytest -n 2 --dist loadgroup``, so the
    tests sharing a family's compiled project run on one worker (one compile)."""
    return [pytest.param(name, marks=pytest.mark.xdist_group(f"stream_{name}")) for name in FAMILIES]


@pytest.mark.parametrize("name", per_family())
def test_a_long_stream_equals_the_reference_at_every_frame(name, project_root):
    _, layer, hls_model = stream_project(name, project_root)
    rng = np.random.default_rng(11)
    lengths = clip_lengths(400, rng, lengths=(1, 2, 7, 30, 150))
    frames = stream_frames(lengths, rng)
    recorder = Recorder(layer=name)
    expected = reference_stream(layer, frames, lengths, recorder)
    for _ in range(2):  # the second pass starts on a library whose state is the first pass's end
        np.testing.assert_array_equal(csim_stream(hls_model, frames, lengths), expected)
    # the stream exercises what it claims: the state rails, and resets that matter
    assert recorder.variables[(name, "cell state c")].outside > 0
    carried = reference_stream(layer, frames, np.array([len(frames)]))
    starts = np.cumsum(lengths)[:-1]
    assert (carried[starts] != expected[starts]).any(axis=1).mean() > 0.5


def test_clip_lengths_cover_the_stream_exactly():
    rng = np.random.default_rng(0)
    for total in (1, 5, 999, 100_000):
        lengths = clip_lengths(total, rng)
        assert lengths.sum() == total and (lengths >= 1).all()
