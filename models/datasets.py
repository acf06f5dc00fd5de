"""Video data: a deterministic synthetic generator (the default everywhere) and a real-video reader.

Features are frames flattened in (height, width, channel) order, float32 in [0, 1]:
``x`` is (clips, frames, height * width * channels), ``y`` int64 labels. NumPy only; OpenCV is
imported by the functions that read video files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Velocity pattern per class: (vx, vy) per frame in units of the clip's speed, as a function of t.
MOTIONS = (
    ("right", lambda t: (np.ones_like(t), np.zeros_like(t))),
    ("left", lambda t: (-np.ones_like(t), np.zeros_like(t))),
    ("down", lambda t: (np.zeros_like(t), np.ones_like(t))),
    ("up", lambda t: (np.zeros_like(t), -np.ones_like(t))),
    ("down-right", lambda t: (np.full_like(t, 0.71), np.full_like(t, 0.71))),
    ("up-left", lambda t: (np.full_like(t, -0.71), np.full_like(t, -0.71))),
    ("circle", lambda t: (np.cos(t * np.pi / 4), np.sin(t * np.pi / 4))),
    ("shake", lambda t: (np.where((t // 2) % 2 == 0, 1.5, -1.5), np.zeros_like(t))),
)


@dataclass(frozen=True)
class SyntheticVideoConfig:
    """Clips of bright blobs on a dark background whose motion pattern is the class."""

    height: int = 16
    width: int = 16
    channels: int = 1
    frames: int = 16
    classes: int = 4
    objects: int = 1
    noise: float = 0.05
    seed: int = 0
    distractors: int = 0  # clutter: blobs on a random walk, the same in every class (harder task)

    @property
    def features(self) -> int:
        return self.height * self.width * self.channels

    def validate(self) -> None:
        for name in ("height", "width"):
            if getattr(self, name) < 4:
                raise ValueError(f"'{name}' must be >= 4, got {getattr(self, name)}")
        if self.channels not in (1, 3):
            raise ValueError(f"'channels' must be 1 or 3, got {self.channels}")
        if self.frames < 2:
            raise ValueError(f"'frames' must be >= 2 (motion needs two frames), got {self.frames}")
        if not 2 <= self.classes <= len(MOTIONS):
            raise ValueError(f"'classes' must be in 2..{len(MOTIONS)} (motion patterns), got {self.classes}")
        if self.objects < 1:
            raise ValueError(f"'objects' must be >= 1, got {self.objects}")
        if self.noise < 0:
            raise ValueError(f"'noise' must be >= 0, got {self.noise}")
        if self.distractors < 0:
            raise ValueError(f"'distractors' must be >= 0, got {self.distractors}")


def class_names(config: SyntheticVideoConfig) -> list:
    return [MOTIONS[c][0] for c in range(config.classes)]


def _render(positions, sizes, height, width):
    """positions: (frames, objects, 2) as (x, y); sizes: (objects,) -> (frames, height, width)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    # wrapped distance on the torus, so a blob leaving one edge comes back at the other
    dx = np.abs(xs[None, None] - positions[..., 0, None, None])
    dy = np.abs(ys[None, None] - positions[..., 1, None, None])
    dx = np.minimum(dx, width - dx)
    dy = np.minimum(dy, height - dy)
    blobs = np.exp(-(dx**2 + dy**2) / (2 * (sizes[None, :, None, None] / 2) ** 2))
    return blobs.max(axis=1)


def synthetic_video(n_clips: int, config: SyntheticVideoConfig | None = None, seed=None):
    """``n_clips`` clips and labels; the same seed gives the same data.

    Returns x float32 (n_clips, frames, features) in [0, 1] and y int64 (n_clips,), classes
    balanced. Start position, speed, size and colour are random per clip, so no single frame
    tells the class: only the motion does.
    """
    config = config or SyntheticVideoConfig()
    config.validate()
    if n_clips < 1:
        raise ValueError(f"'n_clips' must be >= 1, got {n_clips}")
    rng = np.random.default_rng(config.seed if seed is None else seed)
    labels = rng.permutation(np.arange(n_clips) % config.classes).astype(np.int64)
    t = np.arange(config.frames, dtype=np.float64)
    x = np.empty((n_clips, config.frames, config.features), np.float32)
    for clip, label in enumerate(labels):
        vx, vy = MOTIONS[label][1](t)
        speed = rng.uniform(0.7, 1.3) * min(config.height, config.width) / 16
        start = rng.uniform(0, 1, (config.objects, 2)) * (config.width, config.height)
        steps = np.stack([np.concatenate([[0], np.cumsum(vx[:-1])]), np.concatenate([[0], np.cumsum(vy[:-1])])], 1)
        positions = start[None] + speed * steps[:, None, :]
        sizes = rng.uniform(1.5, 3.0, config.objects) * min(config.height, config.width) / 16
        frames = _render(positions, sizes, config.height, config.width)
        colour = rng.uniform(0.6, 1.0, config.channels)
        video = frames[..., None] * colour + rng.normal(0, config.noise, (*frames.shape, config.channels))
        if config.distractors:
            video = np.maximum(video, _distractor_video(rng, config, speed))
        x[clip] = np.clip(video, 0, 1).reshape(config.frames, -1)
    return x, labels


