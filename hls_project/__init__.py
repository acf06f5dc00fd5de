"""hls4ml plugins for the compressed LSTM families, and ``convert`` for a Keras model.

Importing this package imports every family module (``hls_project/<stem>.py``, stems ending in
``_lstm``); defining a family's IR class registers it with hls4ml's extension API (converter
handler, IR layer, config/function templates) on the Vivado, Vitis and VivadoAccelerator
backends, and every header in ``nnet_utils/`` is registered here, with the pass that narrows the
model input's stream (``hls_project.input_stream``). ``discover()`` runs the discovery, of this
package's family modules and of every installed package's plugin modules named under the entry
point group ``ENTRY_POINTS``; calling it again does nothing new. hls4ml imports TensorFlow: its
harmless start-up log is dropped here (``models.quiet``), so that no command line importing this package shows it.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from pathlib import Path

from models.quiet import quiet_imports

quiet_imports()  # before hls4ml imports TensorFlow

import hls4ml  # noqa: E402

from hls_project import reproducible  # noqa: E402
from hls_project.execute import execute  # noqa: E402
from hls_project.families import BACKENDS, FAMILY_LAYERS  # noqa: E402
from hls_project.input_stream import PASS_NAME, RESET_PASS_NAME, AddResetPort, NarrowInputStream  # noqa: E402
from models.families import FAMILY_SUFFIX  # noqa: E402

HEADERS = Path(__file__).parent / "nnet_utils"
# a package's hls4ml plugin modules: [project.entry-points."compressed_lstm_fpga.hls_families"] name = "module"
ENTRY_POINTS = "compressed_lstm_fpga.hls_families"


def discover() -> dict:
    """Import every family module (this package's, and the installed packages' ``ENTRY_POINTS``)
    and register our headers and passes; returns ``{Keras class name: IR class}``."""
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.endswith(FAMILY_SUFFIX):
            importlib.import_module(f"hls_project.{info.name}")
    for entry in entry_points(group=ENTRY_POINTS):
        entry.load()
    for backend_name in BACKENDS:
        backend = hls4ml.backends.get_backend(backend_name)
        for header in sorted(HEADERS.glob("nnet_*.h")):
            backend.register_source(header.resolve())
    if f"vivado:{PASS_NAME}" not in hls4ml.model.optimizer.get_available_passes():
        # after hls4ml's transform_types (the flow Vivado, Vitis and VivadoAccelerator all run)
        vivado = hls4ml.backends.get_backend("Vivado")
        vivado.register_pass(PASS_NAME, NarrowInputStream, flow="vivado:specific_types")
        vivado.register_pass(RESET_PASS_NAME, AddResetPort, flow="vivado:optimize")
    reproducible.add_to_write_flow(BACKENDS)  # the same model writes the same files (hls_project.reproducible)
    return dict(FAMILY_LAYERS)


discover()

from hls_project.convert import convert  # noqa: E402  (needs the registration above)

__all__ = ["convert", "discover", "execute"]
