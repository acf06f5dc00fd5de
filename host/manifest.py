"""The overlay manifest: what a bitstream computes and how to talk to it (NumPy only).

Written by ``python -m overlay build`` next to the bitstream, read by ``host.Accelerator``.
Every file it names carries a SHA-256, so a manifest that does not belong to the bitstream beside
it is refused instead of silently decoding garbage; and the manifest's own fields carry one
(``content_sha256``, written by ``Manifest.save``), so an edited manifest (a type, ``stateful``)
is refused instead of driving the overlay with the wrong numbers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path

from fixedpoint import FixedType
from host.protocol import BEAT_BITS, Packing

MANIFEST_NAME = "manifest.json"
# our accelerator top in the block design; hls4ml 1.3.0's VivadoAccelerator design.tcl:
# "create_bd_cell -vlnv xilinx.com:hls:${project_name}_axi:1.0"
ACCELERATOR_VLNV = "xilinx.com:hls:myproject_axi:1.0"
WEIGHTS_ROLE = "weights:"  # one file role per weights file the emulator reads, "weights:<name>"
FORMAT_VERSION = 4  # 4: values travel in the model's packs (in_pack_values, out_pack_values)
CONTENT_HASH = "content_sha256"  # the key of the hash of every other field
UNHASHED = (CONTENT_HASH,)


def sha256_of(path) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Manifest:
    """One overlay.

    ``input_shape`` is (frames per call, features); ``output_shape`` the model output per call.
    Transfers follow ``host.protocol``: 64-bit beats, values in the model's stream packs of
    ``in_pack_values`` input and ``out_pack_values`` output values (``host.protocol.Packing``;
    0: a full beat per pack), ``in_values_per_beat`` / ``out_values_per_beat`` of them per beat,
    several calls per transfer.
    ``files`` maps a role (``bitstream``, ``hwh``, ``xclbin``, ``emulator``, and
    ``weights:<name>`` for every weight file the emulator reads) to
    ``{"path": relative path, "sha256": ...}``.
    """

    board: str
    io_type: str
    input_shape: list
    output_shape: list
    input_type: FixedType
    output_type: FixedType
    stateful: bool
    model_sha256: str
    layers: list = field(default_factory=list)
    files: dict = field(default_factory=dict)
    tools: dict = field(default_factory=dict)
    dataset: dict = field(default_factory=dict)  # how the model's features were made (models.train)
    estimate: dict = field(default_factory=dict)  # the build's hardware estimate (overlay.estimate; not measured)
    measured: dict = field(default_factory=dict)  # the vendor tools' reports, when they ran (overlay.reports)
    keras_check: dict = field(default_factory=dict)  # the emulator against Keras on the expected outputs' inputs
    beat_bits: int = BEAT_BITS
    in_pack_values: int = 0  # the model's input stream element (0 when made: a full beat)
    out_pack_values: int = 0
    in_values_per_beat: int = 0  # filled from the types and packs (the count the top and host pack with)
    out_values_per_beat: int = 0
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        self.in_pack_values = self.in_packing.pack
        self.out_pack_values = self.out_packing.pack
        self.in_values_per_beat = self.in_packing.per_beat
        self.out_values_per_beat = self.out_packing.per_beat

    @property
    def in_packing(self) -> Packing:
        return Packing.of(self.input_type, self.in_pack_values or None)

    @property
    def out_packing(self) -> Packing:
        return Packing.of(self.output_type, self.out_pack_values or None)

    @property
    def frames_per_call(self) -> int:
        return int(self.input_shape[0])

    @property
    def n_features(self) -> int:
        return int(self.input_shape[1])

    @property
    def n_outputs(self) -> int:
        """Output values per call."""
        size = 1
        for dim in self.output_shape:
            size *= int(dim)
        return size

    @property
    def in_beats_per_call(self) -> int:
        return self.in_packing.beats(self.frames_per_call * self.n_features)

    @property
    def out_beats_per_call(self) -> int:
        return self.out_packing.beats(self.n_outputs)

    def beats_in(self, calls: int) -> int:
        """Beats of an input transfer of ``calls`` calls (the control beat included)."""
        return 1 + calls * self.in_beats_per_call

    def beats_out(self, calls: int) -> int:
        """Beats of the output transfer of ``calls`` calls (the status beat included)."""
        return calls * self.out_beats_per_call + 1

    def add_file(self, role: str, directory, path) -> None:
        path = Path(path)
        self.files[role] = {"path": str(path.relative_to(directory)), "sha256": sha256_of(path)}

    def verified_path(self, role: str, directory) -> Path:
        """The file of ``role``, after checking it is the one this manifest was written for."""
        if role not in self.files:
            raise FileNotFoundError(f"the manifest in {directory} lists no {role} (it has: {sorted(self.files)})")
        entry = self.files[role]
        path = Path(directory) / entry["path"]
        if not path.exists():
            raise FileNotFoundError(f"{role} file {path} named by the manifest does not exist")
        actual = sha256_of(path)
        if actual != entry["sha256"]:
            raise ValueError(
                f"{path} does not match {Path(directory) / MANIFEST_NAME}: sha256 {actual[:12]}... "
                f"!= {entry['sha256'][:12]}... (rebuild the overlay or copy the matching manifest)"
            )
        return path

    def verified_weights_dir(self, directory) -> Path:
        """The folder of the emulator's weight files, after checking every one against its hash."""
        roles = [role for role in self.files if role.startswith(WEIGHTS_ROLE)]
        if not roles:
            raise FileNotFoundError(f"the manifest in {directory} lists no weight files")
        folders = {self.verified_path(role, directory).parent for role in roles}
        if len(folders) != 1:
            raise ValueError(f"the manifest in {directory} names weight files in several folders")
        return folders.pop()

    def save(self, directory) -> Path:
        """Write ``manifest.json`` in ``directory`` with the hash of its fields as they are now."""
        data = asdict(self)
        data["input_type"] = self.input_type.to_dict()
        data["output_type"] = self.output_type.to_dict()
        data[CONTENT_HASH] = content_hash(data)
        path = Path(directory) / MANIFEST_NAME
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory) -> Manifest:
        """Read ``manifest.json`` from ``directory``; a malformed or edited one raises ``ValueError``."""
        path = Path(directory) / MANIFEST_NAME
        if not path.exists():
            raise FileNotFoundError(f"no {MANIFEST_NAME} in {directory}: build one with 'python -m overlay build'")
        try:
            data = json.loads(path.read_text())
            check_fields(data)
            fields = {key: value for key, value in data.items() if key != CONTENT_HASH}
            fields["input_type"] = FixedType.from_dict(data["input_type"])
            fields["output_type"] = FixedType.from_dict(data["output_type"])
            manifest = cls(**fields)
            packing = (data.get("in_values_per_beat"), data.get("out_values_per_beat"))
            if packing != (manifest.in_values_per_beat, manifest.out_values_per_beat):
                raise ValueError(f"values per beat {packing} do not follow from the types and packs")
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path} is not a valid overlay manifest: {err}") from None
        check_content_hash(data, path)
        return manifest


