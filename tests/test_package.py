"""The board package ``overlay build`` writes (``overlay.package``): contents, pip install, board choice."""

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
from conftest import STAND_IN_HWH, pynq_python

from host.manifest import Manifest
from overlay import board_package
from overlay.build import collect, prepare_output_folder
from overlay.package import EXPECTED_ROLE, PACKAGE


def test_expected_outputs_are_the_models_outputs(overlays):
    """What the board must reproduce: the emulator's outputs, within 1 LSB of the Keras model
    (the flow's contract) and equal to it where the arithmetic is exact (in practice: everywhere)."""
    built = overlays["clip"]
    manifest = Manifest.load(built["overlay"])
    expected = np.load(manifest.verified_path(EXPECTED_ROLE, built["overlay"]))
    keras = built["model"].predict(expected["inputs"], verbose=0)
    assert expected["outputs"].shape == (2, 1, 3)
    assert np.max(np.abs(expected["outputs"][:, 0] - keras)) <= manifest.output_type.lsb
    frames = Manifest.load(overlays["frames"]["overlay"])
    stateful = np.load(frames.verified_path(EXPECTED_ROLE, overlays["frames"]["overlay"]))
    assert stateful["inputs"].shape == (2, 4, 24) and stateful["outputs"].shape == (2, 4, 3)


