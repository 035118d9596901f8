"""Random access to the frames of a video, frame folder or image sequence, for the video tracker.

:func:`open_frames` returns a :class:`FrameReader`::

    with open_frames("clip.mp4", vid_stride=2) as reader:
        print(len(reader), reader.height, reader.width, reader.fps)
        first = reader[0]              # (H, W, 3) uint8 RGB
        for i, frame in reader:        # streaming, in order
            ...

Kinds of readers:

* :class:`ImageSequenceReader` - a frame folder (``00000.jpg, 00001.jpg, ...`` in
  :func:`~sam2cli.io.sources.list_frame_folder` order), a glob, a ``.txt`` list or a
  list of image paths, or one image. Frames are loaded from disk on demand.
* :class:`VideoReader` - a video file decoded with PyAV. Reading forwards continues the
  decoder; reading backwards (or far ahead) seeks to the keyframe before the wanted
  frame and decodes forward from there. A small LRU cache keeps the last frames.
* :class:`StreamReader` - a webcam index or an RTSP/RTMP/HTTP URL: not seekable, only
  ``iter(reader)`` works and ``len`` is unknown.

Reader indices count the frames after ``vid_stride``: reader frame ``i`` is original
frame ``i * vid_stride``. The whole video is never held in memory.
"""

from __future__ import annotations

import glob
import logging
import math
import re
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import av
import cv2
import numpy as np

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.image import is_image_file, load_image
from sam2cli.io.sources import (
    VIDEO_EXTENSIONS,
    _open_av,
    _short_reason,
    is_url,
    is_video_file,
    list_frame_folder,
    natural_key,
)

LOGGER = logging.getLogger("sam2cli")

FramesSource = Union[str, Path, int, Sequence[Union[str, Path]]]

DEFAULT_CACHE_SIZE = 8
# Reading more than this many frames ahead of the decoder seeks instead of decoding through.
SEEK_AHEAD_FRAMES = 48


