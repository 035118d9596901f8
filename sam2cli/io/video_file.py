"""Random access to the frames of a video file: :class:`VideoReader`, decoded with PyAV.

Reading forwards continues the decoder; reading backwards (or far ahead) seeks to the
keyframe before the wanted frame and decodes forward from there. A small LRU cache
keeps the last frames.
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional, Union

import av
import numpy as np

from sam2cli.errors import SAM2Error
from sam2cli.io.av_decode import open_av, short_reason
from sam2cli.io.frames import DEFAULT_CACHE_SIZE, FrameReader, _LRU

LOGGER = logging.getLogger("sam2cli")

# Reading more than this many frames ahead of the decoder seeks instead of decoding through.
SEEK_AHEAD_FRAMES = 48


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
    def source_fps(self) -> Optional[float]:
        return float(self._rate) if self._rate else None

    def path_of(self, i: int) -> str:
        self._check_index(i)
        return str(self.path)

    # ------------------------------------------------------------ container handling
    def _open(self) -> None:
        self._container = open_av(str(self.path), is_stream=False)
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
        container = open_av(str(self.path), is_stream=False)
        try:
            stream = container.streams.video[0]
            return sum(1 for packet in container.demux(stream) if packet.pts is not None)
        except Exception as e:
            raise SAM2Error(f"cannot read video {self.path}: {short_reason(e)}") from None
        finally:
            container.close()

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
                raise SAM2Error(f"cannot read video {self.path}{where}: {short_reason(e)}") from None
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
