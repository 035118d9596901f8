"""The frame record, the :class:`FrameReader` interface and its cache, frame folders.

Frame index convention (every reader and decoder in :mod:`sam2cli.io` keeps it): a reader's
*position* ``i`` counts the frames it yields after ``vid_stride``, and is what ``reader[i]``
and ``for i, image in reader`` use; the frame's *original index*, its number in the video or
frame folder, is ``i * vid_stride``. A :class:`Frame` carries the original index
(``Frame.index``), 0 for still images. `sam2 predict` names video outputs by the original
index, `sam2 track` by the position (its prompts' ``frame`` numbers are positions).

:class:`ImageSequenceReader` reads a frame folder (``00000.jpg, 00001.jpg, ...`` in
:func:`list_frame_folder` order), a glob, a ``.txt`` list or a list of image paths, or one
image. Frames are loaded from disk on demand; the whole video is never held in memory.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

from sam2cli.errors import SAM2Error
from sam2cli.io.image import load_image

FRAME_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")
DEFAULT_CACHE_SIZE = 8


@dataclass
class Frame:
    """One decoded image or video frame.

    ``image`` is ``(H, W, 3)`` uint8 RGB; ``index`` is the frame's original index within its
    video (counting every decoded frame, also those skipped by ``vid_stride``) and 0 for still
    images; ``fps`` is the video's own average frame rate (before ``vid_stride``) when known.
    """

    image: np.ndarray
    path: str
    index: int = 0
    is_video: bool = False
    fps: Optional[float] = None


def natural_key(text: str) -> list[Union[int, str]]:
    """Sort key that orders embedded numbers numerically: ``f2 < f10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


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


class FrameReader:
    """Frames of one source, addressable by index (see the module docstring).

    Attributes: ``name`` (stem for output file names), ``height``, ``width``,
    ``source_fps`` (the source's own frame rate, ``None`` when unknown, e.g. for frame
    folders), ``fps`` (that of the frames this reader yields: ``source_fps / vid_stride``),
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
    def source_fps(self) -> Optional[float]:
        return None

    @property
    def fps(self) -> Optional[float]:
        rate = self.source_fps
        return rate / self.vid_stride if rate else None

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

    def frames(self) -> Iterator[Frame]:
        """Every frame, in order, as a :class:`Frame` carrying its original index ``i * vid_stride``."""
        for i, image in self:
            yield Frame(image=image, path=self.path_of(i), index=i * self.vid_stride, is_video=True,
                        fps=self.source_fps)

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
