"""The overlay manifest: what a bitstream computes and how to talk to it (NumPy only).

Written by ``python -m overlay build`` next to the bitstream, read by ``host.Accelerator``.
Every file it names carries a SHA-256, so a manifest that does not belong to the bitstream beside
it is refused instead of silently decoding garbage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fixedpoint import FixedType
from host.protocol import BEAT_BITS, beats_for, values_per_beat

MANIFEST_NAME = "manifest.json"
WEIGHTS_ROLE = "weights:"  # one file role per weights file the emulator reads, "weights:<name>"
FORMAT_VERSION = 2


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Manifest:
    """One overlay.

    ``input_shape`` is (frames per call, features); ``output_shape`` the model output per call.
    Transfers follow ``host.protocol``: 64-bit beats, ``in_values_per_beat`` input values and
    ``out_values_per_beat`` output values packed per beat, several calls per transfer.
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
    beat_bits: int = BEAT_BITS
    in_values_per_beat: int = 0  # filled from the types (the count the top and host pack with)
    out_values_per_beat: int = 0
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        self.in_values_per_beat = values_per_beat(self.input_type)
        self.out_values_per_beat = values_per_beat(self.output_type)

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
        return beats_for(self.frames_per_call * self.n_features, self.input_type)

    @property
    def out_beats_per_call(self) -> int:
        return beats_for(self.n_outputs, self.output_type)

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
        data = asdict(self)
        data["input_type"] = self.input_type.to_dict()
        data["output_type"] = self.output_type.to_dict()
        path = Path(directory) / MANIFEST_NAME
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory) -> Manifest:
        path = Path(directory) / MANIFEST_NAME
        if not path.exists():
            raise FileNotFoundError(f"no {MANIFEST_NAME} in {directory}: build one with 'python -m overlay build'")
        try:
            data = json.loads(path.read_text())
            if data.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format_version {data.get('format_version')} (this host reads {FORMAT_VERSION})")
            data["input_type"] = FixedType.from_dict(data["input_type"])
            data["output_type"] = FixedType.from_dict(data["output_type"])
            manifest = cls(**data)
            packing = (data.get("in_values_per_beat"), data.get("out_values_per_beat"))
            if packing != (manifest.in_values_per_beat, manifest.out_values_per_beat):
                raise ValueError(f"values per beat {packing} do not follow from the types")
            return manifest
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not a valid overlay manifest: {err}") from None
