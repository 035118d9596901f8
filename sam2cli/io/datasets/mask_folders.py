"""Image + mask folders (`sam2 val`): ``<data>/images/<name>.jpg`` and ``<data>/masks/<name>.png``.

A mask PNG is the image's instance map: palette or 8-bit grey, pixel value = object id, 0 the
background. Unlike DAVIS' palette PNGs, 255 is an object here, so a 0/255 binary mask is one
object. Images are found recursively, '.'-names skipped, sorted by relative path; ``masks/``
mirrors ``images/`` with the extension ``.png``. Every image needs its mask PNG at the image's
size (checked from the headers by :meth:`MaskFolders.check`). Every object has class 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np
from PIL import Image

from sam2cli.errors import UsageError

from .common import ImageDataset, _bad, _list_images, _stack


class MaskFolders(ImageDataset):
    """``ds[i]`` -> :class:`~.common.ImageSample` with one mask per object id, ascending."""

    def __init__(self, root: Path) -> None:
        self.img_dir, self.mask_dir = root / "images", root / "masks"
        if not self.mask_dir.is_dir():
            raise _bad(root, "has images/ but no masks/ folder (no annotations)",
                       "add masks/<name>.png instance maps (pixel value = object id), or give a data.yaml / COCO json")
        super().__init__(_list_images(self.img_dir), {0: "object"}, root, "val")
        self.mask_files: List[Path] = [(self.mask_dir / p.relative_to(self.img_dir)).with_suffix(".png")
                                       for p in self.files]

    def _masks(self, i: int, h: int, w: int):
        with Image.open(self.mask_files[i]) as img:
            lab = np.array(img)
        ids = [v for v in np.unique(lab) if v != 0]
        return _stack([lab == v for v in ids], [0] * len(ids), h, w)

    def check(self) -> None:
        if not self.files:
            raise _bad(self.img_dir, "has no images", "add images, e.g. images/0001.jpg")
        for p, m in zip(self.files, self.mask_files):
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


def is_mask_folders(root: Path) -> bool:
    return (root / "images").is_dir()


def open_mask_folders(root: Path) -> MaskFolders:
    """List and check ``root/images`` against ``root/masks``."""
    ds = MaskFolders(root)
    ds.check()
    return ds
