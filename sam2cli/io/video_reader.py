"""Compatibility name: :func:`open_frames` and the readers now live in :mod:`sam2cli.io.sources`.

Kept so ``from sam2cli.io.video_reader import FrameReader, open_frames`` goes on working.
"""

from sam2cli.io.sources import FrameReader, ImageSequenceReader, StreamReader, VideoReader, open_frames

__all__ = ["FrameReader", "ImageSequenceReader", "StreamReader", "VideoReader", "open_frames"]
