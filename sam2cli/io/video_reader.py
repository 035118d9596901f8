"""Random access to the frames of a video, frame folder or image sequence, for the video tracker.

:func:`open_frames` returns a :class:`~sam2cli.io.frames.FrameReader`::

    with open_frames("clip.mp4", vid_stride=2) as reader:
        print(len(reader), reader.height, reader.width, reader.fps)
        first = reader[0]              # (H, W, 3) uint8 RGB
        for i, frame in reader:        # streaming, in order
            ...

Kinds of readers (re-exported here, so ``from sam2cli.io.video_reader import ...`` works):

* :class:`~sam2cli.io.frames.ImageSequenceReader` (:mod:`sam2cli.io.frames`) - a frame
  folder, a glob, a ``.txt`` list or a list of image paths, or one image.
* :class:`~sam2cli.io.video_file.VideoReader` (:mod:`sam2cli.io.video_file`) - a video
  file decoded with PyAV, seeking on demand.
* :class:`~sam2cli.io.streams.StreamReader` (:mod:`sam2cli.io.streams`) - a webcam index
  or an RTSP/RTMP/HTTP URL: not seekable, only ``iter(reader)`` works and ``len`` is unknown.

Reader indices count the frames after ``vid_stride``: reader frame ``i`` is original
frame ``i * vid_stride``. The whole video is never held in memory.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.frames import DEFAULT_CACHE_SIZE, FrameReader, ImageSequenceReader
from sam2cli.io.image import is_image_file
from sam2cli.io.sources import VIDEO_EXTENSIONS, is_url, is_video_file, list_frame_folder, natural_key
from sam2cli.io.streams import StreamReader
from sam2cli.io.video_file import VideoReader

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "FrameReader",
    "FramesSource",
    "ImageSequenceReader",
    "StreamReader",
    "VideoReader",
    "open_frames",
]

FramesSource = Union[str, Path, int, Sequence[Union[str, Path]]]


def _image_list(lines: Sequence[str], base: Path, listed_in: str) -> list[Path]:
    """Image paths from a .txt list (relative to its folder, blank lines and # comments skipped)."""
    paths: list[Path] = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        p = Path(line).expanduser()
        p = p if p.is_absolute() else base / p
        if not p.is_file():
            raise SAM2Error(f"source not found: {p} (listed in {listed_in})")
        if not is_image_file(p):
            raise UsageError(f"{p} (listed in {listed_in}) is not an image; a frame list holds images only")
        paths.append(p)
    if not paths:
        raise SAM2Error(f"no image paths listed in {listed_in}; put one image path per line")
    return paths


def open_frames(source: FramesSource, vid_stride: int = 1, cache_size: int = DEFAULT_CACHE_SIZE) -> FrameReader:
    """Open ``source`` for random access by frame index.

    ``source`` is a video file, a folder of JPEG/PNG frames, a glob of images, a
    ``.txt`` list of images, a list of image paths, a single image, a webcam index
    or a stream URL. ``vid_stride`` keeps every n-th frame. Raises
    :class:`SAM2Error` when the source is missing or unreadable.
    """
    if isinstance(vid_stride, bool) or not isinstance(vid_stride, (int, np.integer)) or vid_stride < 1:
        raise UsageError(f"vid_stride must be an integer >= 1, got {vid_stride!r}")
    vid_stride = int(vid_stride)

    if isinstance(source, (list, tuple)):
        paths = [Path(p).expanduser() for p in source]
        for p in paths:
            if not p.is_file():
                raise SAM2Error(f"source not found: {p}")
            if not is_image_file(p):
                raise UsageError(f"{p} is not an image; a list of frames must hold images only")
        if not paths:
            raise UsageError("the list of frames is empty; pass at least one image path")
        name = paths[0].resolve().parent.name or "frames"
        return ImageSequenceReader(paths, name, vid_stride, cache_size)
    if isinstance(source, bool) or not isinstance(source, (str, Path, int, np.integer)):
        raise UsageError(
            f"cannot read frames from a {type(source).__name__}; pass a video, frame folder, glob, .txt list, "
            "URL or webcam index"
        )
    if isinstance(source, (int, np.integer)):
        return StreamReader(int(source), vid_stride)

    text = str(source).strip()
    if not text:
        raise UsageError("the source is empty; pass a video, frame folder, glob, .txt list, URL or webcam index")
    if isinstance(source, str) and is_url(text):
        return StreamReader(text, vid_stride)

    path = Path(text).expanduser()
    if path.is_dir():
        return ImageSequenceReader(list_frame_folder(path), path.resolve().name or "frames", vid_stride, cache_size)
    if path.is_file():
        if is_video_file(path):
            return VideoReader(path, vid_stride, cache_size)
        if path.suffix.lower() == ".txt":
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            return ImageSequenceReader(_image_list(lines, path.parent, str(path)), path.stem, vid_stride, cache_size)
        if is_image_file(path):
            return ImageSequenceReader([path], path.stem, vid_stride, cache_size)
        raise UsageError(
            f"cannot read frames from {path}: it is not a video ({' '.join(VIDEO_EXTENSIONS)}), "
            "an image or a .txt list of images"
        )
    if text.isdigit():
        return StreamReader(int(text), vid_stride)
    if any(ch in text for ch in "*?["):
        matches = sorted(
            (Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file() and is_image_file(p)),
            key=lambda p: natural_key(str(p)),
        )
        if not matches:
            raise SAM2Error(f"no images match {text}")
        return ImageSequenceReader(matches, matches[0].parent.resolve().name or "frames", vid_stride, cache_size)
    raise SAM2Error(f"source not found: {text}")
