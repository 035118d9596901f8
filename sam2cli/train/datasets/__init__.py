"""Dataset readers of `sam2 train`: YOLO segmentation, COCO instances JSON and DAVIS videos.

    ds = open_dataset("ds/data.yaml", split="train")   # or "instances.json", or a DAVIS folder
    check_dataset(ds)                                  # before training: raises UsageError (exit 2)
    sample = ds[0]                                     # ImageSample or VideoClip

Every error about a malformed dataset is a :class:`~sam2cli.errors.UsageError` whose message is
ONE line: the file (``file:line`` where a line is meaningful), what is wrong and how to fix it.
:func:`open_dataset` only lists files (it fails on a missing file, folder or split);
:func:`check_dataset` scans every label (without decoding the images) and fails on the first bad one.

Decisions (the contract the tests hold):

* **Which format**: ``data`` ending in ``.yaml``/``.yml`` (or a folder holding ``data.yaml``) is
  YOLO; ``.json`` is COCO; a folder holding ``JPEGImages/`` is DAVIS.
* **YOLO**, **COCO**, **DAVIS** and **clips**: see the docstrings of :mod:`.yolo`, :mod:`.coco` and
  :mod:`.davis`.

Layout of the package: :mod:`.common` (samples, the error helper, image listing, the
:class:`ImageDataset` base), :mod:`.yolo`, :mod:`.coco`, :mod:`.davis`; this module picks the
reader (:func:`open_dataset`) and validates (:func:`check_dataset`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from sam2cli.errors import UsageError

from .coco import COCO_PIXEL_TOL as COCO_PIXEL_TOL
from .coco import CocoDataset
from .common import VAL_EVERY, ImageDataset, ImageSample, PathLike, VideoClip, _bad
from .davis import VideoDataset
from .yolo import COORD_TOL, YoloDataset
from .yolo import parse_yolo_label as parse_yolo_label
from .yolo import rasterize_polygon as rasterize_polygon

__all__ = [
    "ImageSample", "VideoClip", "ImageDataset", "YoloDataset", "CocoDataset", "VideoDataset",
    "open_dataset", "check_dataset", "COORD_TOL", "VAL_EVERY",
]


def open_dataset(data: PathLike, split: str = "train", *, clip_len: int = 8, max_objects: Optional[int] = 3,
                 seed: Optional[int] = 0) -> Union[ImageDataset, VideoDataset]:
    """Open split ``split`` of the dataset ``data`` (data.yaml, instances.json or a DAVIS folder).

    ``clip_len``, ``max_objects`` and ``seed`` apply to videos only. Lists files only; call
    :func:`check_dataset` to validate every label before training.
    """
    if data in (None, ""):
        raise UsageError("data= is required: give a YOLO data.yaml, a COCO instances.json or a DAVIS folder")
    p = Path(str(data)).expanduser()
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return YoloDataset(p, split)
    if suffix == ".json":
        return CocoDataset(p, split)
    if p.is_dir():
        if (p / "JPEGImages").is_dir():
            return VideoDataset(p, split, clip_len=clip_len, max_objects=max_objects, seed=seed)
        for name in ("data.yaml", "data.yml"):
            if (p / name).is_file():
                return YoloDataset(p / name, split)
        raise _bad(p, "is not a dataset folder (no JPEGImages/ nor data.yaml)",
                   "give data=path/to/data.yaml (YOLO), instances.json (COCO) or a DAVIS folder")
    if not p.exists():
        raise _bad(p, "dataset not found", "give data=path/to/data.yaml (YOLO), instances.json (COCO) or a DAVIS folder")
    raise _bad(p, "unknown dataset format", "give data=path/to/data.yaml (YOLO), instances.json (COCO) or a DAVIS folder")


def check_dataset(ds: Union[ImageDataset, VideoDataset]) -> None:
    """Scan every label of ``ds`` (images: headers only) and raise UsageError on the first problem.

    Checks: images exist and are readable; YOLO lines (numbers, class in names, >= 3 points,
    coordinates in 0..1); COCO annotations (image and category ids, polygons of >= 3 points inside
    the image, RLE at the image size); DAVIS masks (palette/grey PNG at their frame's size, a frame
    for every mask, enough frames for a clip starting on an object); and at least one object.
    """
    ds.check()
