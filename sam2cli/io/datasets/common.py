"""Shared parts of the dataset readers: samples, the one-line error helper, image files, the image base.

* :class:`ImageSample` / :class:`VideoClip` -- what ``ds[i]`` returns.
* :func:`_bad` -- every error about a malformed dataset is a :class:`~sam2cli.errors.UsageError`
  whose message is ONE line: the file (``file:line`` where a line is meaningful), what is wrong
  and how to fix it.
* :func:`_list_images` -- a split folder's images, recursively, sorted by relative path,
  '.'-names skipped.
* :func:`_every_nth` -- the deterministic 20% val split (every :data:`VAL_EVERY`-th item).
* :class:`ImageDataset` -- the base of the YOLO, COCO and mask-folder readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import cv2
import numpy as np
from PIL import Image

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.image import load_image
from sam2cli.io.sources import images_under

VAL_EVERY = 5  # the deterministic val split takes every 5th item (20%)
_EXIF_ORIENTATION = 0x0112

PathLike = Union[str, Path]


# ----------------------------------------------------------------------------- samples


@dataclass
class ImageSample:
    """One image with its instance masks."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    masks: np.ndarray  # (N, H, W) bool, N >= 0
    classes: np.ndarray  # (N,) int64
    file: str = ""  # the image's path


@dataclass
class VideoClip:
    """Consecutive frames of one video and the masks of the objects followed through them."""

    frames: list  # T x (H, W, 3) uint8 RGB
    masks: np.ndarray  # (T, N, H, W) bool: object n on frame t (all False: absent)
    obj_ids: np.ndarray  # (N,) int64: the ids of the mask PNGs
    video: str = ""  # the video's name
    frame_files: list = field(default_factory=list)  # T frame paths


# ----------------------------------------------------------------------------- helpers


def _bad(where: Any, problem: str, fix: str) -> UsageError:
    """A one-line UsageError ``where: problem; fix``."""
    msg = f"{where}: {problem}; {fix}"
    return UsageError(" ".join(msg.splitlines()))


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file as :func:`load_image` returns it (EXIF rotation applied), header only."""
    try:
        with Image.open(path) as img:
            w, h = img.size
            try:
                orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
            except Exception:
                orientation = 1
    except FileNotFoundError:
        raise _bad(path, "image not found", "restore the file or remove it from the dataset") from None
    except Exception:
        arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # what PIL cannot read, OpenCV may
        if arr is None:
            raise _bad(path, "cannot read the image (corrupt or not an image)",
                       "replace the file or remove it from the dataset") from None
        return int(arr.shape[0]), int(arr.shape[1])
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def _load(path: Path) -> np.ndarray:
    try:
        return load_image(path)
    except SAM2Error as e:
        raise _bad(path, f"cannot read the image ({e})", "replace the file or remove it from the dataset") from None


def _list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive), '.'-names skipped, sorted by relative POSIX path."""
    return [folder / rel for rel in images_under(folder)]


def _every_nth(items: Sequence, n: int = VAL_EVERY) -> list:
    return list(items[::n])


# ----------------------------------------------------------------------------- image datasets


class ImageDataset:
    """Images with instance masks. ``ds[i]`` -> :class:`ImageSample`; ``names`` maps class -> name."""

    kind = "images"

    def __init__(self, files: list[Path], names: dict[int, str], source: Path, split: str) -> None:
        self.files = files
        self.names = names
        self.source = source  # the data.yaml / json the dataset comes from
        self.split = split

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> ImageSample:
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} out of range for {len(self)} images")
        i %= len(self)
        image = _load(self.files[i])
        masks, classes = self._masks(i, image.shape[0], image.shape[1])
        return ImageSample(image=image, masks=masks, classes=classes, file=str(self.files[i]))

    def _masks(self, i: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def check(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source}, split={self.split!r}, {len(self)} images)"


def _stack(masks: list[np.ndarray], classes: list[int], h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    m = np.stack(masks) if masks else np.zeros((0, h, w), dtype=bool)
    return m, np.asarray(classes, dtype=np.int64).reshape(-1)

