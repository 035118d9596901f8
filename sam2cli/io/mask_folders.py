"""Image + mask folders for `sam2 val`: ``<data>/images/<name>.jpg`` and ``<data>/masks/<name>.png``.

A mask PNG is the image's instance map: palette or 8-bit grey, pixel value = object id, 0 the
background (a 0/255 binary mask is one object). Images are found recursively, '.'-names skipped,
sorted by relative path; ``masks/`` mirrors ``images/`` with the extension ``.png``. Every image
needs its mask PNG at the image's size (checked from the headers by :func:`open_mask_folders`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List

import numpy as np
from PIL import Image

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.image import load_image
from sam2cli.io.sources import images_under


def _bad(where, problem: str, fix: str) -> UsageError:
    return UsageError(" ".join(f"{where}: {problem}; {fix}".split()))


@dataclass
class MaskedImage:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    masks: np.ndarray  # (N, H, W) bool, one per object id in ascending order
    file: str = ""


class MaskFolders:
    """``ds[i]`` -> :class:`MaskedImage`."""

    def __init__(self, images: List[Path], masks: List[Path]):
        self.images, self.mask_files = images, masks

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> MaskedImage:
        try:
            image = load_image(self.images[i])
        except SAM2Error as e:
            raise SAM2Error(f"{self.images[i]}: cannot read the image ({e})") from None
        with Image.open(self.mask_files[i]) as img:
            lab = np.array(img)
        ids = [v for v in np.unique(lab) if v != 0]
        masks = np.stack([lab == v for v in ids]) if ids else np.zeros((0, *lab.shape), bool)
        return MaskedImage(image, masks, str(self.images[i]))


def is_mask_folders(root: Path) -> bool:
    return (root / "images").is_dir()


def open_mask_folders(root: Path) -> MaskFolders:
    """List and check ``root/images`` against ``root/masks``."""
    img_dir, mask_dir = root / "images", root / "masks"
    if not mask_dir.is_dir():
        raise _bad(root, "has images/ but no masks/ folder (no annotations)",
                   "add masks/<name>.png instance maps (pixel value = object id), or give a data.yaml / COCO json")
    images = [img_dir / rel for rel in images_under(img_dir)]
    if not images:
        raise _bad(img_dir, "has no images", "add images, e.g. images/0001.jpg")
    masks = []
    for p in images:
        m = (mask_dir / p.relative_to(img_dir)).with_suffix(".png")
        if not m.is_file():
            raise _bad(p, f"has no mask {m}", "add its instance mask PNG (pixel value = object id)")
        try:
            with Image.open(m) as mi, Image.open(p) as ii:
                if mi.mode not in ("P", "L"):
                    raise _bad(m, f"mask PNG has mode {mi.mode}, not a palette or 8-bit grey image",
                               "save masks with pixel value = object id")
                if mi.size != ii.size:
                    raise _bad(m, f"mask is {mi.size[0]}x{mi.size[1]} but its image {p.name} is "
                               f"{ii.size[0]}x{ii.size[1]}", "save the mask at the image's size")
        except UsageError:
            raise
        except Exception:
            raise _bad(m, "cannot read the mask PNG or its image", "replace the file") from None
        masks.append(m)
    return MaskFolders(images, masks)
