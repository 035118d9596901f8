"""The one source layer: what ``source=`` may name, and the readers every command opens it with.

Accepted sources (the same for `sam2 predict`, `sam2 track`, the Python API and `sam2 val`):

* an image file or a video file (``.mp4 .mov .mkv .avi .webm .m4v``);
* a folder: for predict its images and videos (not recursive, hidden files skipped, natural
  order); for track a frame folder (JPEG/PNG, numeric order, see :func:`list_frame_folder`);
* a glob pattern (``data/*.jpg``, ``data/**/*.png`` is recursive);
* a ``.txt`` file listing paths, one per line (relative to the txt's folder; blank lines and
  ``#`` comments ignored), ``-`` to read such lines from stdin (relative to the working
  folder), or a list/tuple of paths (the same);
* a webcam index (``0``) or an ``rtsp:// rtsps:// rtmp:// http:// https://`` URL.

A dataset folder (annotate, val) is listed recursively by :func:`images_under`.

:func:`resolve` turns a source into a :class:`Resolved` record (one dispatch, one list parser,
:func:`read_list`); two views open it:

* :func:`open_source` (predict) - a :class:`Source` (:mod:`sam2cli.io.source_stream`), a stream of :class:`Frame` over a
  collection of images and videos. A corrupt or missing entry of a multi-file source is
  logged, recorded in :attr:`Source.failed` and skipped; a single unreadable file raises a
  :class:`~sam2cli.errors.SAM2Error` naming it.
* :func:`open_frames` (track, the video predictor) - a :class:`FrameReader` over one video:
  indexable (``reader[i]``) where the source is seekable (a video file, a frame folder, an
  image sequence), iterable in order always (webcams and URLs).

Frame index convention: a reader's *position* ``i`` counts the frames it yields after
``vid_stride``; the frame's *original index* is ``i * vid_stride``, and every :class:`Frame`
carries it (``Frame.index``; 0 for still images). Predict names video outputs by the original
index, track by the position (its prompts' ``frame`` numbers are positions). Frames are decoded
one at a time: memory does not grow with the length of a video or a stream.
"""

from __future__ import annotations

import glob
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.av_decode import probe_video
from sam2cli.io.frames import (DEFAULT_CACHE_SIZE, FRAME_EXTENSIONS, Frame, FrameReader, ImageSequenceReader,
                               list_frame_folder, natural_key)
from sam2cli.io.image import is_image_file
from sam2cli.io.streams import StreamReader
from sam2cli.io.video_file import VideoReader
from sam2cli.io.source_stream import (VIDEO_EXTENSIONS, FileSource, Source, StreamSource, URLSource, WebcamSource,
                                      is_url, is_video_file)

__all__ = [
    "FRAME_EXTENSIONS", "Frame", "FrameReader", "ImageSequenceReader", "Resolved", "Source", "StreamReader",
    "StreamSource", "URLSource", "VIDEO_EXTENSIONS", "VideoReader", "WebcamSource", "images_under", "is_url",
    "is_video_file", "list_frame_folder", "natural_key", "open_frames", "open_source", "probe_video",
    "read_list", "resolve",
]

LOGGER = logging.getLogger("sam2cli")

SourceLike = Union[str, Path, int, Sequence[Union[str, Path]]]


# ---------------------------------------------------------------------------- resolving


@dataclass
class Resolved:
    """What a ``source=`` names, before anything is decoded.

    ``kind``: ``'stream'`` (``stream``: a webcam index or URL), ``'video'`` (``paths``: one video
    file) or ``'files'`` (``paths``: images, and in predict's view videos too; ``missing``: listed
    paths that do not exist). ``single``: one file was given directly, so its errors raise.
    ``name``: the stem for output file names.
    """

    kind: str
    paths: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    stream: Union[int, str, None] = None
    name: str = "frames"
    single: bool = False


def read_list(lines: Iterable[str], base: Path) -> list[Path]:
    """The paths a list names, one per line: blank lines and ``#`` comments skipped, ``~``
    expanded, relative paths joined to ``base``."""
    paths = []
    for raw in lines:
        line = raw.strip()
        if line and not line.startswith("#"):
            p = Path(line).expanduser()
            paths.append(p if p.is_absolute() else base / p)
    return paths


def _media_in_dir(folder: Path) -> list[Path]:
    """Images and videos directly inside ``folder`` (hidden files skipped), natural order."""
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and (is_image_file(p) or is_video_file(p))
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def images_under(folder: Path) -> list[Path]:
    """The images anywhere under ``folder`` (a dataset: annotate, val), relative to it, sorted by
    POSIX path; names starting with '.' are skipped at any depth."""
    rels = (p.relative_to(folder) for p in folder.rglob("*") if is_image_file(p) and p.is_file())
    return sorted((r for r in rels if not any(s.startswith(".") for s in r.parts)), key=lambda r: r.as_posix())


def _dir_name(folder: Path) -> str:
    return folder.resolve().name or "frames"