class FrameReader:
    """Frames of one source, addressable by index (see the module docstring).

    Attributes: ``name`` (stem for output file names), ``height``, ``width``,
    ``fps`` (frames per second of the frames this reader yields, i.e. the source rate
    divided by ``vid_stride``; ``None`` when unknown, e.g. for frame folders),
    ``seekable`` and ``vid_stride``. :attr:`length` is ``len(reader)`` or ``None``
    for live streams (where ``len()`` raises ``TypeError``).
    """

    seekable: bool = True
    name: str = "frames"
    vid_stride: int = 1

    # ------------------------------------------------------------ interface
    @property
    def length(self) -> Optional[int]:
        """Number of frames (after ``vid_stride``), ``None`` for live streams."""
        raise NotImplementedError

    @property
    def frame_hw(self) -> tuple[int, int]:
        """(height, width) of the frames; readers that know it up front set ``_hw``."""
        return self._hw

    @property
    def height(self) -> int:
        return self.frame_hw[0]

    @property
    def width(self) -> int:
        return self.frame_hw[1]

    @property
    def fps(self) -> Optional[float]:
        return None

    def path_of(self, i: int) -> str:
        """A display path for reader frame ``i`` (the image file, or the video / stream)."""
        raise NotImplementedError

    def _read(self, i: int) -> np.ndarray:
        """Frame ``i`` (already range-checked) as (H, W, 3) uint8 RGB."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the files / decoders the reader holds (it can be reopened lazily)."""

    # ------------------------------------------------------------ shared behaviour
    def __len__(self) -> int:
        n = self.length
        if n is None:
            raise TypeError(f"{self.name} is a live stream and has no length")
        return n

    def __bool__(self) -> bool:
        return True

    def __getitem__(self, i: int) -> np.ndarray:
        return self._read(self._check_index(i))

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(i, frame)`` for every frame, in order."""
        for i in range(len(self)):
            yield i, self._read(i)

    def __enter__(self) -> "FrameReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def _check_index(self, i: Any) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"frame indices must be integers, not {type(i).__name__}")
        n = len(self)
        if not 0 <= i < n:
            raise IndexError(f"frame {int(i)} is out of range: {self.name} has {n} frames (0..{n - 1})")
        return int(i)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, length={self.length}, stride={self.vid_stride})"


class _LRU:
    """A tiny least-recently-used cache of decoded frames keyed by original frame index."""

    def __init__(self, size: int) -> None:
        self.size = max(1, int(size))
        self._items: "OrderedDict[int, np.ndarray]" = OrderedDict()

    def get(self, key: int) -> Optional[np.ndarray]:
        arr = self._items.get(key)
        if arr is not None:
            self._items.move_to_end(key)
        return arr

    def put(self, key: int, arr: np.ndarray) -> None:
        self._items[key] = arr
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: int) -> bool:
        return key in self._items


# ---------------------------------------------------------------------------- image sequences


class ImageSequenceReader(FrameReader):
    """Frames stored as image files (a frame folder, glob, .txt list or list of paths).

    Every frame must have the size of the first one.
    """

    def __init__(self, paths: Sequence[Path], name: str, vid_stride: int = 1, cache_size: int = DEFAULT_CACHE_SIZE):
        if not paths:
            raise SAM2Error(f"no frames found for {name}")
        self.all_paths = [Path(p) for p in paths]
        self.paths = self.all_paths[::vid_stride]
        self.name = name
        self.vid_stride = vid_stride
        self._cache = _LRU(cache_size)
        first = self._load(0)
        self._hw: tuple[int, int] = (int(first.shape[0]), int(first.shape[1]))
        self._cache.put(0, first)

    @property
    def length(self) -> Optional[int]:
        return len(self.paths)

    def path_of(self, i: int) -> str:
        return str(self.paths[self._check_index(i)])

    def _load(self, i: int) -> np.ndarray:
        return load_image(self.paths[i])

    def _read(self, i: int) -> np.ndarray:
        arr = self._cache.get(i)
        if arr is None:
            arr = self._load(i)
            if arr.shape[:2] != self._hw:
                h, w = self._hw
                raise SAM2Error(
                    f"frame {self.paths[i]} is {arr.shape[1]}x{arr.shape[0]} but the first frame is {w}x{h} (WxH); "
                    "all frames of a sequence must have the same size"
                )
            self._cache.put(i, arr)
        return arr.copy()


# ---------------------------------------------------------------------------- video files


class VideoReader(FrameReader):
    """Frames of a video file, decoded with PyAV on demand (see the module docstring).

    Frame indices come from presentation timestamps,
    ``round((pts - start_pts) * time_base * average_rate)``, so seeking lands on the
    right frame. Videos without timestamps or frame rate are decoded from the start
    whenever an earlier frame is asked for.
    """

    def __init__(self, path: Union[str, Path], vid_stride: int = 1, cache_size: int = DEFAULT_CACHE_SIZE):
        self.path = Path(path)
        self.name = self.path.stem
        self.vid_stride = vid_stride
        self._cache = _LRU(cache_size)
        self._container: Optional[av.container.InputContainer] = None
        self._decoder: Optional[Iterator[av.VideoFrame]] = None
        self._pending: Optional[tuple[int, av.VideoFrame]] = None  # decoded, not yet consumed
        self._prev: Optional[tuple[int, av.VideoFrame]] = None  # last consumed frame since the (re)start
        self._next: Optional[int] = None  # original index the decoder yields next (None: unknown)
        self._last: int = -1  # original index of the last frame decoded since the (re)start
        self._open()
        stream = self._stream
        rate = stream.average_rate or stream.guessed_rate
        self._rate: Optional[Fraction] = Fraction(rate) if rate else None
        self._time_base: Optional[Fraction] = Fraction(stream.time_base) if stream.time_base else None
        self._start_pts: Optional[int] = None

        # Decode the first frame now: it validates the file and gives the start pts and size.
        self._decoder = self._container.decode(stream)
        first = self._next_frame(first=True)
        if first is None:
            self.close()
            raise SAM2Error(f"cannot read video {self.path}: no frames could be decoded")
        _, frame = first
        self._start_pts = frame.pts
        self._by_pts = self._start_pts is not None and self._rate is not None and self._time_base is not None
        self._hw = (int(frame.height), int(frame.width))
        self._pending = (0, frame)
        self._next = 0
        self._last = -1
        self._num_original = self._count_frames()
        self._length = math.ceil(self._num_original / vid_stride)

    # ------------------------------------------------------------ properties
    @property
    def length(self) -> Optional[int]:
        return self._length

    @property
    def fps(self) -> Optional[float]:
        return float(self._rate) / self.vid_stride if self._rate else None

    @property
    def source_fps(self) -> Optional[float]:
        """The video's own average frame rate (before ``vid_stride``)."""
        return float(self._rate) if self._rate else None

    def path_of(self, i: int) -> str:
        self._check_index(i)
        return str(self.path)

    # ------------------------------------------------------------ container handling
    def _open(self) -> None:
        self._container = _open_av(str(self.path), is_stream=False)
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"

    def close(self) -> None:
        if getattr(self, "_container", None) is not None:
            try:
                self._container.close()
            finally:
                self._container = None
                self._decoder = None
                self._pending = None
                self._prev = None
                self._next = None

    def _count_frames(self) -> int:
        """Exact number of frames: container metadata, else one pass over the packets."""
        if self._stream.frames and self._stream.frames > 0:
            return int(self._stream.frames)
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                return sum(1 for packet in container.demux(stream) if packet.pts is not None)
        except Exception as e:
            raise SAM2Error(f"cannot read video {self.path}: {_short_reason(e)}") from None

    def _index_of(self, frame: av.VideoFrame) -> int:
        """Original frame index of a decoded frame."""
        if self._by_pts and frame.pts is not None:
            return round((frame.pts - self._start_pts) * self._time_base * self._rate)
        return self._last + 1

    def _next_frame(self, first: bool = False) -> Optional[tuple[int, av.VideoFrame]]:
        """The next decoded ``(index, frame)`` or ``None`` at the end of the video."""
        if self._pending is not None:
            item, self._pending = self._pending, None
        else:
            try:
                frame = next(self._decoder)
            except StopIteration:
                return None
            except Exception as e:
                where = "" if first else f" after frame {self._last}"
                raise SAM2Error(f"cannot read video {self.path}{where}: {_short_reason(e)}") from None
            item = (0 if first else self._index_of(frame), frame)
        self._last = item[0]
        return item

    def _restart(self) -> None:
        """Go back to the first frame (reopening the file when seeking fails)."""
        try:
            if self._container is None:
                raise RuntimeError("closed")
            self._container.seek(self._start_pts or 0, stream=self._stream, backward=True, any_frame=False)
        except Exception:
            self.close()
            self._open()
        self._decoder = self._container.decode(self._stream)
        self._pending = None
        self._prev = None
        self._next = 0
        self._last = -1

    def _seek(self, j: int) -> None:
        """Position the decoder at the keyframe at or before original frame ``j``."""
        if not self._by_pts or self._container is None:
            self._restart()
            return
        pts = self._start_pts + math.floor(Fraction(j) / (self._rate * self._time_base))
        try:
            self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
        except Exception:
            self._restart()
            return
        self._decoder = self._container.decode(self._stream)
        self._pending = None
        self._prev = None
        self._next = None
        self._last = -1

    # ------------------------------------------------------------ reading
    def _read(self, i: int) -> np.ndarray:
        j = i * self.vid_stride
        arr = self._cache.get(j)
        if arr is None:
            arr = self._decode_to(j)
        return arr.copy()

    def _decode_to(self, j: int) -> np.ndarray:
        """Decode original frame ``j``, continuing, seeking or restarting as needed."""
        if self._container is None:
            self._restart()
        elif self._next is None or j < self._next:
            self._seek(j)
        elif j - self._next > SEEK_AHEAD_FRAMES and self._by_pts:
            self._seek(j)
        arr = self._decode_forward(j)
        if arr is None:  # the seek landed after frame j (odd keyframes or timestamps): start over
            self._restart()
            arr = self._decode_forward(j)
        if arr is None:
            raise SAM2Error(f"cannot read video {self.path}: frame {j} could not be found by its timestamp")
        return arr

    def _decode_forward(self, j: int) -> Optional[np.ndarray]:
        """Decode up to frame ``j``; ``None`` when the first frame decoded is already past it."""
        stride, keep = self.vid_stride, self._cache.size * self.vid_stride
        while True:
            item = self._next_frame()
            if item is None:
                return self._at_end(j)
            idx, frame = item
            if idx < j:
                self._prev = item
                # Keep the last few stride frames before j: reading backwards then hits the cache.
                if idx % stride == 0 and j - idx <= keep:
                    self._cache.put(idx, frame.to_ndarray(format="rgb24"))
                continue
            if idx > j:
                self._pending = item
                if self._prev is None:
                    return None
                # A gap in the timestamps (variable frame rate): frame j is the one still shown.
                arr = self._prev[1].to_ndarray(format="rgb24")
            else:
                self._prev = item
                arr = frame.to_ndarray(format="rgb24")
            self._cache.put(j, arr)
            self._next = j + 1
            return arr

    def _at_end(self, j: int) -> np.ndarray:
        """Frame ``j`` when the decoder ran out before it: the last frame if it is close, else an error."""
        tolerance = max(2, round(0.02 * self._num_original))
        if self._prev is not None and j - self._prev[0] <= tolerance:
            LOGGER.debug("%s: timestamps end at frame %d; frame %d repeats it", self.path, self._prev[0], j)
            arr = self._prev[1].to_ndarray(format="rgb24")
            self._cache.put(j, arr)
            return arr
        last = "no frame" if self._prev is None else f"frame {self._prev[0]}"
        raise SAM2Error(
            f"cannot read video {self.path}: decoding stopped at {last} but frame {j} was asked for "
            f"(the metadata says {self._num_original} frames); the file may be truncated"
        )


