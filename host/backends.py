"""``host.open(folder, backend="auto")``: the one place that chooses the backend of an overlay and opens it.

``"pynq"``: the board, through ``host.pynq_driver`` (imported here only then: it needs ``pynq``),
a Zynq bitstream behind an AXI DMA or an Alveo ``.xclbin`` through XRT, whichever the manifest
lists; ``"emulated"``: the accelerator's C++ here (``host.emulator``); ``"auto"``: the board when
pynq and a bitstream or xclbin are there, else the emulator, with a notice on stderr. The
accelerator (``host.accelerator``) knows no backend: it is handed the one opened here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from host.accelerator import DEFAULT_TIMEOUT_S, Accelerator
from host.emulator import EmulatedBackend
from host.manifest import Manifest, sha256_of

BACKENDS = ("auto", "pynq", "emulated")


def open(  # noqa: A001 - ``host.open``, as ``gzip.open``; not in ``host.__all__``, so no star import shadows the builtin
    folder, backend: str = "auto", *, timeout: float = DEFAULT_TIMEOUT_S, board=None, model=None
) -> Accelerator:
    """An ``Accelerator`` on the overlay in ``folder`` (written by ``python -m overlay build``).

    ``backend``: one of ``BACKENDS`` (see the module docstring); a backend that cannot be had is
    an error naming what is missing. ``timeout``: seconds a transfer may take before it is an error
    (``TimeoutError``). ``board`` / ``model``: when given, the overlay must have been built for
    that board / from that model file (its SHA-256), else ``ValueError``, before anything is opened.
    """
    directory = Path(folder)
    manifest = Manifest.load(directory)
    check_identity(directory, manifest, board, model)
    opened = open_backend(directory, manifest, backend, timeout)
    return Accelerator(directory, opened, timeout=timeout, manifest=manifest)


def check_identity(directory: Path, manifest: Manifest, board=None, model=None) -> None:
    """Refuse an overlay built for another ``board`` or from another ``model`` file (None: any)."""
    if board is not None and board != manifest.board:
        raise ValueError(f"{directory} was built for board {manifest.board!r}, not {board!r}: rebuild it for {board}")
    if model is not None and sha256_of(model) != manifest.model_sha256:
        raise ValueError(
            f"{directory} was built from another model (sha256 {manifest.model_sha256[:12]}...), not {model} "
            f"(sha256 {sha256_of(model)[:12]}...): rebuild the overlay from {model}"
        )


def open_backend(directory: Path, manifest: Manifest, backend: str = "auto", timeout: float = DEFAULT_TIMEOUT_S):
    """The backend ``backend`` names (``BACKENDS``) for the overlay in ``directory``, opened."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    board_files = [role for role in ("bitstream", "xclbin") if role in manifest.files]
    if backend == "auto":
        if board_files and _pynq_available():
            backend = "pynq"
        else:
            why = "pynq is not installed" if board_files else "the overlay has no bitstream or xclbin"
            print(f"[host] {why}: running {directory} on the emulator (backend='emulated')", file=sys.stderr)
            backend = "emulated"
    if backend == "emulated":
        library = manifest.verified_path("emulator", directory)
        return EmulatedBackend(library, manifest, manifest.verified_weights_dir(directory))
    if not board_files:
        raise FileNotFoundError(
            f"the manifest in {directory} lists no bitstream or xclbin (it has: {sorted(manifest.files)}): "
            "run the vendor tools and 'python -m overlay collect', or use backend='emulated'"
        )
    try:
        from host import pynq_driver
    except ImportError as err:
        raise RuntimeError(
            f"the pynq backend needs the 'pynq' package (PYNQ images ship it; on an Alveo host "
            f"install it with XRT): {err}"
        ) from None
    if "xclbin" in manifest.files and "bitstream" not in manifest.files:
        return pynq_driver.open_alveo(directory, manifest, timeout)
    return pynq_driver.open_zynq(directory, manifest, timeout)


def _pynq_available() -> bool:
    return importlib.util.find_spec("pynq") is not None