def _listed(lines: Iterable[str], base: Path, listed_in: str, video: bool, name: Optional[str] = None) -> Resolved:
    """A list's paths: images only for one video (a bad entry raises); else folders listed are
    expanded and missing paths kept aside (skipped with a warning when iterated)."""
    listed = read_list(lines, base)
    if video:
        for p in listed:
            if not p.is_file():
                raise SAM2Error(f"source not found: {p} (listed in {listed_in})")
            if not is_image_file(p):
                raise UsageError(f"{p} (listed in {listed_in}) is not an image; a frame list holds images only")
        if not listed:
            raise SAM2Error(f"no image paths listed in {listed_in}; put one image path per line")
        return Resolved("files", listed, name=name or _dir_name(listed[0].parent))
    paths: list[Path] = []
    missing: list[Path] = []
    for p in listed:
        if p.is_dir():
            paths.extend(_media_in_dir(p))
        elif p.is_file():
            paths.append(p)
        else:
            missing.append(p)
    if not paths and not missing:
        raise SAM2Error(f"no paths listed in {listed_in}; put one image or video path per line")
    if not paths:
        raise SAM2Error(f"none of the {len(missing)} paths listed in {listed_in} exist, e.g. {missing[0]}")
    return Resolved("files", paths, missing, name=name or _dir_name(paths[0].parent))


def _file(path: Path, video: bool) -> Resolved:
    if path.suffix.lower() == ".txt":
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        return _listed(lines, path.parent, str(path), video, name=path.stem)
    if is_video_file(path):
        return Resolved("video", [path], name=path.stem, single=True)
    if video and not is_image_file(path):
        raise UsageError(
            f"cannot read frames from {path}: it is not a video ({' '.join(VIDEO_EXTENSIONS)}), "
            "an image or a .txt list of images"
        )
    return Resolved("files", [path], name=path.stem, single=True)


def _folder(path: Path, video: bool) -> Resolved:
    if video:
        return Resolved("files", list_frame_folder(path), name=_dir_name(path))
    files = _media_in_dir(path)
    if not files:
        raise SAM2Error(f"no images or videos found in {path}")
    return Resolved("files", files, name=_dir_name(path))


def _globbed(text: str, video: bool) -> Resolved:
    wanted = (lambda p: is_image_file(p)) if video else (lambda p: is_image_file(p) or is_video_file(p))
    found = (Path(p) for p in glob.glob(str(Path(text).expanduser()), recursive=True))
    matches = sorted((p for p in found if p.is_file() and wanted(p)), key=lambda p: natural_key(str(p)))
    if not matches:
        raise SAM2Error(f"no images match {text}" if video else f"no images or videos match {text}")
    return Resolved("files", matches, name=_dir_name(matches[0].parent))


def resolve(source: SourceLike, *, video: bool) -> Resolved:
    """What ``source`` names (see the module docstring); raises one line when it names nothing.

    ``video=True`` reads it as one video (track): a folder is a frame folder, and lists and
    globs hold images only.
    """
    if isinstance(source, (list, tuple)):
        return _listed([str(s) for s in source], Path.cwd(), "the source list", video)
    if isinstance(source, bool) or not isinstance(source, (str, Path, int, np.integer)):
        raise UsageError(
            f"cannot use a {type(source).__name__} as a source; pass a path, glob, .txt list, URL, webcam index "
            "or list of paths"
        )
    if isinstance(source, (int, np.integer)):
        return Resolved("stream", stream=int(source))
    text = str(source).strip()
    if not text:
        raise UsageError("the source is empty; pass an image, video, folder, glob, .txt list, URL or webcam index")
    if isinstance(source, str) and is_url(text):
        return Resolved("stream", stream=text)
    if text == "-":
        return _listed(sys.stdin, Path.cwd(), "stdin", video)
    path = Path(text).expanduser()
    if path.is_dir():
        return _folder(path, video)
    if path.is_file():
        return _file(path, video)
    if text.isdigit():
        return Resolved("stream", stream=int(text))
    if any(ch in text for ch in "*?["):
        return _globbed(text, video)
    raise SAM2Error(f"source not found: {text}")


def _check_count(name: str, value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UsageError(f"{name} must be an integer >= 1{what}, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------- the two views


def open_source(source: SourceLike, vid_stride: int = 1, max_frames: Optional[int] = None) -> Source:
    """``source`` as a stream of :class:`Frame` (predict's view, see the module docstring).

    ``vid_stride`` keeps every n-th video frame (``Frame.index`` stays the original one);
    ``max_frames`` keeps the first n of those per video or stream (still images are not counted).
    Raises :class:`SAM2Error` when the source does not exist or matches nothing.
    """
    vid_stride = _check_count("vid_stride", vid_stride, "")
    if max_frames is not None:
        max_frames = _check_count("max_frames", max_frames, " (or None for all)")
    r = resolve(source, video=False)
    if r.kind == "stream":
        if isinstance(r.stream, int):
            return WebcamSource(r.stream, vid_stride, max_frames)
        return URLSource(str(r.stream), vid_stride, max_frames)
    if r.kind == "video":
        probe_video(r.paths[0])  # fail now, with one clear line, when the video is unreadable
    return FileSource(r.paths, vid_stride, strict=r.single, missing=r.missing, max_frames=max_frames)


def open_frames(source: SourceLike, vid_stride: int = 1, cache_size: int = DEFAULT_CACHE_SIZE) -> FrameReader:
    """``source`` as one video, a :class:`FrameReader` (track's view, see the module docstring).

    ``reader[i]`` is original frame ``i * vid_stride``. Raises :class:`SAM2Error` when the
    source is missing or unreadable.
    """
    vid_stride = _check_count("vid_stride", vid_stride, "")
    r = resolve(source, video=True)
    if r.kind == "stream":
        return StreamReader(r.stream, vid_stride)
    if r.kind == "video":
        return VideoReader(r.paths[0], vid_stride, cache_size)
    return ImageSequenceReader(r.paths, r.name, vid_stride, cache_size)