# ---------------------------------------------------------------------------- live streams


class StreamReader(FrameReader):
    """A webcam (OpenCV) or network stream (PyAV): frames can only be read in order.

    The stream is opened lazily, on the first iteration or when ``height``, ``width``
    or ``fps`` are first asked for; the frame read then is yielded first.
    """

    seekable = False

    def __init__(self, source: Union[int, str], vid_stride: int = 1):
        self.source = source
        self.vid_stride = vid_stride
        self.name = f"webcam{source}" if isinstance(source, int) else _stream_name(str(source))
        self._frames: Optional[Iterator[tuple[np.ndarray, Optional[float]]]] = None
        self._head: Optional[np.ndarray] = None
        self._fps: Optional[float] = None

    @property
    def length(self) -> Optional[int]:
        return None

    def _start(self) -> None:
        if self._frames is None:
            self._frames = self._webcam() if isinstance(self.source, int) else self._url()
            try:
                self._head = next(self._frames)
            except StopIteration:
                raise SAM2Error(f"cannot read stream {self.source}: it sent no frames") from None

    @property
    def frame_hw(self) -> tuple[int, int]:
        self._start()
        return int(self._head.shape[0]), int(self._head.shape[1])

    @property
    def fps(self) -> Optional[float]:
        self._start()
        return self._fps / self.vid_stride if self._fps else None

    def path_of(self, i: int) -> str:
        return str(self.source)

    def __getitem__(self, i: int) -> np.ndarray:
        raise UsageError(
            f"{self.source} is a live stream: frames can only be read in order; "
            "iterate over it, or save it to a video file first for random access"
        )

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        self._start()
        i = 0
        if self._head is not None:
            yield 0, self._head
            self._head, i = None, 1
        for i, frame in enumerate(self._frames, start=i):
            yield i, frame

    def close(self) -> None:
        frames, self._frames = getattr(self, "_frames", None), None
        if frames is not None:
            frames.close()  # runs the generators' cleanup (release the camera / container)

    def _webcam(self) -> Iterator[np.ndarray]:
        cap = cv2.VideoCapture(int(self.source))
        try:
            if not cap.isOpened():
                raise SAM2Error(
                    f"cannot open webcam {self.source}: check the camera index and that no other program is using it"
                )
            fps = cap.get(cv2.CAP_PROP_FPS)
            self._fps = float(fps) if fps and fps > 0 else None
            n = 0
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                if n % self.vid_stride == 0:
                    yield np.ascontiguousarray(bgr[..., ::-1])
                n += 1
        finally:
            cap.release()

    def _url(self) -> Iterator[np.ndarray]:
        container = _open_av(str(self.source), is_stream=True)
        try:
            stream = container.streams.video[0]
            self._fps = float(stream.average_rate) if stream.average_rate else None
            n = 0
            try:
                for frame in container.decode(stream):
                    if n % self.vid_stride == 0:
                        yield frame.to_ndarray(format="rgb24")
                    n += 1
            except Exception as e:
                raise SAM2Error(f"cannot read stream {self.source} after frame {n}: {_short_reason(e)}") from None
        finally:
            container.close()


def _stream_name(url: str) -> str:
    """A file-name-safe stem for a stream URL (``rtsp://cam.local/live`` -> ``cam.local_live``)."""
    rest = url.split("://", 1)[-1].split("?", 1)[0].split("@")[-1]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", rest).strip("_.")
    return stem[:64] or "stream"


# ---------------------------------------------------------------------------- opening


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
