"""Streaming input sources: images, folders, globs, path lists, videos, webcams and URLs.

:func:`open_source` turns whatever the user passed as ``source`` into a :class:`Source`,
an iterable of :class:`Frame` objects. Frames are decoded one at a time, so a long
video is never held in memory.

Accepted sources:

* an image file or a video file (``.mp4 .mov .mkv .avi .webm .m4v``);
* a folder: its images and videos (not recursive, hidden files skipped), natural order;
* a glob pattern (``data/*.jpg``, ``data/**/*.png`` is recursive);
* a ``.txt`` file listing paths, one per line (relative to the txt's folder;
  blank lines and ``#`` comments ignored), or ``-`` to read such lines from stdin;
* a list/tuple of paths;
* a webcam index (``0``) or an ``rtsp:// rtsps:// rtmp:// http:// https://`` URL.

In a multi-file source a corrupt or missing entry is logged, recorded in
:attr:`Source.failed` and skipped. When the single given file is itself unreadable a
:class:`~sam2cli.errors.SAM2Error` naming it is raised instead.
"""

from __future__ import annotations

import glob
import itertools
import logging
import math
import re
import sys
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence, Union


from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.av_decode import Frame, decode_av, video_frame_count, probe_video
from sam2cli.io.image import is_image_file, load_image
from sam2cli.io.streams import webcam_frames

LOGGER = logging.getLogger("sam2cli")

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
FRAME_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")
URL_PREFIXES: tuple[str, ...] = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://")

SourceLike = Union[str, Path, int, Sequence[Union[str, Path]]]


def is_video_file(path: Union[str, Path]) -> bool:
    """True when ``path`` has one of the supported video extensions (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def is_url(source: str) -> bool:
    """True for stream URLs that PyAV should open (rtsp, rtmp, http, ...)."""
    return source.lower().startswith(URL_PREFIXES)


def natural_key(text: str) -> list[Union[int, str]]:
    """Sort key that orders embedded numbers numerically: ``f2 < f10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


# ---------------------------------------------------------------------------- sources


class Source:
    """Iterable of :class:`Frame`; ``kind`` is ``'images'``, ``'video'`` or ``'stream'``.

    ``len(source)`` is the number of frames it will yield when that is known
    (video counts come from container metadata and may be approximate); live
    streams raise ``TypeError``. :attr:`length` gives the same as ``Optional[int]``.
    ``failed`` lists ``(path, reason)`` for inputs that were skipped.
    """

    kind: str = "images"

    def __init__(self) -> None:
        self.failed: list[tuple[str, str]] = []

    def __iter__(self) -> Iterator[Frame]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def length(self) -> Optional[int]:
        """Number of frames that will be yielded, or ``None`` when unknown."""
        return None

    def __len__(self) -> int:
        n = self.length
        if n is None:
            raise TypeError(f"a {self.kind} source has no known length")
        return n

    def __bool__(self) -> bool:  # do not let an unknown length make the source falsy / raise
        return True

    def _skip(self, path: Union[str, Path], reason: str) -> None:
        """Record and log an input that is skipped."""
        self.failed.append((str(path), reason))
        LOGGER.warning("%s (skipped)", reason if str(path) in reason else f"{path}: {reason}")


