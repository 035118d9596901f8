"""The dataset layer: every reader `sam2 train` and `sam2 val` use, so both see the same objects.

    ds = open_dataset("ds/data.yaml", split="train")   # or "instances.json", or a DAVIS / SA-V folder
    check_dataset(ds)                                  # before training: raises UsageError (exit 2)
    sample = ds[0]                                     # ImageSample or VideoClip
    videos = open_vos("DAVIS/")                        # sam2 val: whole videos, checked
    images = open_eval_images("ds/data.yaml")          # sam2 val: a YOLO val split, a COCO json, images/ + masks/

Every error about a malformed dataset is a :class:`~sam2cli.errors.UsageError` whose message is
ONE line: the file (``file:line`` where a line is meaningful), what is wrong and how to fix it.
:func:`open_dataset` only lists files (it fails on a missing file, folder or split);
:func:`check_dataset` scans every label (without decoding the images) and fails on the first bad one.

Decisions (the contract the tests hold):

* **Which format** (:func:`dataset_kind`): a folder holding ``JPEGImages/`` (or
  ``JPEGImages_24fps/``) is videos (DAVIS or SA-V); ``data`` ending in ``.yaml``/``.yml`` (or a
  folder holding ``data.yaml``) is YOLO; ``.json`` is COCO; a folder holding ``images/`` is
  image + mask folders (`sam2 val` only).
* **DAVIS void**: pixel value 255 is no object, for `val` and `train` alike (:mod:`.davis`).
* **YOLO**, **COCO**, **videos**, **clips** and **mask folders**: see the docstrings of
  :mod:`.yolo`, :mod:`.coco`, :mod:`.vos`, :mod:`.clips` and :mod:`.mask_folders`.

Layout of the package: :mod:`.common` (samples, the error helper, image listing, the
:class:`ImageDataset` base), :mod:`.yolo`, :mod:`.coco`, :mod:`.mask_folders`, :mod:`.davis`
(the DAVIS / SA-V folder layout and pixel values), :mod:`.vos` (whole videos), :mod:`.clips`
(training clips of those videos); this module picks the reader and validates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from sam2cli.errors import UsageError

from .clips import VideoDataset
from .coco import COCO_PIXEL_TOL as COCO_PIXEL_TOL
from .coco import CocoDataset
from .common import VAL_EVERY, ImageDataset, ImageSample, PathLike, VideoClip, _bad
from .davis import VOID, find_vos_dirs
from .mask_folders import MaskFolders, is_mask_folders, open_mask_folders
from .vos import VosVideo, open_vos
from .yolo import COORD_TOL, YoloDataset
from .yolo import parse_yolo_label as parse_yolo_label
from .yolo import rasterize_polygon as rasterize_polygon

__all__ = [
    "ImageSample", "VideoClip", "ImageDataset", "YoloDataset", "CocoDataset", "VideoDataset", "MaskFolders",
    "VosVideo", "open_dataset", "check_dataset", "open_vos", "open_eval_images", "dataset_kind", "COORD_TOL",
    "VAL_EVERY", "VOID",
]

_KINDS = "give a DAVIS/SA-V folder, a YOLO data.yaml, a COCO json or a folder with images/ and masks/"


def dataset_kind(data: PathLike) -> str:
    """'video' or 'image' from the layout of ``data`` (UsageError when it is neither)."""
    p = Path(str(data)).expanduser()
    if p.is_dir() and find_vos_dirs(p) is not None:
        return "video"
    if p.suffix.lower() in (".yaml", ".yml", ".json") or (p.is_dir() and (
            is_mask_folders(p) or (p / "data.yaml").is_file() or (p / "data.yml").is_file())):
        return "image"
    if not p.exists():
        raise UsageError(f"data={data}: not found; {_KINDS}")
    raise UsageError(f"data={data}: not a dataset (no JPEGImages/, images/, data.yaml); {_KINDS}")


def open_eval_images(data: PathLike) -> ImageDataset:
    """`sam2 val`'s image data, checked: ``images/`` + ``masks/`` folders, a YOLO data.yaml's val
    split, or every image of a COCO json (its ``train`` split is all of it)."""
    p = Path(str(data)).expanduser()
    if p.is_dir() and is_mask_folders(p):
        return open_mask_folders(p)
    ds = open_dataset(p, split="train" if p.suffix.lower() == ".json" else "val")
    if isinstance(ds, VideoDataset):
        raise _bad(p, "is a video dataset", "use task=vos, or give a data.yaml, a COCO json or images/ + masks/")
    check_dataset(ds)
    return ds


def open_dataset(data: PathLike, split: str = "train", *, clip_len: int = 8, max_objects: Optional[int] = 3,
                 seed: Optional[int] = 0) -> Union[ImageDataset, VideoDataset]:
    """Open split ``split`` of the dataset ``data`` (data.yaml, instances.json or a DAVIS / SA-V folder).

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
        if find_vos_dirs(p) is not None:
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
    the image, RLE at the image size); DAVIS / SA-V masks (palette/grey PNG at their frame's size, a
    frame for every mask, enough frames for a clip starting on an object); and at least one object.
    """
    ds.check()
