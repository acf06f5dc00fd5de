"""The pragma-safe clang-format wrapper keeps HLS pragmas as written and indents them with the code."""

import importlib.util
from pathlib import Path

import pytest

WRAPPER = Path(__file__).parents[1] / "hls_project" / "format_headers.py"
spec = importlib.util.spec_from_file_location("format_headers", WRAPPER)
format_headers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(format_headers)

SOURCE = """void f(int a[8]) {
for (int i = 0; i < 8; i++) {
#pragma HLS PIPELINE II=CONFIG_T::reuse_factor rewind
a[i]   = i;
}
}
"""


@pytest.fixture(scope="module")
def binary():
    return format_headers.clang_format_binary()


def test_pragmas_keep_their_text_and_follow_the_code(binary):
    formatted = format_headers.format_source(SOURCE, "x.h", binary)
    assert "        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor rewind\n" in formatted
    assert "        a[i] = i;\n" in formatted
    assert format_headers.format_source(formatted, "x.h", binary) == formatted


def test_plain_clang_format_would_rewrite_them(binary):
    import subprocess

    plain = subprocess.run([binary, "--assume-filename=x.h"], input=SOURCE, capture_output=True, text=True).stdout
    assert "        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor rewind\n" not in plain
