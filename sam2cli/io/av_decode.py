"""Decoding with PyAV: open a video file or stream, decode its frames, probe its size and length.

:func:`decode_av` is the one sequential decoder, for video files (`sam2 predict`) and network
streams (every command, through :class:`~sam2cli.io.streams.StreamReader`); random access to a
video file is :class:`~sam2cli.io.video_file.VideoReader`. Every failure becomes a one-line
:class:`~sam2cli.errors.SAM2Error` of the form ``cannot read video|stream <src>[ at frame N]: <reason>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional, Union

import av

from sam2cli.errors import SAM2Error
from sam2cli.io.frames import Frame


def short_reason(e: BaseException) -> str:
    """A one-line reason from a PyAV/FFmpeg or OS error, without errno noise or the file name."""
    reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return str(reason).splitlines()[0].strip()


def open_av(src: str, is_stream: bool) -> "av.container.InputContainer":
    """Open ``src`` with PyAV, turning failures into a one-line SAM2Error."""
    what = "stream" if is_stream else "video"
    options = {"rtsp_transport": "tcp"} if src.lower().startswith(("rtsp://", "rtsps://")) else {}
    try:
        container = av.open(src, mode="r", container_options=options, timeout=10.0 if is_stream else None)
    except Exception as e:  # FFmpegError, OSError, ...
        raise SAM2Error(f"cannot read {what} {src}: {short_reason(e)}") from None
    if not container.streams.video:
        container.close()
        raise SAM2Error(f"cannot read {what} {src}: it has no video stream")
    return container


def decode_av(src: str, vid_stride: int, is_stream: bool) -> Iterator[Frame]:
    """Decode every ``vid_stride``-th frame of a video file or stream with PyAV, one at a time.

    Each :class:`Frame` carries its original index and the stream's own frame rate.
    """
    what = "stream" if is_stream else "video"
    container = open_av(src, is_stream)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate) if stream.average_rate else None
        i = -1
        try:
            for i, frame in enumerate(container.decode(stream)):
                if i % vid_stride == 0:
                    image = frame.to_ndarray(format="rgb24")
                    yield Frame(image=image, path=src, index=i, is_video=True, fps=fps)
        except SAM2Error:
            raise
        except Exception as e:
            where = f" at frame {i + 1}" if i >= 0 else ""
            raise SAM2Error(f"cannot read {what} {src}{where}: {short_reason(e)}") from None
        if i < 0:
            raise SAM2Error(f"cannot read {what} {src}: no frames could be decoded")
    finally:
        container.close()


def video_frame_count(path: Union[str, Path]) -> Optional[int]:
    """Frame count from container metadata (or duration x fps); ``None`` when unreadable."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            rate = stream.average_rate
            if rate and stream.duration and stream.time_base:
                return max(1, round(float(stream.duration * stream.time_base * rate)))
            if rate and container.duration:
                return max(1, round(container.duration / av.time_base * float(rate)))
    except Exception:
        return None
    return None


def probe_video(path: Union[str, Path]) -> tuple[int, int, Optional[float], Optional[int]]:
    """``(width, height, fps, frame_count)`` of a video file; raises SAM2Error when unreadable.

    ``fps`` and ``frame_count`` are ``None`` when the container does not say.
    """
    container = open_av(str(path), is_stream=False)
    try:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        fps = float(stream.average_rate) if stream.average_rate else None
    finally:
        container.close()
    return width, height, fps, video_frame_count(path)
