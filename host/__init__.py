"""Host side: drive an overlay from PYNQ (or the emulator here). Imports only NumPy and, lazily, pynq."""

from fixedpoint import FixedType
from host.accelerator import Accelerator
from host.manifest import Manifest

__all__ = ["Accelerator", "FixedType", "Manifest"]
