"""Predict's view of a source: a stream of :class:`~sam2cli.io.frames.Frame` over images, videos
and live streams (see :mod:`sam2cli.io.sources`, which resolves ``source=`` and opens these)."""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

from sam2cli.errors import SAM2Error
from sam2cli.io.av_decode import decode_av, video_frame_count
from sam2cli.io.frames import Frame
from sam2cli.io.image import load_image
from sam2cli.io.streams import StreamReader

LOGGER = logging.getLogger("sam2cli")

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
URL_PREFIXES: tuple[str, ...] = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://")

def is_video_file(path: Union[str, Path]) -> bool:
    """True when ``path`` has one of the supported video extensions (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def is_url(source: str) -> bool:
    """True for stream URLs that PyAV should open (rtsp, rtmp, http, ...)."""
    return source.lower().startswith(URL_PREFIXES)


# ---------------------------------------------------------------------------- sources (predict's view)


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

    def __init__(self, paths: Sequence[Path], vid_stride: int = 1, strict: bool = False, missing: Sequence[Path] = (),
                 max_frames: Optional[int] = None) -> None:
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


class StreamSource(Source):
    """Frames of a live stream, read once in order through :class:`StreamReader` (``kind='stream'``)."""

    kind = "stream"

    def __init__(self, target: Union[int, str], vid_stride: int = 1, max_frames: Optional[int] = None) -> None:
        super().__init__()
        self.vid_stride = vid_stride
        self.max_frames = max_frames
        self.reader = StreamReader(target, vid_stride)

    def __iter__(self) -> Iterator[Frame]:
        try:
            yield from first_frames(self.reader.frames(), self.max_frames)
        finally:
            self.reader.close()


class WebcamSource(StreamSource):
    """Frames from a local camera via OpenCV."""

    def __init__(self, index: int, vid_stride: int = 1, max_frames: Optional[int] = None) -> None:
        super().__init__(index, vid_stride, max_frames)
        self.index = index


class URLSource(StreamSource):
    """Frames from a network stream (RTSP/RTMP/HTTP) decoded with PyAV."""

    def __init__(self, url: str, vid_stride: int = 1, max_frames: Optional[int] = None) -> None:
        super().__init__(url, vid_stride, max_frames)
        self.url = url


def first_frames(frames: Iterator[Frame], max_frames: Optional[int]) -> Iterator[Frame]:
    """The first ``max_frames`` of ``frames`` (all when None); the decoder is closed right after."""
    try:
        yield from itertools.islice(frames, max_frames)
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