class FileSource(Source):
    """Image and video files streamed in the given order.

    With ``strict=True`` (a single file given directly) read errors raise
    :class:`SAM2Error`; otherwise the file is recorded in :attr:`failed` and skipped.
    ``missing`` are listed paths that do not exist, reported when iteration starts.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        vid_stride: int = 1,
        strict: bool = False,
        missing: Sequence[Path] = (),
        max_frames: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.paths = list(paths)
        self.vid_stride = vid_stride
        self.max_frames = max_frames
        self.strict = strict
        self.missing = list(missing)
        videos = sum(is_video_file(p) for p in self.paths)
        self.kind = "video" if self.paths and videos == len(self.paths) else "images"
        self._length: Optional[int] = None

    @property
    def length(self) -> Optional[int]:
        if self._length is None:
            total = 0
            for p in self.paths:
                if is_video_file(p):
                    n = video_frame_count(p)
                    n = 0 if n is None else math.ceil(n / self.vid_stride)
                    total += n if self.max_frames is None else min(n, self.max_frames)
                else:
                    total += 1
            self._length = total
        return self._length

    def __iter__(self) -> Iterator[Frame]:
        for p in self.missing:
            self._skip(p, "file not found")
        for p in self.paths:
            if is_video_file(p):
                yield from self._iter_video(p)
            else:
                try:
                    image = load_image(p)
                except SAM2Error as e:
                    if self.strict:
                        raise
                    self._skip(p, str(e))
                    continue
                yield Frame(image=image, path=str(p), index=0, is_video=False, fps=None)

    def _iter_video(self, path: Path) -> Iterator[Frame]:
        try:
            yield from first_frames(decode_av(str(path), self.vid_stride, is_stream=False), self.max_frames)
        except SAM2Error as e:
            if self.strict:
                raise
            self._skip(path, str(e))


class WebcamSource(Source):
    """Frames from a local camera via OpenCV (``kind='stream'``)."""

    kind = "stream"

    def __init__(self, index: int, vid_stride: int = 1, max_frames: Optional[int] = None) -> None:
        super().__init__()
        self.index = index
        self.vid_stride = vid_stride
        self.max_frames = max_frames

    def __iter__(self) -> Iterator[Frame]:
        yield from first_frames(webcam_frames(self.index, self.vid_stride), self.max_frames)


class URLSource(Source):
    """Frames from a network stream (RTSP/RTMP/HTTP) decoded with PyAV (``kind='stream'``)."""

    kind = "stream"

    def __init__(self, url: str, vid_stride: int = 1, max_frames: Optional[int] = None) -> None:
        super().__init__()
        self.url = url
        self.vid_stride = vid_stride
        self.max_frames = max_frames

    def __iter__(self) -> Iterator[Frame]:
        yield from first_frames(decode_av(self.url, self.vid_stride, is_stream=True), self.max_frames)


def first_frames(frames: Iterator[Frame], max_frames: Optional[int]) -> Iterator[Frame]:
    """The first ``max_frames`` of ``frames`` (all when None); the decoder is closed right after."""
    if max_frames is None:
        yield from frames
        return
    try:
        yield from itertools.islice(frames, max_frames)
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


# ---------------------------------------------------------------------------- resolving


def _media_in_dir(folder: Path) -> list[Path]:
    """Images and videos directly inside ``folder`` (hidden files skipped), natural order."""
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and (is_image_file(p) or is_video_file(p))
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def _is_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _from_list(lines: Iterable[str], base: Path, name: str, vid_stride: int,
               max_frames: Optional[int] = None) -> FileSource:
    """FileSource for path lines (txt file or stdin); folders listed are expanded."""
    paths: list[Path] = []
    missing: list[Path] = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        p = Path(line).expanduser()
        if not p.is_absolute():
            p = base / p
        if p.is_dir():
            paths.extend(_media_in_dir(p))
        elif p.is_file():
            paths.append(p)
        else:
            missing.append(p)
    if not paths and not missing:
        raise SAM2Error(f"no paths listed in {name}; put one image or video path per line")
    if not paths:
        raise SAM2Error(f"none of the {len(missing)} paths listed in {name} exist, e.g. {missing[0]}")
    return FileSource(paths, vid_stride, strict=False, missing=missing, max_frames=max_frames)


def open_source(source: SourceLike, vid_stride: int = 1, max_frames: Optional[int] = None) -> Source:
    """Resolve ``source`` (see the module docstring) into a streaming :class:`Source`.

    ``vid_stride`` keeps every n-th video frame (indices stay the original ones); ``max_frames``
    keeps the first n of those per video or stream (still images are not counted).
    Raises :class:`SAM2Error` when the source does not exist or matches nothing.
    """
    if isinstance(vid_stride, bool) or not isinstance(vid_stride, int) or vid_stride < 1:
        raise UsageError(f"vid_stride must be an integer >= 1, got {vid_stride!r}")
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1):
        raise UsageError(f"max_frames must be an integer >= 1 (or None for all), got {max_frames!r}")

    if isinstance(source, (list, tuple)):
        return _from_list([str(s) for s in source], Path.cwd(), "the source list", vid_stride, max_frames)
    if isinstance(source, bool) or not isinstance(source, (str, Path, int)):
        raise UsageError(
            f"cannot use a {type(source).__name__} as a source; pass a path, glob, URL, webcam index or list of paths"
        )
    if isinstance(source, int):
        return WebcamSource(source, vid_stride, max_frames)

    text = str(source).strip()
    if not text:
        raise UsageError("the source is empty; pass an image, video, folder, glob, .txt list, URL or webcam index")
    if isinstance(source, str) and is_url(text):
        return URLSource(text, vid_stride, max_frames)
    if text == "-":
        return _from_list(sys.stdin, Path.cwd(), "stdin", vid_stride, max_frames)

    path = Path(text).expanduser()
    if path.is_dir():
        files = _media_in_dir(path)
        if not files:
            raise SAM2Error(f"no images or videos found in {path}")
        return FileSource(files, vid_stride, max_frames=max_frames)
    if path.is_file():
        if path.suffix.lower() == ".txt":
            return _from_list(path.read_text(encoding="utf-8", errors="replace").splitlines(), path.parent, str(path), vid_stride, max_frames)
        if is_video_file(path):
            probe_video(path)  # fail now, with one clear line, when the video is unreadable
        return FileSource([path], vid_stride, strict=True, max_frames=max_frames)
    if text.isdigit():
        return WebcamSource(int(text), vid_stride, max_frames)
    if _is_glob(text):
        matches = [
            Path(p)
            for p in glob.glob(str(path), recursive=True)
            if Path(p).is_file() and (is_image_file(p) or is_video_file(p))
        ]
        if not matches:
            raise SAM2Error(f"no images or videos match {text}")
        return FileSource(sorted(matches, key=lambda p: natural_key(str(p))), vid_stride, max_frames=max_frames)
    raise SAM2Error(f"source not found: {text}")


# ---------------------------------------------------------------------------- frame folders


def list_frame_folder(path: Union[str, Path]) -> list[Path]:
    """JPEG/PNG frames in ``path`` ordered by the integer in their stem (``2.jpg < 10.jpg``).

    When some stems are not plain integers the frames are naturally sorted by name instead.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise SAM2Error(f"source not found: frame folder {folder}")
    frames = [
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in FRAME_EXTENSIONS
    ]
    if not frames:
        raise SAM2Error(f"no JPEG/PNG frames found in {folder}; name them like 00000.jpg, 00001.jpg, ...")
    if all(p.stem.isdigit() for p in frames):
        return sorted(frames, key=lambda p: (int(p.stem), p.name))
    return sorted(frames, key=lambda p: natural_key(p.name))


def iter_frame_folder(path: Union[str, Path]) -> Iterator[Frame]:
    """Yield the frames of a JPEG/PNG frame folder as video frames, in :func:`list_frame_folder` order.

    ``Frame.index`` is the position in that order (0, 1, 2, ... as in Meta's reference);
    a corrupt frame raises :class:`SAM2Error`.
    """
    for i, p in enumerate(list_frame_folder(path)):
        yield Frame(image=load_image(p), path=str(p), index=i, is_video=True, fps=None)
