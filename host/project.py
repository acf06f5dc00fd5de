"""Where the project keeps what it makes, for the notebooks: ``PROJECT_ROOT`` (the folder holding
``host/``: in the repository, where ``make demo`` writes ``build/``) and the overlay the board
notebook opens by default. Standard library only (``host`` runs on the board)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_OVERLAY = "build/overlay"  # what ``make demo`` writes (demo.py --out build), under the root


def default_overlay(root=None) -> Path:
    """The overlay to open when none is named: the installed board package's for this board
    (``lstm_overlay``, on the board), else ``DEMO_OVERLAY`` under ``root`` (default
    ``PROJECT_ROOT``) when it holds a manifest; a ``FileNotFoundError`` says how to name one."""
    try:
        import lstm_overlay
    except ImportError:
        demo = Path(root or PROJECT_ROOT) / DEMO_OVERLAY
        if (demo / "manifest.json").is_file():
            return demo
        raise FileNotFoundError(
            f"no overlay to open: the board package lstm_overlay is not installed here and {demo} holds none "
            "(make demo writes it): set OVERLAY to a folder written by python -m overlay build"
        ) from None
    return Path(lstm_overlay.overlay_dir())
