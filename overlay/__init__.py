"""Board projects: HLS project + Vivado block design + bitstream + manifest (``python -m overlay``)."""

from host.boards import BOARDS
from overlay.build import MissingToolError, build_overlay

__all__ = ["BOARDS", "MissingToolError", "build_overlay"]
