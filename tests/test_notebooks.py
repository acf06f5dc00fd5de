"""``host/notebooks``: every notebook runs top to bottom, headless (nbclient), and is committed clean.

The default run executes every notebook: the board notebook emulated, on the mock Zynq in the pynq
environment and against wrong expected outputs; 02 on a saved model (one C-sim compile); 03 from
a saved model to an overlay folder. 02 training a model of every family (a compile each) runs in
``make test-all`` (``slow``).

The kernel is this interpreter (the venv's ``python -m ipykernel_launcher``), declared by a
kernelspec in a temporary folder handed to ``jupyter_client`` directly: nothing is registered in
the user's home. Parameters are injected as papermill does: one cell after the cell tagged
``parameters``.
"""

import ast
import importlib
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import pynq_python
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from test_user_errors import _set_fields

from host.manifest import Manifest
from overlay.package import EXPECTED_ROLE

REPO = Path(__file__).parents[1]
NOTEBOOKS = sorted((REPO / "host" / "notebooks").glob("*.ipynb"))
KERNEL = "compressed-lstm-fpga"


def kernel_manager(folder: Path, env: dict, python=sys.executable) -> KernelManager:
    """A kernel of ``python`` (this interpreter by default), the repository on its path (and ``env``
    in its environment), from a kernelspec in ``folder``."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    env = {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", **env}
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": KERNEL, "language": "python", "env": env})
    )
    specs = KernelSpecManager(kernel_dirs=[str(folder / "kernels")])
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def run_notebook(name: str, parameters: dict, folder: Path, setup: str = "", python=sys.executable, **env) -> str:
    """Execute ``host/notebooks/<name>`` in ``folder`` with ``parameters`` (then the code ``setup``),
    on a kernel of ``python`` with ``env`` in its environment; returns its printed text (a failing
    cell raises ``nbclient.exceptions.CellExecutionError``)."""
    notebook = nbformat.read(REPO / "host" / "notebooks" / name, as_version=4)
    index = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    injected = "\n".join([*(f"{key} = {value!r}" for key, value in parameters.items()), setup])
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(injected, metadata={"tags": ["injected-parameters"]}))
    client = NotebookClient(
        notebook, km=kernel_manager(folder, env, python), timeout=600, resources={"metadata": {"path": str(folder)}}
    )
    try:
        client.execute()
    finally:
        nbformat.write(notebook, folder / name)  # executed, outputs and all: open it after a failure
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.output_type == "stream"
    )


def test_committed_notebooks_are_clean_and_parameterised():
    """No outputs or execution counts in git; the first code cell is the one tagged ``parameters``."""
    assert [path.name for path in NOTEBOOKS] == [
        "01_run_on_board.ipynb",
        "02_csim_vs_keras.ipynb",
        "03_build_and_estimate.ipynb",
    ]
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert all(cell.outputs == [] and cell.execution_count is None for cell in code), path.name
        assert code[0].metadata.get("tags") == ["parameters"], path.name


def imported_names(source: str) -> list:
    """``(module, name or None)`` of every import statement in ``source``."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names += [(node.module, alias.name) for alias in node.names]
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_notebook_compiles_and_imports_what_exists(path):
    """Every code cell is valid Python and every name it imports exists, branches the executed
    runs skip included (``lstm_overlay``: the board package's ``overlay.board_package``)."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        compile(cell.source, f"{path.name}: {cell.source[:40]!r}", "exec")
        for module, name in imported_names(cell.source):
            found = importlib.import_module("overlay.board_package" if module == "lstm_overlay" else module)
            assert name is None or hasattr(found, name) or importlib.util.find_spec(f"{module}.{name}"), (module, name)


def test_board_notebook_in_emulation(overlays, tmp_path):
    """Notebook 01 on the frame-by-frame overlay, emulated: the expected outputs, then a synthetic
    clip and a video file."""
    overlay = tmp_path / "overlay"
    shutil.copytree(overlays["frames"]["overlay"], overlay)
    _set_fields(overlay, dataset={"height": 4, "width": 6, "channels": 1, "frames": 5, "class_names": ["a", "b", "c"]})
    text = run_notebook("01_run_on_board.ipynb", {"OVERLAY": str(overlay), "BACKEND": "emulated", "CLIPS": 1}, tmp_path)
    assert "running on the emulated backend" in text and "cost estimate for pynq-z2" in text
    assert "outputs are EQUAL to the expected outputs (exact equality of 24 values)" in text
    assert "clip 0 (synthetic, 5 frames): class" in text and "clip 1 (synthetic.avi, 5 frames): class" in text


MOCK_ZYNQ = """
import sys
from pathlib import Path
sys.path.insert(0, {mock!r})
import pynq
from check_pynq_backend import zynq_device
from mock_board import board_copy
board = board_copy(Path({overlay!r}), Path({folder!r}))
device = zynq_device(board)  # the active pynq device from now on
ip = pynq.Overlay(str(board / "accelerator.bit"), download=False).ip_dict  # where the .hwh puts the DMA
device.dma_base = next(entry["phys_addr"] for entry in ip.values() if "axi_dma" in entry["type"])
"""


def test_board_notebook_opens_make_demos_overlay_by_default(overlays, tmp_path):
    """Off the board (no lstm_overlay installed), ``OVERLAY = None`` opens ``build/overlay`` under the
    project's root, where ``make demo`` writes it; without one there, the notebook says what to set."""
    project = tmp_path / "project"
    shutil.copytree(overlays["frames"]["overlay"], project / "build" / "overlay")
    dataset = {"height": 4, "width": 6, "channels": 1, "frames": 5, "class_names": ["a", "b", "c"]}
    _set_fields(project / "build" / "overlay", dataset=dataset)
    parameters = {"PROJECT": str(project), "BACKEND": "emulated", "CLIPS": 1}
    text = run_notebook("01_run_on_board.ipynb", parameters, tmp_path)
    assert f"{project / 'build' / 'overlay'}: built for pynq-z2" in text and "outputs are EQUAL" in text
    with pytest.raises(CellExecutionError, match="set OVERLAY"):
        run_notebook("01_run_on_board.ipynb", {"PROJECT": str(tmp_path / "empty"), "BACKEND": "emulated"}, tmp_path)


