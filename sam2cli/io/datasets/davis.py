"""The DAVIS (and SA-V) folder layout, and what a mask PNG's pixels mean: the one place both
`sam2 val` (:mod:`.vos`) and `sam2 train` (:mod:`.clips`) learn it from.

* **Folders** (:func:`find_vos_dirs`): frames in ``JPEGImages/`` (or SA-V's ``JPEGImages_24fps/``),
  masks in ``Annotations/`` (or ``Annotations_6fps/``). When the frames folder holds ``480p/``
  (DAVIS 2017's own layout) it is used, and ``Annotations/480p`` with it when that exists.
* **Videos of a split** (:func:`listed_videos`, :func:`all_videos`): the names in
  ``ImageSets/2017/<split>.txt``, else every video folder (sorted, '.'-names skipped).
* **Pixel values** (:func:`read_label`, :func:`label_ids`): a palette or 8-bit grey PNG whose
  value is the object id; 0 is background and :data:`VOID` (255, DAVIS' void label) is never an
  object: it is background, as DAVIS 2017's semi-supervised evaluation scores it (it passes no
  void mask to J and F), and `sam2 train` learns it as background. (Meta's training package
  reads every non-zero value as an object, 255 included; we follow the evaluation.) A 1-bit PNG
  reads as 0/1 (object 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

from sam2cli.errors import UsageError

from .common import _bad

VOID = 255  # DAVIS' void label: neither an object nor scored apart from the background
FRAME_DIRS = ("JPEGImages", "JPEGImages_24fps")
ANN_DIRS = ("Annotations", "Annotations_6fps")
LABEL_MODES = ("P", "L", "1")


def find_vos_dirs(root: Path) -> Optional[Tuple[Path, Optional[Path]]]:
    """(frames dir, annotations dir or None) of a DAVIS / SA-V folder; None when ``root`` is not one."""
    for fd in FRAME_DIRS:
        if (root / fd).is_dir():
            frames = root / fd
            anns = next((root / a for a in ANN_DIRS if (root / a).is_dir()), None)
            if (frames / "480p").is_dir():
                frames = frames / "480p"
                anns = anns / "480p" if anns is not None and (anns / "480p").is_dir() else anns
            return frames, anns
    return None


def listed_videos(root: Path, frames_dir: Path, split: str) -> Optional[List[str]]:
    """The videos named in ``ImageSets/2017/<split>.txt`` (each must have a frame folder), or None
    when that file does not exist."""
    listing = root / "ImageSets" / "2017" / f"{split}.txt"
    if not listing.is_file():
        return None
    names = []
    for lineno, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), 1):
        name = line.strip()
        if not name:
            continue
        if not (frames_dir / name).is_dir():
            raise _bad(f"{listing}:{lineno}", f"video {name!r} has no folder {frames_dir / name}",
                       "fix the name or add its frames")
        names.append(name)
    return names


def all_videos(frames_dir: Path) -> List[str]:
    """Every video folder of ``frames_dir``, sorted by name, '.'-names skipped."""
    return sorted(p.name for p in frames_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def mask_pngs(folder: Path) -> Dict[str, Path]:
    """{stem: path} of the ``.png`` files of ``folder`` ('.'-names skipped)."""
    return {p.stem: p for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() == ".png" and not p.name.startswith(".")}


def read_label(path: Path) -> np.ndarray:
    """(H, W) uint8 pixel values of a mask PNG (palette, 8-bit grey, or 1-bit as 0/1)."""
    try:
        with Image.open(path) as img:
            if img.mode not in LABEL_MODES:
                raise _bad(path, f"mask PNG has mode {img.mode}, not a palette or 8-bit grey image",
                           "save masks with pixel value = object id")
            return np.asarray(img, dtype=np.uint8)
    except UsageError:
        raise
    except FileNotFoundError:
        raise _bad(path, "mask PNG not found", "restore it") from None
    except Exception:
        raise _bad(path, "cannot read the mask PNG", "replace the file") from None


def label_ids(label: np.ndarray) -> List[int]:
    """The object ids of a label map, ascending: every value but 0 (background) and :data:`VOID`."""
    return [int(v) for v in np.unique(label) if v not in (0, VOID)]


def label_objects(label: np.ndarray) -> Dict[int, np.ndarray]:
    """{obj id: (H, W) bool} of a label map (void pixels belong to no object)."""
    return {oid: label == oid for oid in label_ids(label)}


def png_size(path: Path) -> Tuple[int, int]:
    """(H, W) of a mask PNG from its header."""
    try:
        with Image.open(path) as img:
            return img.size[1], img.size[0]
    except FileNotFoundError:
        raise _bad(path, "mask PNG not found", "restore it") from None
    except Exception:
        raise _bad(path, "cannot read the mask PNG", "replace the file") from None
