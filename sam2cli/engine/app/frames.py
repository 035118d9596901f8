"""Frames for the page, as JPEG: decoded on demand from a reader of the app's own (not the
tracker's, which the worker thread owns), with a bounded cache of encoded frames.

While Track runs, the worker offers each frame it has just decoded (`offer`): the page's
follow view then gets the tracker's pixels, encoded, instead of its own reader decoding the
same frames again beside the tracker (the same decoder on the same file: the same pixels)."""

import threading
from collections import OrderedDict
from typing import Callable, Optional

import cv2
import numpy as np

JPEG_QUALITY = 90
CACHE = 48  # encoded frames kept (a 1080p JPEG is ~200 KB: at most ~10 MB)
OFFERED = 4  # decoded frames offered by the tracker, kept until asked for (a 1080p one is 6 MB)


class FrameServer:
    def __init__(self, read: Callable[[int], np.ndarray], num_frames: int, close: Optional[Callable[[], None]] = None):
        self._read, self.num_frames, self._close = read, num_frames, close
        self._lock = threading.Lock()
        self._cache: "OrderedDict[int, bytes]" = OrderedDict()
        self._offered: "OrderedDict[int, np.ndarray]" = OrderedDict()

    def offer(self, frame: int, rgb: np.ndarray) -> None:
        """Frame `frame` (H, W, 3) uint8 RGB, decoded by someone else; it is not copied, so the
        caller must not change it. Only the newest OFFERED are kept; encoding waits for a request."""
        with self._lock:
            if frame in self._cache:
                return
            self._offered[frame] = rgb
            self._offered.move_to_end(frame)
            while len(self._offered) > OFFERED:
                self._offered.popitem(last=False)

    def jpeg(self, frame: int) -> bytes:
        with self._lock:
            data = self._cache.get(frame)
            if data is not None:
                self._cache.move_to_end(frame)
                return data
            rgb = self._offered.pop(frame, None)
            if rgb is None:
                rgb = self._read(frame)
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:  # pragma: no cover - cv2 encodes any uint8 image
                raise RuntimeError(f"cannot encode frame {frame} as JPEG")
            data = buf.tobytes()
            self._cache[frame] = data
            while len(self._cache) > CACHE:
                self._cache.popitem(last=False)
            return data

    def close(self) -> None:
        if self._close is not None:
            self._close()
