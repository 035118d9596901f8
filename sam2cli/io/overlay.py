"""Draw masks on images (one fixed colour per object id) and save images atomically."""

from __future__ import annotations

import colorsys
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from sam2cli.errors import SAM2Error
from sam2cli.io.atomic import write_bytes_atomic
from sam2cli.io.writer_args import IdsLike, PathLike, _as_masks, _obj_ids


def _encode_image(path: Path, rgb: np.ndarray) -> bytes:
    """Encode an RGB or gray uint8 image in the format given by ``path``'s extension."""
    ext = path.suffix.lower() or ".png"
    arr = rgb[..., ::-1] if rgb.ndim == 3 else rgb  # OpenCV wants BGR
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else []
    try:
        ok, buf = cv2.imencode(ext, np.ascontiguousarray(arr), params)
    except cv2.error:
        ok = False
    if not ok:
        raise SAM2Error(f"cannot write image {path}: unsupported extension {ext!r}; use .png or .jpg")
    return buf.tobytes()


@lru_cache(maxsize=1024)
def object_color(obj_id: int) -> tuple[int, int, int]:
    """A fixed, bright RGB colour for an object id (same id -> same colour on every frame).

    Hues step by the golden ratio, so consecutive ids get clearly different colours.
    """
    hue = (abs(int(obj_id)) * 0.618033988749895 + 0.05) % 1.0
    sat = 0.85 if obj_id % 2 else 0.7
    r, g, b = colorsys.hsv_to_rgb(hue, sat, 1.0)
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


def overlay(
    image: np.ndarray,
    masks: np.ndarray,
    obj_ids: IdsLike = None,
    line_width: int = 2,
    alpha: float = 0.5,
) -> np.ndarray:
    """Draw masks on an ``(H, W, 3)`` uint8 RGB image: translucent fill plus an outline.

    Each object is coloured by :func:`object_color` of its id (``obj_ids``, default 1..N).
    ``line_width=0`` draws no outline. Pixels outside every mask (and its outline) are
    left unchanged. Returns a new array.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {img.shape} {img.dtype}")
    m = _as_masks(masks)
    if m.shape[1:] != img.shape[:2]:
        raise ValueError(f"masks are {m.shape[1:]} but the image is {img.shape[:2]}")
    ids = _obj_ids(obj_ids, len(m))
    out = img.copy()
    alpha = float(np.clip(alpha, 0.0, 1.0))
    for mask, oid in zip(m, ids):
        if mask.any() and alpha > 0:
            color = np.array(object_color(oid), dtype=np.float32)
            px = out[mask].astype(np.float32)
            out[mask] = np.clip(np.rint(px * (1.0 - alpha) + color * alpha), 0, 255).astype(np.uint8)
    if line_width > 0:
        for mask, oid in zip(m, ids):
            if not mask.any():
                continue
            # Outline of every connected piece (drawing only; polygons for export use mask_to_polygon).
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(out, contours, -1, object_color(oid), int(line_width))
    return out


def save_overlay_image(
    path: PathLike,
    image: np.ndarray,
    masks: np.ndarray,
    obj_ids: IdsLike = None,
    line_width: int = 2,
    alpha: float = 0.5,
) -> Path:
    """Write :func:`overlay` of ``image`` and ``masks`` to ``path`` (format from the extension)."""
    return save_image(path, overlay(image, masks, obj_ids=obj_ids, line_width=line_width, alpha=alpha))


def save_image(path: PathLike, rgb: np.ndarray) -> Path:
    """Write an RGB (or gray) uint8 image atomically, format from the extension."""
    path = Path(path)
    return write_bytes_atomic(path, _encode_image(path, rgb))
