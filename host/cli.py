"""What every command line of the project does on exit (``python -m overlay``, ``hls_project``,
``models.train``, ``models.admm``, ``models.pruning``, ``host.stream``, ``demo.py``).

Standard library only: ``host`` runs on the board, and imports nothing of ``overlay``,
``models`` or ``hls_project``; they import this.
"""

from __future__ import annotations

import sys

INTERRUPTED = 130  # the code a shell gives a command that SIGINT ended (128 + 2)


def run_command(main, tag: str):
    """Exit with ``main()``'s code; Ctrl-C (``KeyboardInterrupt``) anywhere in it ends the command
    with one line, ``[tag] interrupted``, on stderr and exit code ``INTERRUPTED``, not a traceback.
    Only ``if __name__ == "__main__"`` calls it: ``main()`` called from Python (a notebook, a
    test) still raises ``KeyboardInterrupt``."""
    try:
        code = main()
    except KeyboardInterrupt:
        print(f"[{tag}] interrupted", file=sys.stderr, flush=True)
        code = INTERRUPTED
    sys.exit(code)
