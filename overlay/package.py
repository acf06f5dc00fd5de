"""The board package of an overlay: what a user copies to the board and installs with pip.

``overlay build --out DIR`` (and ``overlay collect``, once the bitstream exists) writes, beside
the overlay's own files::

    DIR/expected_outputs.npz           seeded inputs and the emulator's outputs for them (in the manifest,
                                       with keras_check: the emulator against Keras on them)
    DIR/pyproject.toml                 pip install DIR: the package below (setuptools, NumPy only)
    DIR/package/lstm_overlay/          overlay.board_package: overlay_dir(), accelerator()
        overlays/<board>/              manifest.json and every file it names, at the same relative
                                       paths: accelerator.bit + accelerator.hwh (one base name, as
                                       pynq.Overlay needs) or accelerator.xclbin once collected, the
                                       emulator and its weights, expected_outputs.npz
        notebooks/                     BOARD_NOTEBOOKS, registered as the ``pynq.notebooks`` entry point
    DIR/package/host, fixedpoint, models   the host code: NumPy (pynq on the board; OpenCV and
                                       models.datasets, the training features, for video)

This follows PYNQ's packages (PYNQ-HelloWorld, finn-examples): bitstreams in per-board folders
chosen at run time from the board PYNQ reports, notebooks delivered by ``pynq get-notebooks``.
On the board (PYNQ-HelloWorld's recipe): ``python3 -m pip install DIR --no-build-isolation``, then
``pynq get-notebooks lstm_overlay -p $PYNQ_JUPYTER_NOTEBOOKS``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from host.manifest import MANIFEST_NAME, Manifest

PACKAGE = "lstm_overlay"
DISTRIBUTION = "lstm-overlay"
PACKAGE_DIR = "package"
PYPROJECT = "pyproject.toml"
EXPECTED_OUTPUTS = "expected_outputs.npz"
EXPECTED_ROLE = "expected_outputs"
NOTEBOOKS = Path(__file__).parents[1] / "host" / "notebooks"
BOARD_NOTEBOOKS = ("01_run_on_board.ipynb",)
# what the package writer adds to an overlay folder (a rebuild removes them; pip's in-tree build leaves build/)
PACKAGE_ARTEFACTS = (EXPECTED_OUTPUTS, PYPROJECT, PACKAGE_DIR, "build")
EXPECTED_CLIPS, EXPECTED_CALLS_STATEFUL, EXPECTED_SEED = 2, 4, 0

PYPROJECT_TEMPLATE = """\
# The board package of this overlay, written by 'python -m overlay build' (overlay/package.py).
# On the board: python3 -m pip install <this folder> --no-build-isolation
# then: pynq get-notebooks {package} -p $PYNQ_JUPYTER_NOTEBOOKS
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{distribution}"
version = "1.0.0+{model}"
description = "{description}"
requires-python = ">=3.10"
dependencies = ["numpy"]

[project.entry-points."pynq.notebooks"]
{package} = "{package}.notebooks"

[tool.setuptools]
package-dir = {{"" = "{package_dir}"}}
packages = ["{package}", "{package}.notebooks", "host", "fixedpoint", "models"]
include-package-data = false

