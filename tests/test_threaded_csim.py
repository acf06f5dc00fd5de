"""The threaded C-simulation (``overlay/emulator_include/threaded/hls_stream.h`` with
``nnet_utils/nnet_dataflow.h``): processes on threads, FIFOs bounded at their declared depths,
a deadlock reported by name instead of a hang; and the same macros are the HLS pragma and the
plain calls everywhere else. Every family's overlay runs it in ``tests/test_lstm_cell.py``."""

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import check_threaded_testbench

from hls_project import HEADERS
from overlay.axi_wrapper import THREADED_STREAMS
from overlay.testbench import THREADED_DEADLOCK_EXIT, fifo_occupancy

# A fork-join region: `produce` sends N tokens on `first`, then N on `second`; `consume` reads
# them in pairs, `second` first. So `first` must buffer all N tokens: at a depth below N, the
# producer waits on a full `first` while the consumer waits on an empty `second`.
FORK_JOIN = """#include <cstdio>
#include <cstdlib>

#include "nnet_utils/nnet_dataflow.h"

static const int N = 8;

static void produce(hls::stream<int> &first, hls::stream<int> &second) {
    for (int i = 0; i < N; i++) {
        first.write(i);
    }
    for (int i = 0; i < N; i++) {
        second.write(i);
    }
}

static void consume(hls::stream<int> &first, hls::stream<int> &second, int &sum) {
    for (int i = 0; i < N; i++) {
        const int weight = second.read();
        sum += weight * first.read();
    }
}

int main(int, char **argv) {
    hls::stream<int> first("first"), second("second");
    NNET_STREAM_DEPTH(first, std::atoi(argv[1]));
    NNET_STREAM_DEPTH(second, 1);
    int sum = 0;
    NNET_DATAFLOW(produce(first, second), consume(first, second, sum));
    std::printf("sum %d\\n", sum);
    return 0;
}
"""
N = 8


@pytest.fixture(scope="module")
def fork_join(tmp_path_factory):
    """The fork-join region compiled for the threaded C-simulation (g++ -Wall -Wextra -Werror)."""
    folder = tmp_path_factory.mktemp("fork_join")
    (folder / "fork_join.cpp").write_text(FORK_JOIN)
    flags = ["-std=c++14", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread"]
    command = ["g++", *flags, "-I", str(THREADED_STREAMS), "-I", str(HEADERS.parent), "fork_join.cpp", "-o", "run"]
    subprocess.run(command, cwd=folder, check=True)
    return folder / "run"


def test_a_fifo_deep_enough_for_the_fork_join_runs_it_to_the_end(fork_join):
    result = subprocess.run([str(fork_join), str(N)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and f"sum {sum(i * i for i in range(N))}" in result.stdout, result.stderr
    assert fifo_occupancy(result.stdout) == {("first", N): N, ("second", 1): 1}


def test_a_fifo_too_shallow_for_the_fork_join_is_reported_as_a_deadlock_not_a_hang(fork_join):
    start = time.monotonic()
    result = subprocess.run([str(fork_join), str(N - 1)], capture_output=True, text=True, timeout=60)
    assert time.monotonic() - start < 30
    assert result.returncode == THREADED_DEADLOCK_EXIT and "sum" not in result.stdout
    assert result.stderr.startswith("deadlock: no stream moved for 2 s")
    assert f"'first' full (depth {N - 1}) <- writer produce blocked" in result.stderr
    assert "'second' empty <- reader consume blocked" in result.stderr


def test_for_hls_the_macros_are_the_stream_pragma_and_the_calls_in_order(tmp_path):
    """Preprocessed without the threaded header (as Vivado HLS and the sequential g++ builds do,
    with hls4ml's hls_stream.h): the region is the STREAM pragma and the two calls, nothing else."""
    import hls4ml

    sequential = Path(hls4ml.__file__).parent / "templates/vivado/ap_types"  # copied into every project
    (tmp_path / "fork_join.cpp").write_text(FORK_JOIN)
    command = ["g++", "-std=c++14", "-E", "-P", "-I", str(sequential), "-I", str(HEADERS.parent), "fork_join.cpp"]
    text = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    main = " ".join(text[text.index("int main(") :].split())
    assert "#pragma HLS STREAM variable = first depth = std::atoi(argv[1])" in main
    assert "#pragma HLS STREAM variable = second depth = 1" in main
    assert "produce(first, second); consume(first, second, sum);" in main
    assert "threaded_csim" not in text


@pytest.mark.parametrize("name", ["clip", "frames"])
def test_the_threaded_testbench_equals_the_emulator_on_both_io_types(overlays, name, tmp_path):
    """The session's io_parallel overlay and its stateful io_stream one (the reset stream of every
    call): the TT-LSTM's frame pipeline runs a thread per step, its FIFOs bounded too."""
    hls_dir = tmp_path / "hls"
    shutil.copytree(overlays[name]["overlay"] / "hls", hls_dir)
    occupancy = check_threaded_testbench(hls_dir)
    assert ("zx", 32) in occupancy and any(stream == "s1" for stream, _ in occupancy)


def test_a_reader_that_sends_the_reset_after_the_frame_deadlocks_the_top_and_the_report_names_its_streams(
    overlays, tmp_path
):
    """The top's own fork-join: the reader feeds the stateful model through x and, before each
    call's packs, the reset token through lstm_reset, which the model reads first. A reader that
    sent the token after the packs (a bug) leaves the model waiting on an empty lstm_reset while
    the reader waits on a full x, once a call's packs do not fit x: at depth 1, any call of the
    testbench. The free-running processes never return, and the report names both."""
    from overlay.axi_wrapper import FIFO_DEPTH
    from overlay.testbench import run_threaded_testbench

    hls_dir = tmp_path / "hls"
    shutil.copytree(overlays["frames"]["overlay"] / "hls", hls_dir)
    top = hls_dir / "firmware/myproject_axi.cpp"
    source = top.read_text()
    token = "    lstm_reset.write(reset_pack);\n"
    edits = {
        token: "",
        "    if (complete) {\n": token + "    if (complete) {\n",
        f"NNET_STREAM_DEPTH(x, {FIFO_DEPTH});": "NNET_STREAM_DEPTH(x, 1);",
    }
    for old, new in edits.items():
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    top.write_text(source)
    result = run_threaded_testbench(hls_dir)
    assert result.returncode == THREADED_DEADLOCK_EXIT, result.stdout + result.stderr
    for blocked in ("'lstm_reset' empty <- reader myproject blocked", "'x' full (depth 1) <- writer read_call blocked"):
        assert blocked in result.stderr
