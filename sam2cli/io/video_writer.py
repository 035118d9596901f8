"""Stream RGB frames into a video file (H.264, else MPEG-4), written atomically."""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

import av
import numpy as np

from sam2cli.errors import SAM2Error
from sam2cli.io.atomic import AtomicTarget, _CommitOnExit
from sam2cli.io.writer_args import PathLike

LOGGER = logging.getLogger("sam2cli")


class VideoWriter(_CommitOnExit):
    """Encode RGB frames into a video file with PyAV: H.264 (libx264, yuv420p), else MPEG-4 Part 2.

    Frames are written to a temp file that is renamed onto ``path`` by :meth:`close`;
    on an exception (``with`` block) or :meth:`abort` the temp is deleted. Odd sizes are
    padded to even by repeating the last row/column (yuv420p needs even sizes). A writer
    closed without any frame writes no file.
    """

    def __init__(self, path: PathLike, fps: Optional[float], width: int, height: int) -> None:
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"video size must be positive, got {self.width}x{self.height}")
        if fps is None or not math.isfinite(fps) or fps <= 0:
            fps = 30.0
        self.fps = float(fps)
        self.frames = 0
        self.codec = ""
        self._closed = False
        self._result: Optional[Path] = None
        self._target = AtomicTarget(self.path)
        try:
            self._container = av.open(str(self._target.tmp), mode="w")
        except Exception as e:
            self._target.discard()
            self._closed = True
            reason = getattr(e, "strerror", None) or str(e)
            raise SAM2Error(f"cannot write video {self.path}: {reason}; use a .mp4, .mkv, .mov or .avi path") from None
        try:
            self._stream = self._add_stream()
        except BaseException:
            self.abort()
            raise

    def _add_stream(self) -> Any:
        rate = Fraction(self.fps).limit_denominator(1001)
        w, h = self.width + self.width % 2, self.height + self.height % 2
        errors = []
        for codec in ("libx264", "mpeg4"):
            if codec not in av.codecs_available:
                continue
            try:
                stream = self._container.add_stream(codec, rate=rate)
            except Exception as e:  # encoder present in the list but unusable
                errors.append(f"{codec}: {e}")
                continue
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            if codec == "libx264":
                stream.options = {"crf": "20", "preset": "veryfast"}
            else:  # mpeg4's default bit rate is tiny: ask for a decent one
                stream.bit_rate = max(2_000_000, int(w * h * self.fps * 0.3))
            self.codec = codec
            return stream
        raise SAM2Error(
            f"cannot write video {self.path}: no H.264 (libx264) or MPEG-4 encoder in this PyAV build"
            + (f" ({'; '.join(errors)})" if errors else "")
        )

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(height, width, 3)`` uint8 RGB frame."""
        if self._closed:
            raise ValueError(f"video writer for {self.path} is closed")
        arr = np.asarray(frame)
        if arr.shape != (self.height, self.width, 3):
            raise ValueError(f"frame is {arr.shape}, expected {(self.height, self.width, 3)}")
        if arr.dtype != np.uint8:
            raise ValueError(f"frame dtype must be uint8, got {arr.dtype}")
        pad_h, pad_w = self.height % 2, self.width % 2
        if pad_h or pad_w:
            arr = np.pad(arr, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
        try:
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
        except Exception as e:
            self.abort()
            raise SAM2Error(f"cannot write video {self.path}: {getattr(e, 'strerror', None) or e}") from None
        self.frames += 1

    def close(self) -> Optional[Path]:
        """Flush, finish the file and rename it onto ``path``; returns it (``None`` if no frame was written)."""
        if self._closed:
            return self._result
        if self.frames == 0:
            LOGGER.warning("no frames written, %s not created", self.path)
            self.abort()
            return None
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        except Exception as e:
            self.abort()
            raise SAM2Error(f"cannot write video {self.path}: {getattr(e, 'strerror', None) or e}") from None
        self._closed = True
        self._result = self._target.commit()
        return self._result

    def abort(self) -> None:
        """Stop writing and delete the temp file; ``path`` is left untouched."""
        if self._closed:
            return
        self._closed = True
        try:
            self._container.close()
        except Exception:
            pass
        self._target.discard()

    def __del__(self) -> None:  # a writer dropped without close(): do not leave the temp file
        try:
            if not self._closed:
                self.abort()
        except Exception:
            pass