REQUIRED_FIELDS = [f.name for f in dataclass_fields(Manifest) if f.default is MISSING and f.default_factory is MISSING]


def content_hash(data: dict) -> str:
    """The SHA-256 of a manifest's fields (all but ``UNHASHED``) in canonical JSON."""
    covered = {key: value for key, value in data.items() if key not in UNHASHED}
    return hashlib.sha256(json.dumps(covered, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_content_hash(data: dict, path: Path) -> None:
    """Refuse a manifest whose fields are not the ones ``Manifest.save`` hashed."""
    if CONTENT_HASH not in data:
        raise ValueError(f"{path} has no {CONTENT_HASH}: rebuild the overlay with 'python -m overlay build'")
    if data[CONTENT_HASH] != content_hash(data):
        raise ValueError(
            f"{path} was edited after the build (its fields do not match its {CONTENT_HASH}): rebuild the overlay "
            "with 'python -m overlay build' or restore its manifest"
        )


def _instance_of(kind):
    return lambda value: isinstance(value, kind)


def _is_shape(value, rank: int | None = None) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and (rank is None or len(value) == rank)
        and all(type(dim) is int and dim > 0 for dim in value)
    )


def _is_fixed_type(value) -> bool:
    return (
        isinstance(value, dict)
        and all(type(value.get(key)) is int for key in ("width", "integer"))
        and all(isinstance(value.get(key, False), bool) for key in ("signed", "symmetric"))
    )


def _is_file_table(value) -> bool:
    return isinstance(value, dict) and all(
        isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("sha256"), str)
        for entry in value.values()
    )


# field -> (check, what it must be); the others are checked by the dataclass and FixedType
FIELD_CHECKS = {
    "board": (_instance_of(str), "a string"),
    "io_type": (lambda value: value in ("io_parallel", "io_stream"), "'io_parallel' or 'io_stream'"),
    "input_shape": (lambda value: _is_shape(value, 2), "[frames per call, features] (positive integers)"),
    "output_shape": (_is_shape, "a list of positive integers"),
    "input_type": (_is_fixed_type, "a fixed-point type {width, integer, signed, symmetric}"),
    "output_type": (_is_fixed_type, "a fixed-point type {width, integer, signed, symmetric}"),
    "stateful": (_instance_of(bool), "true or false"),
    "model_sha256": (_instance_of(str), "a string"),
    "layers": (_instance_of(list), "a list"),
    "files": (_is_file_table, "{role: {path, sha256}}"),
    "tools": (_instance_of(dict), "an object"),
    "dataset": (_instance_of(dict), "an object"),
    "estimate": (_instance_of(dict), "an object"),
    "measured": (_instance_of(dict), "an object"),
    "keras_check": (_instance_of(dict), "an object"),
    "beat_bits": (lambda value: value == BEAT_BITS, f"{BEAT_BITS} (the host protocol's beat)"),
    "in_pack_values": (lambda value: type(value) is int and value >= 0, "a count of values (0: a full beat)"),
    "out_pack_values": (lambda value: type(value) is int and value >= 0, "a count of values (0: a full beat)"),
}


def check_fields(data) -> None:
    """Refuse (``ValueError``) a manifest that is not an object of this format with every field
    of ``Manifest`` well-formed."""
    if not isinstance(data, dict):
        raise ValueError(f"the top level must be a JSON object, not a {type(data).__name__}")
    if data.get("format_version") != FORMAT_VERSION:
        version = data.get("format_version")
        raise ValueError(f"format_version {version} (this host reads {FORMAT_VERSION}: rebuild the overlay)")
    missing = [name for name in REQUIRED_FIELDS if name not in data]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    for name, (check, expected) in FIELD_CHECKS.items():
        if name in data and not check(data[name]):
            raise ValueError(f"'{name}' must be {expected}, got {data[name]!r}")
