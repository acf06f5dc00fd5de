"""The last pass of hls4ml's write flow: the same model written twice gives byte-identical files.

hls4ml 1.3.0 writes three things that differ from one write to the next (everything else it
writes depends only on the model and the configuration; ``tests/test_determinism.py`` compares
whole trees):

- ``Stamp``, 8 random hex digits (uuid4) naming the C-simulation library
  (``firmware/<project>-<stamp>.so``, in ``build_lib.sh`` and ``hls4ml_config.yml``), so that a
  process loading a rewritten project never gets the previous library from ``dlopen``'s cache.
  Here it is the first 8 hex digits of the SHA-256 of everything the library is compiled from
  (``firmware/`` without built libraries, and the bridge): a library name still never stands for
  two different sources, and the same sources give the same name.
- ``hls4ml_config.yml`` holds the absolute output folder (``OutputDir``) and the absolute path of
  its copy of the Keras model: written relative to the project folder instead (``.`` and
  ``keras_model.keras``; hls4ml's ``!keras_model`` loader resolves them from the working folder).
- ``keras_model.keras``, Keras' zip: ``metadata.json`` carries ``date_saved`` (the clock, to the
  second), the weights entry the time of writing, and ``config.json`` a ``shared_object_id`` per
  object that may be shared (the Python ``id()``, a memory address). Rewritten with every entry
  dated 1980-01-01 00:00 (as Keras already dates the other entries), without ``date_saved``
  (Keras 2.15 does not read it), and with the shared object ids numbered 1, 2, ... in order of
  first appearance (the same object keeps one number, which is all Keras reads them for).

The pass also writes the original names of layers renamed by ``hls_project.names`` as a comment
block at the top of ``firmware/<project>.cpp``.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import yaml
from hls4ml.model.optimizer import ModelOptimizerPass

from hls_project.names import NAMES_CONFIG_KEY, cpp_comment

PASS_NAME = "reproducible_project"
STAMP_DIGITS = 8
CONFIG_FILE = "hls4ml_config.yml"
KERAS_FILE = "keras_model.keras"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
LIBRARY_SUFFIXES = (".so", ".o")


def source_stamp(project_dir: Path, project: str) -> str:
    """SHA-256 (first ``STAMP_DIGITS`` hex digits) over the path and bytes of every file the
    C-simulation library is compiled from: ``firmware/`` (built libraries excluded) and the bridge."""
    files = [p for p in (project_dir / "firmware").rglob("*") if p.is_file() and p.suffix not in LIBRARY_SUFFIXES]
    files.append(project_dir / f"{project}_bridge.cpp")
    digest = hashlib.sha256()
    for path in sorted(p for p in files if p.is_file()):
        data = path.read_bytes()
        digest.update(f"{path.relative_to(project_dir).as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:STAMP_DIGITS]


class _KerasModelFile(str):
    """The project's copy of the Keras model, dumped as hls4ml's ``!keras_model`` tag."""


class _ConfigDumper(yaml.Dumper):
    pass


_ConfigDumper.add_representer(_KerasModelFile, lambda dumper, path: dumper.represent_scalar("!keras_model", path))


def write_config(project_dir: Path, config: dict) -> None:
    """``hls4ml_config.yml`` as hls4ml writes it, with the folder and the model file relative to it."""
    relative = {**config, "OutputDir": "."}
    if "KerasModel" in config:
        relative["KerasModel"] = _KerasModelFile(KERAS_FILE)
    (project_dir / CONFIG_FILE).write_text(yaml.dump(relative, Dumper=_ConfigDumper))


def normalize_keras_zip(path: Path) -> None:
    """Rewrite Keras' ``.keras`` zip with fixed entry dates and no ``date_saved`` (same entries, same order)."""
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in entries:
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                metadata.pop("date_saved", None)
                data = json.dumps(metadata).encode()
            elif info.filename == "config.json":
                data = json.dumps(renumber_shared_objects(json.loads(data), {})).encode()
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
            fixed.compress_type, fixed.external_attr = info.compress_type, info.external_attr
            archive.writestr(fixed, data)


def renumber_shared_objects(config, numbers: dict):
    """``config`` with every ``shared_object_id`` replaced by its order of first appearance (``numbers``:
    id -> number, filled as the walk goes: depth first, in the order the keys are written)."""
    if isinstance(config, list):
        return [renumber_shared_objects(item, numbers) for item in config]
    if not isinstance(config, dict):
        return config
    if "shared_object_id" in config:
        numbers.setdefault(config["shared_object_id"], len(numbers) + 1)
    return {
        key: numbers[value] if key == "shared_object_id" else renumber_shared_objects(value, numbers)
        for key, value in config.items()
    }


def write_names_comment(project_dir: Path, project: str, keras_names: dict) -> None:
    """A comment block at the top of ``firmware/<project>.cpp``: each renamed layer's identifier and
    its Keras name (``hls_project.names.cpp_comment``, escaped)."""
    renamed = {identifier: name for identifier, name in keras_names.items() if identifier != name}
    if not renamed:
        return
    lines = ["// Keras layer names that are not C++ identifiers (hls_project.names): identifier <- Keras name"]
    lines += [f"//   {identifier} <- {cpp_comment(name)}" for identifier, name in renamed.items()]
    source = project_dir / "firmware" / f"{project}.cpp"
    source.write_text("\n".join(lines) + "\n" + source.read_text())


class ReproducibleProject(ModelOptimizerPass):
    """After hls4ml's ``write_hls``: the stamp from the sources, relative paths, a dated-by-nothing
    Keras copy, and the original layer names (see the module docstring)."""

    def __init__(self):
        self.name = PASS_NAME

    def transform(self, model):
        project_dir = Path(model.config.get_output_dir())
        project = model.config.get_project_name()
        write_names_comment(project_dir, project, model.config.get_config_value(NAMES_CONFIG_KEY) or {})
        old, new = model.config.get_config_value("Stamp"), source_stamp(project_dir, project)
        build_lib = project_dir / "build_lib.sh"
        if build_lib.exists():
            build_lib.write_text(build_lib.read_text().replace(f"LIB_STAMP={old}", f"LIB_STAMP={new}"))
        model.config.config["Stamp"] = new
        keras_model = model.config.get_config_value("KerasModel")
        if keras_model is not None and not isinstance(keras_model, str) and not (project_dir / KERAS_FILE).exists():
            keras_model.save(project_dir / KERAS_FILE)  # hls4ml saves only Keras 2.15 models, not tf_keras ones
        if (project_dir / CONFIG_FILE).exists():
            write_config(project_dir, model.config.config)
        if (project_dir / KERAS_FILE).exists():
            normalize_keras_zip(project_dir / KERAS_FILE)
        return False  # the graph is unchanged


def add_to_write_flow(backends) -> None:
    """Append the pass to the write flow of each of ``backends`` (hls4ml backend names)."""
    import hls4ml

    for name in backends:
        backend = hls4ml.backends.get_backend(name)
        if f"{name.lower()}:{PASS_NAME}" not in hls4ml.model.optimizer.get_available_passes():
            backend.register_pass(PASS_NAME, ReproducibleProject, flow=f"{name.lower()}:write")
