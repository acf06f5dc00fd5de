"""The token-level dataflow simulation (``overlay.dataflow_sim``): it agrees with the estimate's
frames/s on every family, sizes FIFOs, and reports a process starved of tokens."""

from __future__ import annotations

import pytest
from test_estimate import FAMILIES, small_model

from overlay.dataflow_sim import (
    COMPUTE,
    READ,
    WRITE,
    DeadlockError,
    Phase,
    Process,
    dataflow_summary,
    fifo_depths,
    steady_interval,
)
from overlay.estimate import convert_for_board, estimate_network


@pytest.mark.parametrize("name", FAMILIES)
def test_the_simulated_frames_per_s_agree_with_the_estimate(name, tmp_path):
    """The stages' cycles run token by token through bounded FIFOs (the reader, the LSTM's two
    halves, the writer) give the estimate's frames/s within 5%, at the declared FIFO depths, which
    are at least what the simulation needs."""
    hls_model = convert_for_board(small_model(name), tmp_path, "pynq-z2", reset_port=True, echo=lambda m: None)
    estimate = estimate_network(hls_model, "pynq-z2", 100)
    simulated = dataflow_summary(hls_model, estimate)
    assert simulated["frames_per_s"] == pytest.approx(estimate.frames_per_s, rel=0.05)
    for fifo in simulated["fifos"]:
        assert 1 <= fifo["needed_depth"] <= fifo["declared_depth"]


def bursty_pair(depth_tokens: int = 8) -> list:
    """A producer that computes 100 cycles, then writes 8 tokens in 8 cycles; a consumer that
    reads them one every 13 cycles (104 cycles)."""
    producer = Process("producer", (Phase("work", COMPUTE, 100), Phase("send", WRITE, 8, depth_tokens)))
    consumer = Process("consumer", (Phase("take", READ, 104, depth_tokens),))
    return [producer, consumer]


def test_a_fifo_too_shallow_for_a_burst_slows_the_producer_and_is_sized_to_hold_it():
    """With room for the whole burst the producer's period is 108 cycles; with one token of room
    token j is written when token j - 1 is read: the first is written at 101 and read at 102,
    the last written when the seventh is read, 6 x 13 cycles later: a period of 180."""
    pair = bursty_pair()
    assert steady_interval(pair, [8]) == pytest.approx(108, abs=1)
    assert steady_interval(pair, [1]) == 180
    assert fifo_depths(pair, [64]) == [8]


def test_a_process_waiting_for_tokens_never_written_is_a_deadlock():
    producer = Process("producer", (Phase("send", WRITE, 4, 4),))
    consumer = Process("consumer", (Phase("take", READ, 8, 8),))
    with pytest.raises(DeadlockError, match="consumer waits for token 12 of its input FIFO, whose writer gives 12"):
        steady_interval([producer, consumer], [4])
