"""Load images from files, PIL images or numpy arrays as HxWx3 uint8 RGB arrays.

Every image that enters sam2cli goes through :func:`load_image`, so the rest of the
code can rely on one layout: ``(H, W, 3)``, ``uint8``, RGB channel order, C-contiguous.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import cv2
import numpy as np
from PIL import Image, ImageOps

from sam2cli.errors import SAM2Error, UsageError

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

ImageSource = Union[str, Path, Image.Image, np.ndarray]

_EXIF_ORIENTATION = 0x0112


def is_image_file(path: str | Path) -> bool:
    """True when ``path`` has one of the supported image extensions (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def load_mask(src: ImageSource) -> np.ndarray:
    """A mask image (any channels, any depth) -> (H, W) bool: nonzero pixels are the object."""
    return load_image(src).max(axis=2) > 0


def load_image(src: ImageSource) -> np.ndarray:
    """Return ``src`` as a contiguous ``(H, W, 3)`` uint8 RGB array.

    ``src`` may be a file path (str or Path), a PIL image or a numpy array.
    Numpy arrays are assumed to be in RGB(A) order already (not OpenCV's BGR);
    accepted shapes are (H, W), (H, W, 1), (H, W, 3) and (H, W, 4), with dtype uint8,
    uint16 (scaled by 1/257), bool, or float in [0, 1] (scaled by 255).
    Alpha channels are dropped, grayscale is replicated to three channels, and
    EXIF orientation is applied for files and PIL images.
    """
    if isinstance(src, (str, Path)):
        return _load_path(Path(src))
    if isinstance(src, Image.Image):
        return _from_pil(ImageOps.exif_transpose(src))
    if isinstance(src, np.ndarray):
        return _from_array(src)
    raise UsageError(
        f"cannot use a {type(src).__name__} as an image; pass a file path, a PIL image or an HxWx3 RGB numpy array"
    )


def _load_path(path: Path) -> np.ndarray:
    """Decode an image file with PIL, falling back to OpenCV for what PIL cannot read."""
    if not path.exists():
        raise SAM2Error(f"image not found: {path}")
    if not path.is_file():
        raise SAM2Error(f"image not found: {path} is not a file")
    try:
        with Image.open(path) as img:
            if not _is_16bit_color(img):
                return _from_pil(ImageOps.exif_transpose(img))
            # PIL keeps only the high byte of 16-bit colour; OpenCV reads it fully.
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
            return _apply_orientation(_load_with_cv2(path), orientation)
    except Exception:  # PIL cannot decode (or convert) it: let OpenCV try
        pass
    return _load_with_cv2(path)


def _load_with_cv2(path: Path) -> np.ndarray:
    """Decode with OpenCV (unchanged depth and channels) and convert BGR(A) to RGB."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
        arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except Exception:
        arr = None
    if arr is None:
        raise SAM2Error(f"cannot read image {path}: the file is corrupt or not an image")
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = arr[..., [2, 1, 0]]  # BGR(A) -> RGB, alpha dropped
    try:
        return _from_array(arr)
    except UsageError:
        raise SAM2Error(f"cannot read image {path}: unsupported pixel format {arr.dtype} {arr.shape}") from None


def _is_16bit_color(img: Image.Image) -> bool:
    """True for RGB/RGBA files stored with 16 bits per channel (e.g. 48-bit PNG or TIFF)."""
    if img.mode not in ("RGB", "RGBA"):
        return False
    for tile in getattr(img, "tile", None) or []:
        args = tile[3] if len(tile) > 3 else None
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation tag (1-8) to an HxWxC array, like ImageOps.exif_transpose."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(arr)) if op else arr


def _from_pil(img: Image.Image) -> np.ndarray:
    """Convert a PIL image of any common mode to HxWx3 uint8 RGB."""
    mode = img.mode
    if mode.startswith("I"):  # 'I;16', 'I;16B', 'I' (32-bit int): treat as 16-bit range
        arr = np.asarray(img).astype(np.float64)
        return _gray_to_rgb(np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8))
    if mode == "F":
        return _from_array(np.asarray(img))
    if mode in ("1", "L", "RGB"):
        return _from_array(np.asarray(img))
    if mode == "LA":
        return _from_array(np.asarray(img.getchannel(0)))
    if mode == "RGBA":
        return _from_array(np.asarray(img)[..., :3])
    return _from_array(np.asarray(img.convert("RGB")))  # P, PA, CMYK, YCbCr, LAB, HSV, ...


def _from_array(arr: np.ndarray) -> np.ndarray:
    """Convert an RGB(A) / gray numpy array of a supported dtype to HxWx3 uint8 RGB."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise UsageError(
            f"cannot use an array of shape {tuple(arr.shape)} as an image; expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)"
        )
    arr = _to_uint8(arr)
    return _gray_to_rgb(arr) if arr.ndim == 2 else np.ascontiguousarray(arr)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale pixel values of a supported dtype to uint8."""
    kind = arr.dtype.kind
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        return np.rint(arr / 257.0).astype(np.uint8)
    if kind == "f":
        arr = np.nan_to_num(arr.astype(np.float64), nan=0.0)
        if arr.size and (arr.max() > 1.0 + 1e-3 or arr.min() < -1e-3):
            raise UsageError(
                f"float image values must be in [0, 1], got [{arr.min():g}, {arr.max():g}]; divide by 255 or pass a uint8 array"
            )
        return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    if kind in "iu" and (arr.size == 0 or (arr.min() >= 0 and arr.max() <= 255)):
        return arr.astype(np.uint8)
    raise UsageError(
        f"unsupported image dtype {arr.dtype}; use uint8 (0-255), uint16, bool or float in [0, 1]"
    )


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    """Replicate an (H, W) array into a contiguous (H, W, 3) array."""
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
