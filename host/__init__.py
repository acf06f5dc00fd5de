"""Host side: drive an overlay from PYNQ (or the emulator here). Imports only NumPy and, lazily, pynq.

``host.open(folder, backend="auto")`` opens an overlay folder on its backend: an ``Accelerator``.
"""

from fixedpoint import FixedType
from host.accelerator import Accelerator
from host.backends import open as open  # re-exported, not in __all__: ``from host import *`` keeps the builtin
from host.manifest import Manifest

__all__ = ["Accelerator", "FixedType", "Manifest"]
