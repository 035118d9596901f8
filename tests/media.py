"""Test media: short h264 clips encoded with PyAV, as a user's phone or camera would write them."""

from pathlib import Path
from typing import Iterable

import av
import numpy as np


def write_mp4(path: Path, frames: Iterable[np.ndarray], fps: int = 10) -> Path:
    """Encode (H, W, 3) uint8 RGB frames (H, W even) as an h264 mp4 at `fps`."""
    c = av.open(str(path), "w")
    s = None
    for img in frames:
        if s is None:
            s = c.add_stream("libx264", rate=fps)
            s.height, s.width = img.shape[:2]
            s.pix_fmt = "yuv420p"
        for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path