def _distractor_video(rng, config: SyntheticVideoConfig, speed: float) -> np.ndarray:
    """``config.distractors`` blobs of the class blobs' sizes on random walks (steps of ``speed``
    in a random direction each frame: no class's motion), each its own colour: (frames, height,
    width, channels)."""
    n = config.distractors
    start = rng.uniform(0, 1, (n, 2)) * (config.width, config.height)
    angles = rng.uniform(0, 2 * np.pi, (config.frames - 1, n))
    steps = speed * np.stack([np.cos(angles), np.sin(angles)], -1)  # (frames - 1, n, 2)
    positions = start[None] + np.concatenate([np.zeros((1, n, 2)), np.cumsum(steps, 0)])
    sizes = rng.uniform(1.5, 3.0, n) * min(config.height, config.width) / 16
    colours = rng.uniform(0.6, 1.0, (n, config.channels))
    video = np.zeros((config.frames, config.height, config.width, config.channels))
    for k in range(n):
        blob = _render(positions[:, k : k + 1], sizes[k : k + 1], config.height, config.width)
        video = np.maximum(video, blob[..., None] * colours[k])
    return video


def over_footage(x: np.ndarray, footage: list, strength: float, seed: int = 0) -> np.ndarray:
    """Clips ``x`` (clips, frames, features) laid over real video: each clip over consecutive frames
    of one of ``footage`` (``load_video`` arrays (frames, features) of the same frame size), from a
    random start (wrapping), as ``max(x, strength * footage)``: the real background moves and
    varies from clip to clip, the clip's blobs stay on top. Returns float32, same shape."""
    if x.ndim != 3:
        raise ValueError(f"'x' is {x.shape}, expected (clips, frames, features)")
    if not footage:
        raise ValueError("'footage' is empty: give at least one video (load_video)")
    for number, video in enumerate(footage):
        if video.ndim != 2 or video.shape[1] != x.shape[2]:
            raise ValueError(f"footage {number} is {video.shape}, expected (frames, {x.shape[2]})")
        if len(video) == 0:
            raise ValueError(f"footage {number} has no frames")
    if not 0 <= strength <= 1:
        raise ValueError(f"'strength' must be in [0, 1], got {strength}")
    rng = np.random.default_rng(seed)
    out = np.empty_like(x)
    for clip in range(len(x)):
        video = footage[rng.integers(len(footage))]
        index = (rng.integers(len(video)) + np.arange(x.shape[1])) % len(video)
        out[clip] = np.maximum(x[clip], strength * video[index])
    return out


def frame_features(frame: np.ndarray, height: int, width: int, channels: int = 3) -> np.ndarray:
    """The features of one OpenCV frame (uint8 BGR, (rows, columns, 3)), as training makes them:
    resized to ``height`` x ``width`` (area interpolation), RGB or grey, float32
    (height * width * channels,) in [0, 1]. Any other frame is a ``ValueError`` naming its shape."""
    import cv2

    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8 or 0 in frame.shape:
        raise ValueError(f"expected a uint8 BGR frame (rows, columns, 3), got {frame.dtype} {frame.shape}")
    if channels not in (1, 3):
        raise ValueError(f"'channels' must be 1 or 3, got {channels}")
    frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    code = cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(frame, code).reshape(-1).astype(np.float32) / 255.0


def load_video(path, height: int, width: int, channels: int = 3, max_frames=None) -> np.ndarray:
    """Frames of one video file through ``frame_features``: float32 (frames, height * width * channels)."""
    return read_video(path, height, width, channels, max_frames)[0]


def read_video(path, height: int, width: int, channels: int = 3, max_frames=None) -> tuple:
    """``(frames, claimed)``: ``load_video``'s frames and the frame count the file's container
    claims (0 when it does not say); fewer frames than claimed (and than ``max_frames``) means
    decoding stopped early: the file is truncated or corrupt."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file {path} does not exist")
    if channels not in (1, 3):
        raise ValueError(f"'channels' must be 1 or 3, got {channels}")
    capture = cv2.VideoCapture(str(path))
    claimed = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    frames = []
    try:
        while capture.isOpened() and (max_frames is None or len(frames) < max_frames):
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame_features(frame, height, width, channels))
    finally:
        capture.release()
    if not frames:
        raise ValueError(f"OpenCV could not read any frame from {path}")
    return np.stack(frames), claimed


def _sample_frames(video: np.ndarray, frames: int) -> np.ndarray:
    """``frames`` frames spread uniformly over the clip (the last one repeated if it is short)."""
    if len(video) >= frames:
        index = np.linspace(0, len(video) - 1, frames).round().astype(int)
    else:
        index = np.minimum(np.arange(frames), len(video) - 1)
    return video[index]


def load_video_folder(
    root, height=120, width=160, channels=3, frames=16, extensions=(".avi", ".mp4"), progress=None
) -> tuple:
    """A data set laid out as ``root/<class>/[<group>/]<clip>.avi|mp4`` (UCF11, YouTube actions).

    Returns ``(x, y, class_names)``: x float32 (clips, frames, height * width * channels),
    y int64, class names sorted. ``progress(done, total)`` is called after each clip.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"data set folder {root} does not exist")
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not names:
        raise ValueError(f"data set folder {root} has no class folders (expected root/<class>/<clip>)")
    clips = []
    for label, name in enumerate(names):
        videos = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in extensions)
        if not videos:
            raise ValueError(f"class folder {root / name} has no {'/'.join(extensions)} videos")
        clips += [(path, label) for path in videos]
    x = np.empty((len(clips), frames, height * width * channels), np.float32)
    for number, (path, _) in enumerate(clips):
        x[number] = _sample_frames(load_video(path, height, width, channels), frames)
        if progress is not None:
            progress(number + 1, len(clips))
    return x, np.array([label for _, label in clips], np.int64), names
