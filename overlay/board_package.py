"""``lstm_overlay``: a compressed-LSTM overlay packaged for PYNQ (written by ``python -m overlay build``).

This file is ``lstm_overlay/__init__.py`` of the board package ``overlay.package`` writes; it
imports only the standard library (``host``, beside it in the package, needs NumPy, and pynq on
the board). As in PYNQ's own packages, the bitstreams are kept per board,
``overlays/<board>/accelerator.bit`` + ``accelerator.hwh`` (same base name, as ``pynq.Overlay``
needs) or ``accelerator.xclbin``, each beside its ``manifest.json`` and ``expected_outputs.npz``,
and the folder is chosen from the board PYNQ reports: ``$BOARD`` (set on PYNQ images, read the
way ``pynqutils.get_board`` reads it), else ``pynq.Device.active_device.name`` (as
finn-examples chooses its bitfiles). The notebooks are registered through the
``pynq.notebooks`` entry point: ``pynq get-notebooks lstm_overlay`` delivers them.

    import lstm_overlay
    with lstm_overlay.accelerator() as acc:        # host.Accelerator on this board's overlay
        logits = acc.run_clip(clip)
"""

from __future__ import annotations

import os
from pathlib import Path

OVERLAYS = Path(__file__).parent / "overlays"


def _key(name: str) -> str:
    """A board name as compared: lower case, no '-' or '_' ("Pynq-Z2" and "pynq-z2" are one)."""
    return name.lower().replace("-", "").replace("_", "")


def boards() -> list:
    """The boards this package holds an overlay for (our names: ``pynq-z2``, ``zcu102``, ``alveo-u250``)."""
    return sorted(path.name for path in OVERLAYS.iterdir() if (path / "manifest.json").is_file())


def reported_board():
    """The board PYNQ reports: ``$BOARD``, else ``pynq.Device.active_device.name``; None off a board."""
    if os.environ.get("BOARD"):
        return os.environ["BOARD"]
    try:
        import pynq

        return pynq.Device.active_device.name
    except Exception:  # no pynq, or no device: pynq raises RuntimeError("No Devices Found") and others
        return None


def matches(board: str, reported: str) -> bool:
    """Whether our ``board`` name is the board PYNQ reports (an Alveo shell name holds the card, u250)."""
    ours, theirs = _key(board), _key(reported)
    return ours == theirs or (ours.startswith("alveo") and ours.removeprefix("alveo") in theirs)


def overlay_dir(board: str | None = None) -> Path:
    """The overlay folder for ``board`` (our name or PYNQ's), by default the board PYNQ reports;
    off a board, the package's only overlay. Anything else is a ``ValueError`` naming both sides."""
    held = boards()
    wanted = board or reported_board()
    if wanted is None:
        if len(held) == 1:
            return OVERLAYS / held[0]
        raise ValueError(f"no board reported ($BOARD, pynq.Device): choose one of {held} with board=")
    found = [name for name in held if matches(name, wanted)]
    if not found:
        raise ValueError(f"this package holds overlays for {held}, not for board {wanted!r}: rebuild for it")
    return OVERLAYS / found[0]


def notebooks_dir() -> Path:
    """The notebooks ``pynq get-notebooks lstm_overlay`` delivers."""
    return Path(__file__).parent / "notebooks"


def accelerator(backend: str = "auto", board: str | None = None):
    """``host.open``: a ``host.Accelerator`` on ``overlay_dir(board)``."""
    import host

    return host.open(overlay_dir(board), backend=backend)