[tool.setuptools.package-data]
{package} = [
{data}
]
"{package}.notebooks" = ["*.ipynb"]
"""

MODELS_INIT = '''"""Only ``models.datasets`` of the training package: the features ``host.sources`` makes."""\n'''
NOTEBOOKS_INIT = '''"""The notebooks `pynq get-notebooks {package}` delivers (entry point pynq.notebooks)."""\n'''


def write_expected_outputs(out_dir: Path, manifest: Manifest, model) -> Path:
    """``expected_outputs.npz``: ``inputs`` float64 (clips, frames, features), seeded uniform in
    [0, 1) (frames: one call, or 4 calls of a frame-by-frame overlay), and ``outputs`` (clips,
    calls, *output_shape), what the emulator (the bitstream's C++) returns for them; the board
    must return the same bit for bit. Added to the manifest (role ``expected_outputs``), with the
    emulator's outputs against those of ``model`` (the Keras model the overlay implements) as
    ``keras_check``; saved."""
    import host

    frames = manifest.frames_per_call * (EXPECTED_CALLS_STATEFUL if manifest.stateful else 1)
    inputs = np.random.default_rng(EXPECTED_SEED).uniform(0, 1, (EXPECTED_CLIPS, frames, manifest.n_features))
    with host.open(out_dir, backend="emulated") as accelerator:
        outputs = np.stack([accelerator.run_clip(clip) for clip in inputs])
    path = out_dir / EXPECTED_OUTPUTS
    np.savez(path, inputs=inputs, outputs=outputs)
    manifest.keras_check = keras_check(outputs, keras_outputs(model, inputs, manifest), manifest.output_type.lsb)
    manifest.add_file(EXPECTED_ROLE, out_dir, path)
    manifest.save(out_dir)
    return path


def keras_outputs(model, inputs, manifest: Manifest) -> np.ndarray:
    """What the Keras ``model`` returns for ``inputs`` driven as the overlay is (``run_clip``): each
    clip from a zero state (a stateful model's ``reset_states``), one call per ``frames_per_call``
    frames; (clips, calls, *output_shape) float64."""
    outputs = []
    for clip in inputs:
        if manifest.stateful:
            model.reset_states()
        calls = clip.reshape(-1, 1, manifest.frames_per_call, manifest.n_features).astype(np.float32)
        outputs.append([np.asarray(model(call, training=False))[0] for call in calls])
    return np.asarray(outputs, dtype=np.float64)


def keras_check(emulated: np.ndarray, keras: np.ndarray, lsb: float) -> dict:
    """The emulator's outputs against Keras': the largest difference, how many outputs differ by more
    than ``lsb`` (one LSB of the output type; a softmax output too: its probabilities) and whether
    none does (``within_1_lsb``)."""
    difference = np.abs(emulated - keras)
    beyond = int(np.count_nonzero(~(difference <= lsb)))  # a NaN counts as beyond
    return {
        "max_abs_diff": float(np.max(difference)),
        "lsb": lsb,
        "differing_outputs": beyond,
        "outputs": int(difference.size),
        "within_1_lsb": beyond == 0,
    }


def copy_overlay(out_dir: Path, manifest: Manifest, target: Path) -> list:
    """The manifest and every file it names (hash checked) into ``target`` at the same relative
    paths; returns those paths."""
    names = [MANIFEST_NAME]
    for role, entry in sorted(manifest.files.items()):
        source = manifest.verified_path(role, out_dir)
        (target / entry["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target / entry["path"])
        names.append(entry["path"])
    shutil.copyfile(out_dir / MANIFEST_NAME, target / MANIFEST_NAME)
    return names


def copy_host_code(root: Path) -> None:
    """``host``, ``fixedpoint`` (its NumPy part) and ``models.datasets`` into ``root``."""
    repo = Path(__file__).parents[1]
    (root / "host").mkdir(parents=True)
    for module in sorted((repo / "host").glob("*.py")):
        shutil.copyfile(module, root / "host" / module.name)
    (root / "fixedpoint").mkdir()
    shutil.copyfile(repo / "fixedpoint" / "__init__.py", root / "fixedpoint" / "__init__.py")
    (root / "models").mkdir()
    shutil.copyfile(repo / "models" / "datasets.py", root / "models" / "datasets.py")
    (root / "models" / "__init__.py").write_text(MODELS_INIT)


def write_package(out_dir, manifest: Manifest) -> Path:
    """(Re)write ``DIR/package`` and ``DIR/pyproject.toml`` from the overlay in ``out_dir`` as its
    manifest stands (call again after ``collect`` adds the bitstream). Returns the package folder."""
    out_dir = Path(out_dir)
    root = out_dir / PACKAGE_DIR
    if root.exists():
        shutil.rmtree(root)
    package = root / PACKAGE
    board_dir = package / "overlays" / manifest.board
    data = [f"overlays/{manifest.board}/{name}" for name in copy_overlay(out_dir, manifest, board_dir)]
    shutil.copyfile(Path(__file__).with_name("board_package.py"), package / "__init__.py")
    (package / "notebooks").mkdir()
    (package / "notebooks" / "__init__.py").write_text(NOTEBOOKS_INIT.format(package=PACKAGE))
    for notebook in BOARD_NOTEBOOKS:
        shutil.copyfile(NOTEBOOKS / notebook, package / "notebooks" / notebook)
    copy_host_code(root)
    layers = ", ".join(layer["class"] for layer in manifest.layers) or "LSTM"
    (out_dir / PYPROJECT).write_text(
        PYPROJECT_TEMPLATE.format(
            package=PACKAGE,
            distribution=DISTRIBUTION,
            model=manifest.model_sha256[:12],
            description=f"{layers} overlay for {manifest.board}: bitstream, host driver, notebooks",
            package_dir=PACKAGE_DIR,
            data="\n".join(f'    "{path}",' for path in data),
        )
    )
    return package
