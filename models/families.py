"""The family registry: every LSTM family layer, found rather than listed.

A family is a ``models.lstm_cell.QuantizedRNN`` subclass with a ``family`` name; defining the
class registers it (``QuantizedRNN.__init_subclass__``, ``register_family``). ``discover()``
imports every family module of this package (``models/<stem>.py`` with a stem ending in
``_lstm``, the stem every folder of the project uses for that family) and of every installed
package that names one under the entry point group ``ENTRY_POINTS``, so training, conversion,
the overlay, the benchmarks and the tests all take the list from here. A family defined elsewhere
(a user's module, a test) registers the same way when its module is imported.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from pathlib import Path

FAMILY_SUFFIX = "_lstm"
# a package's Keras family modules: [project.entry-points."compressed_lstm_fpga.families"] name = "module"
ENTRY_POINTS = "compressed_lstm_fpga.families"
_REGISTRY: dict = {}  # family name -> QuantizedRNN subclass


def register_family(layer_class) -> None:
    """Register one family: called for every ``QuantizedRNN`` subclass that sets ``family``; a
    name is taken once."""
    name = layer_class.family
    known = _REGISTRY.get(name)
    if known is not None and known.__qualname__ != layer_class.__qualname__:
        raise ValueError(f"family name {name!r} is taken by {known.__module__}.{known.__qualname__}")
    _REGISTRY[name] = layer_class


def family_modules() -> list:
    """The stems of this package's family modules (``tt_lstm``, ``ht_lstm``, ...), sorted."""
    folder = Path(__file__).parent
    return sorted(info.name for info in pkgutil.iter_modules([str(folder)]) if info.name.endswith(FAMILY_SUFFIX))


def discover() -> dict:
    """Import every family module of ``models`` and of the installed packages' entry points
    (``ENTRY_POINTS``) and return ``{family name: layer class}``.

    Includes families registered from elsewhere (their modules imported already).
    """
    for stem in family_modules():
        importlib.import_module(f"models.{stem}")
    for entry in entry_points(group=ENTRY_POINTS):
        entry.load()
    return dict(sorted(_REGISTRY.items()))


def project_families() -> dict:
    """The families defined in this package's own modules (not a user's or a test's)."""
    return {name: cls for name, cls in discover().items() if cls.__module__.startswith("models.")}


def get_family(name: str):
    """The layer class of family ``name``; a ValueError lists the known ones."""
    families = discover()
    if name not in families:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(families)}")
    return families[name]
