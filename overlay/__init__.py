"""Board projects: HLS project + Vivado block design + bitstream + manifest (``python -m overlay``)."""

from overlay.build import BOARDS, MissingToolError, build_overlay

__all__ = ["BOARDS", "MissingToolError", "build_overlay"]