def test_board_notebook_in_the_pynq_environment_on_a_mock_zynq(overlays, tmp_path):
    """Notebook 01 on pynq 3.1.2 (``.venv-pynq``, no TensorFlow), ``BACKEND = "pynq"``: the real
    ``pynq.Overlay`` / DMA driver on the mock Zynq of ``tests/pynq_mock`` (activated by the cell
    after the parameters), whose DMA runs the emulator."""
    overlay = tmp_path / "built"
    shutil.copytree(overlays["frames"]["overlay"], overlay)
    _set_fields(overlay, dataset={"height": 4, "width": 6, "channels": 1, "frames": 5, "class_names": ["a", "b", "c"]})
    board = tmp_path / "board"
    setup = MOCK_ZYNQ.format(mock=str(REPO / "tests" / "pynq_mock"), overlay=str(overlay), folder=str(board))
    parameters = {"OVERLAY": str(board / "overlay"), "BACKEND": "pynq", "CLIPS": 1}
    text = run_notebook("01_run_on_board.ipynb", parameters, tmp_path, setup, pynq_python())
    assert "running on the pynq backend" in text
    assert "the pynq outputs are EQUAL to the expected outputs (exact equality of 24 values)" in text
    assert "clip 1 (synthetic.avi, 5 frames): class" in text


def test_board_notebook_fails_on_outputs_that_are_not_the_expected_ones(overlays, tmp_path):
    overlay = tmp_path / "overlay"
    shutil.copytree(overlays["clip"]["overlay"], overlay)
    manifest = Manifest.load(overlay)
    expected = dict(np.load(manifest.verified_path(EXPECTED_ROLE, overlay)))
    expected["outputs"][1, 0, 2] += manifest.output_type.lsb  # one LSB off, the manifest rehashed
    np.savez(overlay / "expected_outputs.npz", **expected)
    manifest.add_file(EXPECTED_ROLE, overlay, overlay / "expected_outputs.npz")
    manifest.save(overlay)
    with pytest.raises(CellExecutionError, match="does not reproduce the expected outputs"):
        run_notebook("01_run_on_board.ipynb", {"OVERLAY": str(overlay), "BACKEND": "emulated"}, tmp_path)


def test_csim_against_keras_notebook_on_a_saved_model(overlays, tmp_path):
    """Notebook 02 without training (``TRAIN = False``): the overlay tests' TT-LSTM classifier, as
    ``models.train`` would have left it in ``OUT``."""
    out = tmp_path / "out"
    out.mkdir()
    shutil.copyfile(overlays["clip"]["root"] / "model.h5", out / "tt_lstm.h5")
    dataset = {"kind": "synthetic", "height": 4, "width": 6, "channels": 1, "frames": 6, "classes": 3}
    (out / "train_report.json").write_text(json.dumps({"dataset": dataset}))
    parameters = {"FAMILIES": ["tt_lstm"], "OUT": str(out), "TRAIN": False}
    # TensorFlow's own log level, as in a user's Jupyter: its start-up lines are not in the outputs
    text = run_notebook("02_csim_vs_keras.ipynb", parameters, tmp_path, TF_CPP_MIN_LOG_LEVEL="0")
    assert re.search(r"tt_lstm: C-sim (EQUAL|within 1 LSB) to Keras on 48 logits", text), text
    assert not re.search(r"cuDNN|oneDNN|cuda drivers|TensorRT|cpu_feature_guard|UserWarning", text), text


@pytest.mark.slow
def test_csim_against_keras_notebook_trains_every_family(tmp_path):
    """Notebook 02 as a user runs it: a tiny model of every registered family, trained here."""
    from models.families import project_families

    text = run_notebook("02_csim_vs_keras.ipynb", {"OUT": str(tmp_path / "out")}, tmp_path)
    for family in project_families():
        assert re.search(rf"{family}: C-sim (EQUAL|within 1 LSB) to Keras on 64 logits", text), text


def test_build_and_estimate_notebook(overlays, tmp_path):
    """Notebook 03 from a saved model: every board's estimate, the overlay folder, the vendor commands.
    Its default (relative) ``OUT`` and ``WORK`` are under the project's root, not the notebook's folder."""
    project, notebook_folder = tmp_path / "project", tmp_path / "notebooks"
    notebook_folder.mkdir()
    parameters = {"MODEL": str(overlays["clip"]["root"] / "model.h5"), "PROJECT": str(project)}
    # no vendor tool on the kernel's PATH: the build stops before the bitstream
    text = run_notebook("03_build_and_estimate.ipynb", parameters, notebook_folder, PATH="/usr/bin:/bin")
    for board in ("pynq-z2", "zcu102", "alveo-u250"):
        assert f"estimate for {board}" in text
    assert "no bitstream here" in text and 'vivado_hls -f build_prj.tcl "reset=1' in text
    overlay = project / "build" / "notebooks" / "overlay"
    assert (overlay / "pyproject.toml").is_file() and Manifest.load(overlay).board == "pynq-z2"
    assert not (notebook_folder / "build").exists()
