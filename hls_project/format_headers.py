"""Pragma-safe clang-format for our HLS C++ (``make lint`` checks, ``make format`` rewrites).

Plain clang-format treats ``#pragma HLS ...`` as a preprocessor line: it moves it to column 0
and re-spaces its arguments (``II=x`` becomes ``II = x``). Here every HLS pragma is turned into
a marked comment first (clang-format indents it with the code and, by ``CommentPragmas`` in
``.clang-format``, leaves its text alone), then turned back. Run as a script:
``python hls_project/format_headers.py [--check] FILE...``.
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import subprocess
import sys
from pathlib import Path

MARK = "// clang-format-hls-pragma:"
PRAGMA = re.compile(r"^(\s*)#pragma HLS (.*)$", re.MULTILINE)
MARKED = re.compile(rf"^(\s*){re.escape(MARK)} (.*)$", re.MULTILINE)


def clang_format_binary() -> str:
    local = Path(sys.executable).parent / "clang-format"
    found = str(local) if local.exists() else shutil.which("clang-format")
    if found is None:
        raise SystemExit("clang-format not found: install requirements.txt (clang-format==18.1.8)")
    return found


def format_source(text: str, filename: str, binary: str) -> str:
    """``text`` formatted by clang-format with every ``#pragma HLS`` kept as written, indented."""
    hidden = PRAGMA.sub(lambda m: f"{m.group(1)}{MARK} {m.group(2)}", text)
    result = subprocess.run(
        [binary, "--style=file", f"--assume-filename={filename}"], input=hidden, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"clang-format failed on {filename}: {result.stderr}")
    return MARKED.sub(lambda m: f"{m.group(1)}#pragma HLS {m.group(2)}", result.stdout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="print what would change and exit 1, write nothing")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    binary = clang_format_binary()
    unformatted = 0
    for path in args.files:
        text = path.read_text()
        formatted = format_source(text, str(path), binary)
        if formatted == text:
            continue
        unformatted += 1
        if args.check:
            before, after = text.splitlines(True), formatted.splitlines(True)
            sys.stdout.writelines(difflib.unified_diff(before, after, str(path), f"{path} (formatted)"))
        else:
            path.write_text(formatted)
    if args.check and unformatted:
        print(f"{unformatted} file(s) not formatted: run 'make format'", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
