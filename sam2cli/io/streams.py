"""Live sources: :class:`StreamReader` for a webcam (OpenCV) or a network stream (PyAV).

A webcam index or an RTSP/RTMP/HTTP URL is not seekable: only ``iter(reader)`` (positions and
images) and ``reader.frames()`` (:class:`~sam2cli.io.frames.Frame` records with their original
index) work, and ``len`` is unknown. URLs are decoded by :func:`~sam2cli.io.av_decode.decode_av`,
the same decoder `sam2 predict` streams video files with.
"""

from __future__ import annotations

import re
from typing import Iterator, Optional, Union

import cv2
import numpy as np

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.av_decode import decode_av
from sam2cli.io.frames import Frame, FrameReader


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
        self._frames: Optional[Iterator[Frame]] = None
        self._head: Optional[Frame] = None
        self._fps: Optional[float] = None

    @property
    def length(self) -> Optional[int]:
        return None

    def _start(self) -> None:
        if self._frames is None:
            if isinstance(self.source, int):
                self._frames = webcam_frames(self.source, self.vid_stride)
            else:
                self._frames = decode_av(str(self.source), self.vid_stride, is_stream=True)
            try:
                self._head = next(self._frames)
            except StopIteration:
                raise SAM2Error(f"cannot read stream {self.source}: it sent no frames") from None
            self._fps = self._head.fps
            self._hw = (int(self._head.image.shape[0]), int(self._head.image.shape[1]))

    @property
    def frame_hw(self) -> tuple[int, int]:
        self._start()
        return self._hw

    @property
    def source_fps(self) -> Optional[float]:
        self._start()
        return self._fps

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
            yield 0, self._head.image
            self._head, i = None, 1
        for i, frame in enumerate(self._frames, start=i):
            yield i, frame.image

    def close(self) -> None:
        frames, self._frames = getattr(self, "_frames", None), None
        if frames is not None:
            frames.close()  # runs the generators' cleanup (release the camera / container)


def webcam_frames(index: int, vid_stride: int = 1) -> Iterator[Frame]:
    """Every ``vid_stride``-th frame of a local camera (OpenCV) as RGB; one line if it can't open."""
    cap = cv2.VideoCapture(index)
    try:
        if not cap.isOpened():
            raise SAM2Error(
                f"cannot open webcam {index}: check the camera index and that no other program is using it"
            )
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = float(fps) if fps and fps > 0 else None
        i = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            if i % vid_stride == 0:
                yield Frame(image=np.ascontiguousarray(bgr[..., ::-1]), path=str(index), index=i, is_video=True, fps=fps)
            i += 1
    finally:
        cap.release()


def _stream_name(url: str) -> str:
    """A file-name-safe stem for a stream URL (``rtsp://cam.local/live`` -> ``cam.local_live``)."""
    rest = url.split("://", 1)[-1].split("?", 1)[0].split("@")[-1]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", rest).strip("_.")
    return stem[:64] or "stream"
