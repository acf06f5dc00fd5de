"""``host.sources`` and ``python -m host.stream``: every source, and their documented edges.

The features of every source are compared with ``models.datasets.load_video`` (what training
reads) on the same decoded frames, with exact equality.
"""

import re

import cv2
import numpy as np
import pytest
from test_user_errors import _assert_refused, _copy, _set_fields, _stream

from host import sources
from host.manifest import Manifest
from models.datasets import load_video, load_video_folder

SIZE = (4, 6, 1)  # the test overlays take 24 features
DATASET = {"height": 4, "width": 6, "channels": 1, "frames": 3, "class_names": ["a", "b", "c"]}


def write_video(path, frames: int, seed: int, shape=(9, 14)):
    """A lossless-enough MJPG file of random frames; returns its frames as OpenCV decodes them."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (shape[1], shape[0]))
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (*shape, 3), dtype=np.uint8))
    writer.release()
    capture, decoded = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(frame)
    capture.release()
    assert len(decoded) == frames
    return decoded


class FakeCapture:
    """A ``cv2.VideoCapture`` stand-in for a camera delivering ``frames`` and then nothing."""

    frames: list = []

    def __init__(self, index):
        self.index, self.queue, self.released = index, list(FakeCapture.frames), False

    def isOpened(self):  # noqa: N802 (OpenCV's name)
        return True

    def read(self):
        return (True, self.queue.pop(0)) if self.queue else (False, None)

    def release(self):
        self.released = True


@pytest.fixture
def frame_overlay(overlays, tmp_path):
    """The frame-by-frame overlay, as if trained on 3-frame clips of classes a, b, c."""
    overlay = _copy(overlays, tmp_path, "frames")
    _set_fields(overlay, dataset=DATASET)
    return Manifest.load(overlay), overlay


def test_camera_clips_are_the_training_features_and_an_unfinished_clip_is_dropped(frame_overlay, tmp_path):
    manifest, _ = frame_overlay
    FakeCapture.frames = write_video(tmp_path / "camera.avi", 8, seed=1)
    said = []
    clips = list(sources.camera(0, manifest, SIZE, clips=5, echo=said.append, capture_class=FakeCapture))
    training = load_video(tmp_path / "camera.avi", *SIZE)  # (8, 24), what models.train reads
    assert [clip.shape for clip, _ in clips] == [(3, 24), (3, 24)]
    np.testing.assert_array_equal(np.concatenate([clip for clip, _ in clips]), training[:6])
    assert [label for _, label in clips] == [-1, -1]
    assert said == ["camera 0 stopped delivering frames after 8; the 2 frames of an unfinished clip are dropped"]


def test_camera_stops_after_the_clips_asked_for():
    manifest = type("M", (), {"stateful": False, "frames_per_call": 2})()
    FakeCapture.frames = [np.full((5, 7, 3), value, np.uint8) for value in range(10)]
    clips = list(sources.camera(3, manifest, SIZE, clips=2, echo=pytest.fail, capture_class=FakeCapture))
    assert len(clips) == 2 and clips[1][0][1, 0] == np.float32(3) / np.float32(255)


def test_a_camera_frame_that_is_not_a_bgr_image_names_the_frame(frame_overlay):
    manifest, _ = frame_overlay
    FakeCapture.frames = [np.zeros((5, 7, 3), np.uint8)] * 2 + [np.zeros((5, 7), np.uint8)]
    with pytest.raises(ValueError, match=r"camera 0, frame 2: expected a uint8 BGR frame .* \(5, 7\)"):
        list(sources.camera(0, manifest, SIZE, clips=1, capture_class=FakeCapture))


def test_a_camera_that_cannot_be_opened_is_refused(frame_overlay):
    manifest, overlay = frame_overlay
    with pytest.raises(ValueError, match="--camera 99: OpenCV cannot open camera 99"):
        next(sources.camera(99, manifest, SIZE, clips=1))
    _assert_refused(_stream(overlay, "--camera", "99"), "--camera 99", "cannot open")


def test_a_video_shorter_than_a_whole_clip_repeats_its_last_frame(overlays, tmp_path):
    manifest = Manifest.load(overlays["clip"]["overlay"])  # 6 frames per call
    write_video(tmp_path / "short.avi", 4, seed=2)
    [(clip, label)] = list(sources.video(tmp_path / "short.avi", manifest, SIZE))
    training = load_video(tmp_path / "short.avi", *SIZE)
    np.testing.assert_array_equal(clip, training[[0, 1, 2, 3, 3, 3]])
    assert label == -1


def test_a_frame_by_frame_overlay_streams_every_frame_of_a_video(frame_overlay, tmp_path):
    manifest, overlay = frame_overlay
    write_video(tmp_path / "long.avi", 7, seed=3)
    [(clip, _)] = list(sources.video(tmp_path / "long.avi", manifest, SIZE))
    np.testing.assert_array_equal(clip, load_video(tmp_path / "long.avi", *SIZE))
    result = _stream(overlay, "--video", str(tmp_path / "long.avi"))
    assert result.returncode == 0 and "clip 0: 7 frames" in result.stdout, result.stderr


def make_folder(root, classes):
    for number, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        write_video(root / name / f"clip{number}.avi", 2 + number, seed=10 + number)


def test_folder_clips_are_the_training_clips_labelled_by_the_overlays_classes(frame_overlay, tmp_path):
    manifest, overlay = frame_overlay
    make_folder(tmp_path / "data", ["a", "b", "c"])
    clips = list(sources.folder(tmp_path / "data", manifest, SIZE, DATASET["class_names"]))
    x, y, _ = load_video_folder(tmp_path / "data", *SIZE, frames=DATASET["frames"])
    np.testing.assert_array_equal(np.stack([clip for clip, _ in clips]), x)
    assert [label for _, label in clips] == list(y) == [0, 1, 2]
    unknown = list(sources.folder(tmp_path / "data", manifest, SIZE, ["x", "y", "z"]))
    assert [label for _, label in unknown] == [-1, -1, -1]
    result = _stream(overlay, "--folder", str(tmp_path / "data"))
    assert result.returncode == 0 and "clips correct" in result.stdout, result.stderr
    assert result.stdout.count(": 3 frames") == 3


def test_stream_takes_one_source(frame_overlay, tmp_path):
    _, overlay = frame_overlay
    result = _stream(overlay, "--video", "a.avi", "--camera", "0")
    assert result.returncode == 2 and "not allowed with argument" in result.stderr
    _assert_refused(_stream(overlay, "--folder", str(tmp_path / "missing")), "missing", "does not exist")


def test_a_video_that_ends_early_says_how_many_frames_were_read(frame_overlay, tmp_path):
    """A truncated file: OpenCV decodes 12 of the 40 frames its container claims; the stream says
    so (and classifies the 12), it does not pass the short clip off as the whole video."""
    manifest, overlay = frame_overlay
    write_video(tmp_path / "whole.avi", 40, seed=4)
    data = (tmp_path / "whole.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    said = []
    [(clip, _)] = list(sources.video(tmp_path / "cut.avi", manifest, SIZE, warn=said.append))
    assert said == [f"video {tmp_path / 'cut.avi'} ended early: {len(clip)} of the 40 frames its container claims"]
    assert 0 < len(clip) < 40
    result = _stream(overlay, "--video", str(tmp_path / "cut.avi"))
    assert result.returncode == 0 and f"ended early: {len(clip)} of the 40 frames" in result.stdout, result.stderr
    assert list(sources.video(tmp_path / "whole.avi", manifest, SIZE, warn=pytest.fail))  # whole: nothing said


def test_a_frame_size_other_than_the_manifests_is_refused_naming_both(frame_overlay):
    """6x4x1 frames make the overlay's 24 features too, but the model was trained on 4x6x1 ones."""
    _, overlay = frame_overlay
    _assert_refused(_stream(overlay, "--height", "6", "--width", "4"), "6x4x1", "4x6x1")
    result = _stream(overlay, "--height", "4", "--width", "6", "--channels", "1", "--clips", "1")
    assert result.returncode == 0, result.stderr  # the manifest's own frame size, given again


class SlowFirstCall:
    """An accelerator stand-in whose first call takes 0.3 s (warm-up) and every later one 3 ms."""

    frames_per_call, backend, manifest = (
        1,
        type("B", (), {"name": "stand-in"})(),
        type("M", (), {"board": "b", "frames_per_call": 1})(),
    )

    def __init__(self):
        self.calls = 0

    def run_clip(self, clip):
        import time

        time.sleep(0.3 if self.calls == 0 else 0.003)
        self.calls += 1
        return np.zeros((len(clip), 2), np.float32)


def test_frames_per_second_exclude_the_warm_up_call(capsys):
    """Every clip's frames/s and their mean are steady-state: the first call (warm-up) is not timed."""
    from host.stream import stream_clips

    clips = [(np.zeros((10, 24), np.float32), 0) for _ in range(3)]
    stream_clips(SlowFirstCall(), clips, ["a", "b"], echo=lambda line: None)
    printed = capsys.readouterr().out
    rates = [float(rate) for rate in re.findall(r"clip \d: class a \(true class a\), ([\d.]+) frames/s", printed)]
    assert len(rates) == 3 and min(rates) > 300, printed  # 10 frames in ~3 ms, not in 0.3 s
    assert "warm-up" in printed, printed
