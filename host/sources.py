"""Where ``host.stream`` gets its clips: synthetic, a video file, a folder of clips, a camera.

Every source yields ``(clip, label)``: ``clip`` float32 (frames, height * width * channels) in
[0, 1], made frame by frame by ``models.datasets.frame_features`` (the function training uses),
``label`` the clip's class index into the overlay's class names, or -1 when unknown. A clip has
``clip_frames(manifest)`` frames: the training clip length for a frame-by-frame (stateful)
overlay, the frames per call for a whole-clip one. Needs NumPy, and OpenCV for video, folders
and cameras (``models.datasets`` imports no TensorFlow).

Documented behaviour at the edges (each tested in ``tests/test_stream.py``):

* a video file is one clip: every frame for a frame-by-frame overlay; for a whole-clip overlay
  its frames are sampled as training samples them, a video shorter than a clip repeating its
  last frame; a file that decodes fewer frames than its container claims is said to have ended
  early (the frames read, of how many);
* frames of another resolution are resized (as in training); a frame that is not a uint8 BGR
  image (rows, columns, 3) is a ``ValueError`` naming the source, the frame and its shape;
* a camera that cannot be opened is a ``ValueError`` naming its index; a camera that stops
  delivering frames ends the stream, and the frames of an unfinished clip are reported as
  dropped (``echo``), never classified as a short clip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from host.manifest import Manifest


def clip_frames(manifest: Manifest) -> int:
    """Frames per clip: the training clip length (``manifest.dataset['frames']``, else the
    synthetic default) for a frame-by-frame overlay; the frames per call for a whole-clip one."""
    if not manifest.stateful:
        return manifest.frames_per_call
    from models.datasets import SyntheticVideoConfig

    return int(manifest.dataset.get("frames", SyntheticVideoConfig.__dataclass_fields__["frames"].default))


def synthetic(manifest: Manifest, size: tuple, clips: int, seed: int):
    """``clips`` synthetic clips shaped for the overlay (its frame size, classes, ``clip_frames``).
    Labels are -1 unless the overlay was trained on the synthetic task."""
    from models import datasets

    fields = datasets.SyntheticVideoConfig.__dataclass_fields__
    shape = dict(zip(("height", "width", "channels"), size, strict=True))
    shape.update(classes=manifest.n_outputs, frames=clip_frames(manifest))
    described = {key: value for key, value in manifest.dataset.items() if key in fields}
    try:
        x, labels = datasets.synthetic_video(clips, datasets.SyntheticVideoConfig(**{**described, **shape}), seed=seed)
    except (TypeError, ValueError) as err:
        raise ValueError(f"cannot make synthetic clips for this overlay ({err}): stream a --video instead") from None
    known = manifest.dataset.get("kind") == "synthetic"
    yield from zip(x, labels if known else np.full_like(labels, -1), strict=True)


def video(path, manifest: Manifest, size: tuple, warn=print):
    """One clip of a video file (see the module docstring for its length). A file whose decoding
    stops before the frame count its container claims (truncated, corrupt) is said so by ``warn``."""
    from models import datasets

    if Path(path).is_dir():
        raise ValueError(f"--video {path} is a folder, not a video file: use --folder")
    frames, claimed = datasets.read_video(path, *size)
    if len(frames) < claimed:
        warn(f"video {path} ended early: {len(frames)} of the {claimed} frames its container claims")
    if not manifest.stateful:
        frames = datasets._sample_frames(frames, manifest.frames_per_call)
    yield frames, -1


def folder(root, manifest: Manifest, size: tuple, class_names: list, progress=None):
    """Every clip of a data set folder ``root/<class>/[<group>/]<clip>.avi|mp4`` (read by
    ``models.datasets.load_video_folder``, ``clip_frames`` frames sampled per clip). Labels are
    the overlay's class indices when the folder's class names are the overlay's, else -1.
    ``progress(done, total)`` is called after each clip read."""
    from models.datasets import load_video_folder

    x, y, names = load_video_folder(root, *size, frames=clip_frames(manifest), progress=progress)
    labels = y if names == class_names else np.full_like(y, -1)
    yield from zip(x, labels, strict=True)


def open_camera(index: int, capture_class=None):
    """An opened ``cv2.VideoCapture(index)`` (or ``capture_class(index)``, any object with
    ``isOpened``, ``read`` and ``release``); a camera that cannot be opened is a ``ValueError``."""
    if capture_class is None:
        import cv2

        level = cv2.getLogLevel()
        cv2.setLogLevel(0)  # silent: OpenCV's own lines about each backend it tried would bury ours
        try:
            capture = cv2.VideoCapture(index)
        finally:
            cv2.setLogLevel(level)
    else:
        capture = capture_class(index)
    if not capture.isOpened():
        capture.release()
        raise ValueError(
            f"--camera {index}: OpenCV cannot open camera {index} (is it connected, and not in use by another "
            "program? /dev/video* lists the cameras on Linux)"
        )
    return capture


def camera(index: int, manifest: Manifest, size: tuple, clips: int, echo=print, capture_class=None):
    """Up to ``clips`` clips of ``clip_frames`` frames from a camera, as they are captured; it ends
    early when the camera stops delivering frames (an unfinished clip is dropped and said so)."""
    from models.datasets import frame_features

    capture = open_camera(index, capture_class)
    length, read = clip_frames(manifest), 0
    try:
        for _ in range(clips):
            frames = []
            while len(frames) < length:
                ok, frame = capture.read()
                if not ok:
                    dropped = f"; the {len(frames)} frames of an unfinished clip are dropped" if frames else ""
                    echo(f"camera {index} stopped delivering frames after {read}{dropped}")
                    return
                try:
                    frames.append(frame_features(frame, *size))
                except ValueError as err:
                    raise ValueError(f"camera {index}, frame {read}: {err}") from None
                read += 1
            yield np.stack(frames), -1
    finally:
        capture.release()
