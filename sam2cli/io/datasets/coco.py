"""COCO instances JSON reader of `sam2 train` and `sam2 val` (``data=instances.json``).

A ``file_name`` is looked up, per image, in the json's folder, then in ``images/`` beside the
json, then (``sam2 annotate``'s layout) in the json's folder with its last ``labels`` component
replaced by ``images``; an absolute ``file_name`` is used as is. Polygons (list of
``[x1, y1, ...]`` in pixel-edge coordinates) and RLE (compressed string or uncompressed list
counts) are decoded with pycocotools; ``iscrowd: 1`` objects are skipped (neither read nor
checked). Classes are the raw ``category_id`` and ``names`` is ``{category id: name}`` (from
``categories``; when that key is absent, any id is accepted).

Splits: ``train`` is every image of the file. ``val`` is the sibling file whose name has its
last ``train`` replaced by ``val`` (``instances_train.json`` -> ``instances_val.json``) when it
exists, else a deterministic 20% of the images: every 5th image in ``id`` order, starting at the
first (so those images are also in train: validation then measures fit, not generalisation).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sam2cli.io.coco_rle import rle_to_mask

from .common import ImageDataset, PathLike, _bad, _every_nth, _image_size, _stack

COCO_PIXEL_TOL = 1.0  # COCO polygon vertices may lie this many pixels outside the image


class CocoDataset(ImageDataset):
    """A COCO instances JSON split (see the module docstring for paths and splits)."""

    def __init__(self, json_path: PathLike, split: str = "train") -> None:
        json_path = Path(json_path).expanduser()
        if not json_path.is_file():
            raise _bad(json_path, "dataset file not found", "give data=path/to/instances.json")
        self.split_file = json_path
        self.held_out = False
        if split not in ("train", "val"):
            raise _bad(json_path, f"unknown split {split!r} for a COCO file", "use split train or val")
        if split == "val":
            stem = json_path.name
            k = stem.rfind("train")
            if k >= 0:
                sib = json_path.with_name(stem[:k] + "val" + stem[k + 5:])
                if sib.is_file():
                    self.split_file = sib
                    self.held_out = True
        data = self._read(self.split_file)
        images = data.get("images")
        if not isinstance(images, list):
            raise _bad(self.split_file, "has no 'images' list", "write a COCO instances file with images, annotations, categories")
        anns = data.get("annotations", [])
        if not isinstance(anns, list):
            raise _bad(self.split_file, "'annotations' is not a list", "write a COCO instances file")
        cats = data.get("categories")
        self._any_category = cats is None
        names: dict[int, str] = {}
        for k, c in enumerate(cats or []):
            try:
                names[int(c["id"])] = str(c.get("name", c["id"]))
            except (KeyError, TypeError, ValueError):
                raise _bad(self.split_file, f"categories[{k}] has no integer id", 'write {"id": 1, "name": "..."}') from None
        self._images: list[dict] = []
        for k, im in enumerate(images):
            if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
                raise _bad(self.split_file, f"images[{k}] has no id or file_name",
                           'write {"id": 1, "file_name": "a.jpg", "height": H, "width": W}')
            self._images.append(im)
        self._images.sort(key=lambda im: (str(type(im["id"])), im["id"]))
        if split == "val" and not self.held_out:
            self._images = _every_nth(self._images)
        ids = {im["id"] for im in self._images}
        self._all_image_ids = {im["id"] for im in images}
        self._anns: dict[Any, list[tuple[int, dict]]] = {i: [] for i in ids}
        self._orphans: list[tuple[int, dict]] = []
        for k, a in enumerate(anns):
            if not isinstance(a, dict):
                raise _bad(self.split_file, f"annotations[{k}] is not an object", "write COCO annotation objects")
            if a.get("iscrowd", 0):
                continue
            iid = a.get("image_id")
            if iid in self._anns:
                self._anns[iid].append((k, a))
            elif iid not in self._all_image_ids:
                self._orphans.append((k, a))
        self._roots = self._candidate_roots(self.split_file)
        self._paths: dict[int, Path] = {}
        super().__init__([], names, json_path, split)
        self.files = _LazyPaths(self)
        if self._any_category:
            used = {int(a.get("category_id", 0)) for v in self._anns.values() for _, a in v if _is_int(a.get("category_id"))}
            self.names = {c: str(c) for c in sorted(used)}

    @staticmethod
    def _read(path: Path) -> dict:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            raise _bad(f"{path}:{e.lineno}", f"invalid JSON ({e.msg}, column {e.colno})", "fix the file's syntax") from None
        except UnicodeDecodeError:
            raise _bad(path, "is not UTF-8 JSON", "save the file as UTF-8 JSON") from None
        if not isinstance(data, dict):
            raise _bad(path, "is not a JSON object", "write a COCO instances file with images, annotations, categories")
        return data

    @staticmethod
    def _candidate_roots(json_path: Path) -> list[Path]:
        folder = json_path.parent
        roots = [folder, folder / "images"]
        parts = folder.resolve().parts
        if "labels" in parts:
            k = len(parts) - 1 - parts[::-1].index("labels")
            roots.append(Path(*parts[:k], "images", *parts[k + 1:]))
        return roots

    def image_path(self, i: int) -> Path:
        """Where image ``i`` is (the first candidate folder that has it; the first one otherwise)."""
        if i not in self._paths:
            name = Path(str(self._images[i]["file_name"]))
            if name.is_absolute():
                self._paths[i] = name
            else:
                self._paths[i] = next((r / name for r in self._roots if (r / name).is_file()), self._roots[0] / name)
        return self._paths[i]

    def __len__(self) -> int:
        return len(self._images)

    def _where(self, k: int, a: dict) -> str:
        return f"{self.split_file}: annotations[{k}] (id {a.get('id', '?')})"

    def _decode(self, k: int, a: dict, h: int, w: int) -> np.ndarray:
        """(H, W) bool mask of annotation ``a`` (index ``k``) on an ``h`` x ``w`` image, validated."""
        from pycocotools import mask as mask_utils

        where = self._where(k, a)
        seg = a.get("segmentation")
        if isinstance(seg, list):
            if not seg:
                raise _bad(where, "has an empty segmentation", "give polygons or an RLE, or remove the annotation")
            polys = []
            for j, poly in enumerate(seg):
                if not isinstance(poly, list) or not all(_is_number(v) for v in poly):
                    raise _bad(where, f"polygon {j} is not a list of numbers", "write [x1, y1, x2, y2, ...] in pixels")
                if len(poly) % 2:
                    raise _bad(where, f"polygon {j} has an odd number of coordinates ({len(poly)})", "give x y pairs")
                if len(poly) < 6:
                    raise _bad(where, f"polygon {j} has {len(poly) // 2} points, fewer than 3",
                               "give polygons of at least 3 points or remove the polygon")
                xy = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
                lim = np.array([w, h]) + COCO_PIXEL_TOL
                if not np.isfinite(xy).all() or (xy < -COCO_PIXEL_TOL).any() or (xy > lim).any():
                    raise _bad(where, f"polygon {j} has points outside the {w}x{h} image",
                               "give pixel coordinates within the image")
                polys.append([float(v) for v in poly])
            rles = mask_utils.frPyObjects(polys, h, w)
            with warnings.catch_warnings():  # pycocotools trips a numpy 2 copy= DeprecationWarning
                warnings.simplefilter("ignore", DeprecationWarning)
                return mask_utils.decode(mask_utils.merge(rles)).astype(bool)
        if isinstance(seg, dict) and "counts" in seg and "size" in seg:
            try:
                sh, sw = (int(s) for s in seg["size"])
            except (TypeError, ValueError):
                raise _bad(where, f"RLE size {seg['size']!r} is not [height, width]", "write size: [H, W]") from None
            if (sh, sw) != (h, w):
                raise _bad(where, f"RLE mask is {sw}x{sh} but the image is {w}x{h}", "encode the mask at the image size")
            counts = seg["counts"]
            if isinstance(counts, list):
                if not all(_is_int(c) and c >= 0 for c in counts) or sum(counts) != h * w:
                    raise _bad(where, f"uncompressed RLE counts do not sum to {h}x{w}={h * w}",
                               "give non-negative run lengths covering the image")
            elif not isinstance(counts, (str, bytes)):
                raise _bad(where, "RLE counts are neither a string nor a list", "write COCO RLE counts")
            try:
                return np.asarray(rle_to_mask({"size": [h, w], "counts": counts}), dtype=bool)
            except Exception as e:
                raise _bad(where, f"cannot decode the RLE ({type(e).__name__})", "write valid COCO RLE counts") from None
        raise _bad(where, "has no polygon or RLE segmentation", "give segmentation polygons or an RLE, or remove it")

    def _category(self, k: int, a: dict) -> int:
        c = a.get("category_id")
        if not _is_int(c):
            raise _bad(self._where(k, a), f"category_id {c!r} is not an integer", "give the id of a category")
        if not self._any_category and int(c) not in self.names:
            raise _bad(self._where(k, a), f"category_id {c} is not in categories ({sorted(self.names)})",
                       "fix the id or add the category")
        return int(c)

    def _hw(self, i: int) -> tuple[int, int]:
        im = self._images[i]
        return int(im.get("height", 0) or 0), int(im.get("width", 0) or 0)

    def _masks(self, i: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        masks, classes = [], []
        for k, a in self._anns[self._images[i]["id"]]:
            classes.append(self._category(k, a))
            masks.append(self._decode(k, a, h, w))
        return _stack(masks, classes, h, w)

    def check(self) -> None:
        if not self._images:
            raise _bad(self.split_file, f"the {self.split} split has no images", "add images to the COCO file")
        for k, a in self._orphans:
            raise _bad(self._where(k, a), f"image_id {a.get('image_id')!r} is not in images",
                       "fix the image_id or add the image")
        n_obj = 0
        for i, im in enumerate(self._images):
            path = self.image_path(i)
            if not path.is_file():
                tried = ", ".join(str(r) for r in self._roots)
                raise _bad(self.split_file, f"image {im['file_name']} (id {im['id']}) not found in {tried}",
                           "put the images beside the json or in an images/ folder beside it")
            h, w = _image_size(path)
            jh, jw = self._hw(i)
            if (jh, jw) != (0, 0) and (jh, jw) != (h, w):
                raise _bad(self.split_file, f"image {im['file_name']} (id {im['id']}) is {w}x{h} but the json says {jw}x{jh}",
                           "fix its width and height")
            for k, a in self._anns[im["id"]]:
                self._category(k, a)
                self._decode(k, a, h, w)
                n_obj += 1
        if n_obj == 0:
            raise _bad(self.split_file, f"no labelled object in the {self.split} split ({len(self._images)} images)",
                       "add non-crowd annotations with a segmentation")


class _LazyPaths(Sequence):
    """``CocoDataset.files``: image paths resolved on access."""

    def __init__(self, ds: CocoDataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self.ds.image_path(j) for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self.ds.image_path(i % len(self))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) or (isinstance(v, float) and v.is_integer())


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