@pytest.fixture(scope="module")
def installed(overlays, tmp_path_factory):
    """The whole-clip overlay after a (faked) vendor run and ``collect``, pip-installed into a folder."""
    root = tmp_path_factory.mktemp("package")
    overlay = root / "overlay"
    shutil.copytree(overlays["clip"]["overlay"], overlay)
    (overlay / "hls/impl").mkdir()
    (overlay / "hls/impl/design_1_wrapper.bit").write_bytes(b"stand-in bitstream")
    (overlay / "hls/impl/design_1.hwh").write_text(STAND_IN_HWH)
    collect(overlay, Manifest.load(overlay))
    target = root / "site"
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    result = subprocess.run([*command, "--target", str(target), str(overlay)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return overlay, target


def test_the_package_holds_the_bitstream_pair_the_notebooks_and_the_entry_point(installed):
    overlay, target = installed
    board = target / PACKAGE / "overlays" / "pynq-z2"
    for name in ("accelerator.bit", "accelerator.hwh", "manifest.json", "expected_outputs.npz"):
        assert (board / name).read_bytes() == (overlay / name).read_bytes(), name
    manifest = Manifest.load(board)
    assert [manifest.files[role]["path"] for role in ("bitstream", "hwh")] == ["accelerator.bit", "accelerator.hwh"]
    assert manifest.verified_weights_dir(board).is_dir() and manifest.verified_path("emulator", board).is_file()
    assert (target / PACKAGE / "notebooks" / "01_run_on_board.ipynb").is_file()
    [distribution] = importlib.metadata.distributions(path=[str(target)])
    [entry] = distribution.entry_points.select(group="pynq.notebooks")  # what pynq get-notebooks reads
    assert (entry.name, entry.value) == (PACKAGE, f"{PACKAGE}.notebooks")


GET_NOTEBOOKS = """
import sys
import pynq
from pynq._cli.get_notebooks import main

class Board:  # the device PYNQ's own probe would find on the board
    name = "Pynq-Z2"

pynq.Device._devices = [Board()]
pynq.Device.active_device = Board()
sys.argv = ["pynq-get-notebooks", *sys.argv[1:]]
main()
"""


def test_pynq_get_notebooks_delivers_the_board_notebook(installed, tmp_path):
    """The README's board command, ``pynq get-notebooks lstm_overlay -p DIR``, run by pynq 3.1.2's own
    CLI (``.venv-pynq``) on the installed package, with a stand-in for the board's active device."""
    _, target = installed
    env = {**{key: value for key, value in os.environ.items() if key != "PYTHONPATH"}, "PYTHONPATH": str(target)}
    command = [str(pynq_python()), "-c", GET_NOTEBOOKS, PACKAGE, "-p", str(tmp_path / "jupyter")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    delivered = tmp_path / "jupyter" / PACKAGE / "01_run_on_board.ipynb"
    assert delivered.read_bytes() == (target / PACKAGE / "notebooks" / "01_run_on_board.ipynb").read_bytes()


def test_the_installed_host_runs_with_numpy_alone_and_reproduces_the_expected_outputs(installed, tmp_path):
    _, target = installed
    check = """
import json, sys
import numpy as np
import host.sources, host.stream, lstm_overlay
with lstm_overlay.accelerator("emulated") as accelerator:
    expected = np.load(accelerator.manifest.verified_path("expected_outputs", accelerator.directory))
    outputs = np.stack([accelerator.run_clip(clip) for clip in expected["inputs"]])
heavy = [name for name in ("tensorflow", "keras", "qkeras", "hls4ml", "cv2", "overlay") if name in sys.modules]
print(json.dumps({"host": host.__file__, "equal": bool(np.array_equal(outputs, expected["outputs"])), "heavy": heavy}))
"""
    env = {**{key: value for key, value in os.environ.items() if key != "PYTHONPATH"}, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {"host": str(target / "host" / "__init__.py"), "equal": True, "heavy": []}


@pytest.fixture
def two_boards(tmp_path, monkeypatch):
    for board in ("pynq-z2", "zcu102", "alveo-u250"):
        (tmp_path / board).mkdir()
        (tmp_path / board / "manifest.json").write_text("{}")
    monkeypatch.setattr(board_package, "OVERLAYS", tmp_path)
    monkeypatch.delenv("BOARD", raising=False)
    return tmp_path


def fake_pynq(monkeypatch, device_name):
    """A ``pynq`` module whose active device has ``device_name`` (None: no device, as pynq off a board)."""

    class Device:
        @property
        def name(self):
            if device_name is None:
                raise RuntimeError("No Devices Found")
            return device_name

    pynq = types.SimpleNamespace(Device=types.SimpleNamespace(active_device=Device()))
    monkeypatch.setitem(sys.modules, "pynq", pynq)


@pytest.mark.parametrize(
    "environment, device, chosen",
    [
        ("Pynq-Z2", "ZCU102", "pynq-z2"),  # $BOARD (PYNQ images) first
        (None, "ZCU102", "zcu102"),  # then pynq.Device.active_device.name
        (None, "xilinx_u250_gen3x16_xdma_shell_4_1", "alveo-u250"),  # an Alveo shell names the card
    ],
)
def test_the_overlay_folder_is_chosen_from_the_board_pynq_reports(two_boards, monkeypatch, environment, device, chosen):
    if environment:
        monkeypatch.setenv("BOARD", environment)
    fake_pynq(monkeypatch, device)
    assert board_package.overlay_dir() == two_boards / chosen
    assert board_package.overlay_dir("ZCU102") == two_boards / "zcu102"


def test_a_board_without_an_overlay_or_no_board_is_refused_naming_them(two_boards, monkeypatch):
    fake_pynq(monkeypatch, "Ultra96")
    held = r"overlays for \['alveo-u250', 'pynq-z2', 'zcu102'\], not for board 'Ultra96'"
    with pytest.raises(ValueError, match=held):
        board_package.overlay_dir()
    fake_pynq(monkeypatch, None)
    with pytest.raises(ValueError, match="no board reported"):
        board_package.overlay_dir()
    shutil.rmtree(two_boards / "zcu102")
    shutil.rmtree(two_boards / "alveo-u250")
    assert board_package.overlay_dir() == two_boards / "pynq-z2"  # off a board, the only overlay


def test_a_rebuild_accepts_what_pip_left_in_the_overlay_folder(installed, tmp_path):
    """``pip install DIR`` builds in the folder (``build/``); a rebuild into it removes that too."""
    copy = tmp_path / "overlay"
    shutil.copytree(installed[0], copy)
    assert (copy / "build").is_dir() and (copy / "package").is_dir() and (copy / "pyproject.toml").is_file()
    prepare_output_folder(copy, tmp_path / "model.h5")
    assert list(copy.iterdir()) == []
