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
* **YOLO** (Ultralytics' convention, what ``sam2 annotate`` writes): ``data.yaml`` with ``path``,
  ``train``, ``val`` and ``names`` (a list or an ``{id: name}`` mapping). ``path`` defaults to the
  yaml's folder; a relative ``path`` is taken relative to the yaml's folder when that exists, else
  to the working directory. A split is a folder (its images, recursively, sorted by relative path,
  '.'-names skipped), a ``.txt`` list of image paths (relative ones are relative to the list's
  folder), or a list of those. The label of an image is its path with the **last** ``images``
  component replaced by ``labels`` and the extension by ``.txt``; when the path has no ``images``
  component, ``labels/`` beside the split folder mirrors it (``sam2 annotate``'s default). No label
  file, or an empty one, means no objects. A line is ``class x1 y1 x2 y2 ...``: coordinates
  normalised to 0..1 (1e-6 tolerance), one polygon of >= 3 points, rasterised with
  ``cv2.fillPoly`` at the image size with vertices at ``round(x * W), round(y * H)`` pixel
  indices (the convention of ``mask_to_polygon`` and Ultralytics, boundary pixels included).
* **COCO** (``data=instances.json``): a ``file_name`` is looked up, per image, in the json's folder,
  then in ``images/`` beside the json, then (``sam2 annotate``'s layout) in the json's folder with
  its last ``labels`` component replaced by ``images``; an absolute ``file_name`` is used as is.
  Polygons (list of ``[x1, y1, ...]`` in pixel-edge coordinates) and RLE (compressed string or
  uncompressed list counts) are decoded with pycocotools; ``iscrowd: 1`` objects are skipped
  (neither read nor checked). Classes are the raw ``category_id`` and ``names`` is
  ``{category id: name}`` (from ``categories``; when that key is absent, any id is accepted).
  Splits: ``train`` is every image of the file. ``val`` is the sibling file whose name has its last
  ``train`` replaced by ``val`` (``instances_train.json`` -> ``instances_val.json``) when it
  exists, else a deterministic 20% of the images: every 5th image in ``id`` order, starting at the
  first (so those images are also in train: validation then measures fit, not generalisation).
* **DAVIS** (``data=dir``): ``JPEGImages/<video>/<frame>.jpg`` and ``Annotations/<video>/<frame>.png``
  palette (or 8-bit grey) masks whose pixel value is the object id (0 background; every other value
  is an object, 255 included). When ``JPEGImages/480p`` exists (DAVIS 2017's own layout),
  ``JPEGImages/480p`` and ``Annotations/480p`` are used. A video's frames are its frames that have
  a mask PNG of the same stem, in :func:`list_frame_folder` order (numeric); frames without a mask
  are skipped (sparse annotation such as SA-V's becomes a lower frame rate). Splits: the video
  names in ``ImageSets/2017/<split>.txt`` when ``ImageSets/2017`` exists, else every video for
  ``train`` and a deterministic 20% for ``val``: every 5th video in sorted name order, starting at
  the first (at least one).
* **Clips** (:class:`VideoDataset`): ``ds[i]`` is ``clip_len`` consecutive (annotated) frames of
  video ``i % n_videos`` whose first frame holds at least one object (starts whose first frame is
  empty are never drawn: "resampled"), with up to ``max_objects`` of the objects of that first frame
  (a random subset when there are more, then sorted by id). An object absent from a later frame
  has an empty mask there. ``len(ds)`` is the number of videos, or ``samples`` when given.
  The randomness of ``ds[i]`` comes from ``numpy.random.default_rng((seed, epoch, i))``: the same
  ``seed``, :meth:`VideoDataset.set_epoch` and ``i`` give the same clip in any process or worker
  (``seed=None``: fresh entropy each call). A video with fewer annotated frames than ``clip_len``
  is an error of :func:`check_dataset`.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Optional, Union

import cv2
import numpy as np
import yaml
from PIL import Image

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.image import IMAGE_EXTENSIONS, load_image
from sam2cli.io.sources import list_frame_folder
from sam2cli.io.writers import read_palette_png, rle_to_mask

__all__ = [
    "ImageSample", "VideoClip", "ImageDataset", "YoloDataset", "CocoDataset", "VideoDataset",
    "open_dataset", "check_dataset", "COORD_TOL", "VAL_EVERY",
]

COORD_TOL = 1e-6  # YOLO coordinates may exceed 0..1 by this much (float noise); they are clipped
COCO_PIXEL_TOL = 1.0  # COCO polygon vertices may lie this many pixels outside the image
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


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive), '.'-names skipped, sorted by relative POSIX path."""
    out = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if _is_image(p) and not any(s.startswith(".") for s in rel.parts) and p.is_file():
            out.append((rel.as_posix(), p))
    return [p for _, p in sorted(out)]


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


# ---- YOLO


def _yaml_key_lines(text: str) -> dict[str, int]:
    """1-based line of each top-level key of a YAML mapping (for error messages)."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value}


def _parse_names(raw: Any, where: str) -> dict[int, str]:
    if isinstance(raw, (list, tuple)):
        return {i: str(n) for i, n in enumerate(raw)}
    if isinstance(raw, dict):
        try:
            return {int(k): str(v) for k, v in raw.items()}
        except (TypeError, ValueError):
            pass
    raise _bad(where, f"names must be a list or a mapping of class id to name, got {raw!r}",
               "write e.g. names: {0: person, 1: car}")


def parse_yolo_label(path: Path, names: Optional[dict[int, str]] = None) -> list[tuple[int, np.ndarray]]:
    """``(class, (K, 2) float points in 0..1)`` per line of a YOLO segmentation label file.

    Blank lines are skipped. Raises a UsageError naming ``file:line`` for a non-numeric value, a
    fractional class, a class not in ``names``, an odd number of coordinates, fewer than 3 points,
    or a coordinate outside 0..1.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _bad(path, "is not a UTF-8 text label file", "write one 'class x1 y1 x2 y2 ...' line per object") from None
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}:{lineno}"
        try:
            values = [float(v) for v in parts]
        except ValueError:
            bad = next(v for v in parts if not _is_float(v))
            raise _bad(where, f"{bad!r} is not a number",
                       "write 'class x1 y1 x2 y2 ...' with normalised coordinates") from None
        c = values[0]
        if not math.isfinite(c) or c != int(c) or c < 0:
            raise _bad(where, f"class {parts[0]!r} is not a non-negative integer", "start the line with a class id of names")
        cls = int(c)
        if names is not None and cls not in names:
            known = f"0..{max(names)}" if names and sorted(names) == list(range(len(names))) else sorted(names)
            raise _bad(where, f"class {cls} is not in names ({known})", "fix the class id or add it to names in data.yaml")
        coords = values[1:]
        if len(coords) % 2:
            raise _bad(where, f"odd number of coordinates ({len(coords)})", "give x y pairs: 'class x1 y1 x2 y2 ...'")
        if len(coords) < 6:
            hint = " (a detection box 'class cx cy w h' is not a segmentation label)" if len(coords) == 4 else ""
            raise _bad(where, f"polygon has {len(coords) // 2} points, fewer than 3{hint}",
                       "give a polygon of at least 3 points or remove the line")
        xy = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        bad = ~np.isfinite(xy) | (xy < -COORD_TOL) | (xy > 1 + COORD_TOL)
        if bad.any():
            k = int(np.argmax(bad.any(axis=1)))
            raise _bad(where, f"point {k + 1} ({coords[2 * k]:g}, {coords[2 * k + 1]:g}) is outside 0..1",
                       "normalise coordinates by the image width and height")
        out.append((cls, np.clip(xy, 0.0, 1.0)))
    return out


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def rasterize_polygon(xy: np.ndarray, h: int, w: int) -> np.ndarray:
    """(H, W) bool mask of a polygon with normalised vertices (pixel index = round(x * W))."""
    pts = np.round(np.asarray(xy, dtype=np.float64) * np.array([w, h])).astype(np.int32)
    pts[:, 0] = np.clip(pts[:, 0], 0, w - 1)
    pts[:, 1] = np.clip(pts[:, 1], 0, h - 1)
    m = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(m, [pts.reshape(-1, 1, 2)], 1)
    return m.astype(bool)


class YoloDataset(ImageDataset):
    """A YOLO segmentation dataset split (see the module docstring for the layout)."""

    def __init__(self, yaml_path: PathLike, split: str = "train") -> None:
        yaml_path = Path(yaml_path).expanduser()
        if not yaml_path.is_file():
            raise _bad(yaml_path, "dataset file not found", "give data=path/to/data.yaml")
        text = yaml_path.read_text(encoding="utf-8")
        try:
            cfg = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{yaml_path}:{mark.line + 1}" if mark is not None else str(yaml_path)
            problem = getattr(e, "problem", None) or "invalid YAML"
            raise _bad(where, f"invalid YAML ({problem})", "fix the syntax of data.yaml") from None
        if not isinstance(cfg, dict):
            raise _bad(yaml_path, "is not a YAML mapping", "write path:, train:, val: and names: keys")
        lines = _yaml_key_lines(text)

        def at(key: str) -> str:
            return f"{yaml_path}:{lines[key]}" if key in lines else str(yaml_path)

        if "names" not in cfg:
            raise _bad(yaml_path, "has no 'names'", "add e.g. names: {0: object}")
        names = _parse_names(cfg["names"], at("names"))
        if split not in cfg or cfg[split] in (None, ""):
            raise _bad(yaml_path, f"has no '{split}' split", f"add e.g. {split}: images/{split}")
        root = self._root(yaml_path, cfg.get("path"), at("path"))
        entries = cfg[split] if isinstance(cfg[split], list) else [cfg[split]]
        files: list[Path] = []
        self._label_dirs: dict[Path, Path] = {}  # image -> split folder it was listed from
        for entry in entries:
            p = Path(str(entry)).expanduser()
            p = p if p.is_absolute() else root / p
            if p.is_dir():
                found = _list_images(p)
                files += found
                for f in found:
                    self._label_dirs[f] = p
            elif p.is_file() and p.suffix.lower() == ".txt":
                files += self._read_list(p)
            elif p.is_file() and _is_image(p):
                files.append(p)
            else:
                raise _bad(at(split), f"{split} split {entry!r} -> {p} does not exist",
                           f"fix the path (relative to {root}) or create the folder")
        super().__init__(files, names, yaml_path, split)
        self.root = root

    @staticmethod
    def _root(yaml_path: Path, raw: Any, where: str) -> Path:
        if raw in (None, ""):
            return yaml_path.parent
        p = Path(str(raw)).expanduser()
        if p.is_absolute():
            cand = p
        elif (yaml_path.parent / p).is_dir():
            cand = yaml_path.parent / p
        else:
            cand = Path.cwd() / p
        if not cand.is_dir():
            raise _bad(where, f"path {raw!r} -> {cand} is not a folder",
                       "set path: to the dataset root (relative to the yaml's folder) or remove it")
        return cand

    @staticmethod
    def _read_list(txt: Path) -> list[Path]:
        files = []
        for lineno, line in enumerate(txt.read_text(encoding="utf-8").splitlines(), 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            p = Path(s).expanduser()
            p = p if p.is_absolute() else txt.parent / p
            if not p.is_file():
                raise _bad(f"{txt}:{lineno}", f"image {s} not found ({p})",
                           "fix the path (relative to the list's folder) or remove the line")
            files.append(p)
        return files

    def label_path(self, i: int) -> Path:
        """The label file of image ``i`` (it may not exist: no objects)."""
        img = self.files[i]
        parts = img.parts
        if "images" in parts[:-1]:
            k = len(parts) - 2 - parts[-2::-1].index("images")
            return Path(*parts[:k], "labels", *parts[k + 1:]).with_suffix(".txt")
        split_dir = self._label_dirs.get(img, img.parent)
        return (split_dir.parent / "labels" / img.relative_to(split_dir)).with_suffix(".txt")

    def _objects(self, i: int) -> list[tuple[int, np.ndarray]]:
        lab = self.label_path(i)
        return parse_yolo_label(lab, self.names) if lab.is_file() else []

    def _masks(self, i: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        objs = self._objects(i)
        return _stack([rasterize_polygon(xy, h, w) for _, xy in objs], [c for c, _ in objs], h, w)

    def check(self) -> None:
        if not self.files:
            raise _bad(self.source, f"the {self.split} split has no images",
                       f"put images in the '{self.split}' folder of data.yaml")
        n_obj = 0
        for i, f in enumerate(self.files):
            _image_size(f)
            n_obj += len(self._objects(i))
        if n_obj == 0:
            raise _bad(self.source, f"no labelled object in the {self.split} split ({len(self.files)} images)",
                       f"add label files under labels/ (e.g. {self.label_path(0)})")


# ---- COCO


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


# ----------------------------------------------------------------------------- DAVIS videos


@dataclass
class _Video:
    name: str
    frames: list  # frame paths that have a mask
    masks: list  # their mask PNG paths
    orphans: list  # mask PNGs without a frame


class VideoDataset:
    """DAVIS-layout videos; ``ds[i]`` -> a random :class:`VideoClip` of video ``i % n_videos``."""

    kind = "video"

    def __init__(self, root: PathLike, split: str = "train", clip_len: int = 8, max_objects: Optional[int] = 3,
                 seed: Optional[int] = 0, samples: Optional[int] = None) -> None:
        root = Path(root).expanduser()
        if clip_len < 1:
            raise UsageError(f"clip_len={clip_len} must be at least 1")
        if max_objects is not None and max_objects < 1:
            raise UsageError(f"max_objects={max_objects} must be at least 1")
        self.root, self.split = root, split
        self.clip_len, self.max_objects, self.seed = int(clip_len), max_objects, seed
        self.samples = samples
        self.epoch = 0
        jpeg, ann = root / "JPEGImages", root / "Annotations"
        if not jpeg.is_dir():
            raise _bad(root, "has no JPEGImages/ folder", "give a DAVIS folder: JPEGImages/<video>/<frame>.jpg")
        if (jpeg / "480p").is_dir():
            jpeg, ann = jpeg / "480p", ann / "480p"
        if not ann.is_dir():
            raise _bad(root, f"has no {ann.relative_to(root)}/ folder",
                       "add Annotations/<video>/<frame>.png palette masks")
        self.jpeg_dir, self.ann_dir = jpeg, ann
        self.names = self._split_videos(root, jpeg, split)
        self.videos = [self._list_video(v) for v in self.names]
        self._ids: dict[int, list[tuple[int, ...]]] = {}  # video index -> object ids per frame

    @staticmethod
    def _split_videos(root: Path, jpeg: Path, split: str) -> list[str]:
        sets = root / "ImageSets" / "2017"
        if sets.is_dir():
            txt = sets / f"{split}.txt"
            if not txt.is_file():
                raise _bad(txt, f"split file for '{split}' not found",
                           f"list the {split} videos in it, one per line, or remove ImageSets/2017")
            names = []
            for lineno, line in enumerate(txt.read_text(encoding="utf-8").splitlines(), 1):
                name = line.strip()
                if not name:
                    continue
                if not (jpeg / name).is_dir():
                    raise _bad(f"{txt}:{lineno}", f"video {name!r} has no folder {jpeg / name}",
                               "fix the name or add its frames")
                names.append(name)
            return names
        if split not in ("train", "val"):
            raise _bad(root, f"unknown split {split!r} without ImageSets/2017/{split}.txt",
                       "use split train or val, or add the split file")
        videos = sorted(p.name for p in jpeg.iterdir() if p.is_dir() and not p.name.startswith("."))
        return videos if split == "train" else _every_nth(videos)

    def _list_video(self, name: str) -> _Video:
        adir = self.ann_dir / name
        if not adir.is_dir():
            raise _bad(self.jpeg_dir / name, f"video {name!r} has no mask folder {adir}",
                       "add its mask PNGs or remove the video")
        try:
            frames = list_frame_folder(self.jpeg_dir / name)
        except SAM2Error:
            raise _bad(self.jpeg_dir / name, "has no JPEG/PNG frames", "add frames like 00000.jpg or remove the video") from None
        pngs = {p.stem: p for p in adir.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".")}
        keep_f, keep_m = [], []
        for f in frames:
            if f.stem in pngs:
                keep_f.append(f)
                keep_m.append(pngs.pop(f.stem))
        return _Video(name, keep_f, keep_m, sorted(pngs.values()))

    # -- masks

    def _read_mask(self, path: Path) -> np.ndarray:
        try:
            return read_palette_png(path)
        except FileNotFoundError:
            raise _bad(path, "mask PNG not found", "restore it") from None
        except SAM2Error:
            raise _bad(path, "is not a palette (or 8-bit grey) mask PNG", "save masks with pixel value = object id") from None
        except Exception:
            raise _bad(path, "cannot read the mask PNG", "replace the file") from None

    def frame_ids(self, v: int) -> list[tuple[int, ...]]:
        """Object ids present on each (annotated) frame of video ``v`` (read once, then cached)."""
        if v not in self._ids:
            self._ids[v] = [tuple(int(x) for x in np.unique(self._read_mask(p)) if x != 0) for p in self.videos[v].masks]
        return self._ids[v]

    def set_epoch(self, epoch: int) -> None:
        """Change the clips drawn (with a seed, ``ds[i]`` depends on seed, epoch and i only)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.videos) if self.samples is None else int(self.samples)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def _rng(self, i: int) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng((int(self.seed) & 0xFFFFFFFF, self.epoch, int(i)))

    def _clip(self, v: int, start: int, length: int, obj_ids: Sequence[int]) -> VideoClip:
        vid = self.videos[v]
        frames, masks = [], []
        ids = np.asarray(obj_ids, dtype=np.int64)
        for t in range(start, start + length):
            img = _load(vid.frames[t])
            lab = self._read_mask(vid.masks[t])
            if lab.shape != img.shape[:2]:
                raise _bad(vid.masks[t], f"mask is {lab.shape[1]}x{lab.shape[0]} but its frame {vid.frames[t].name} "
                           f"is {img.shape[1]}x{img.shape[0]}", "save the mask at the frame's size")
            frames.append(img)
            masks.append(lab[None] == ids[:, None, None])
        h, w = frames[0].shape[:2]
        m = np.stack(masks) if masks else np.zeros((0, len(ids), h, w), dtype=bool)
        return VideoClip(frames=frames, masks=m, obj_ids=ids, video=vid.name,
                         frame_files=[str(p) for p in vid.frames[start:start + length]])

    def __getitem__(self, i: int) -> VideoClip:
        if not self.videos:
            raise IndexError("the dataset has no videos")
        if i < 0:  # any i >= 0 is a sample (video i % n_videos), for samplers that draw past len(ds)
            i += len(self)
            if i < 0:
                raise IndexError(f"sample {i - len(self)} out of range for {len(self)} samples")
        v = i % len(self.videos)
        vid = self.videos[v]
        ids = self.frame_ids(v)
        last = len(vid.frames) - self.clip_len
        starts = [t for t in range(last + 1) if ids[t]] if last >= 0 else []
        if not starts:
            raise _bad(self.ann_dir / vid.name, f"no clip of {self.clip_len} frames starts on a frame with an object "
                       f"({len(vid.frames)} annotated frames)", "lower clip_len= or remove the video")
        rng = self._rng(i)
        start = starts[int(rng.integers(len(starts)))]
        present = list(ids[start])
        if self.max_objects is not None and len(present) > self.max_objects:
            present = sorted(int(x) for x in rng.choice(present, size=self.max_objects, replace=False))
        return self._clip(v, start, self.clip_len, present)

    def full_video(self, v: int) -> VideoClip:
        """Every annotated frame of video ``v`` with every object that appears in it (for evaluation)."""
        ids = sorted({x for f in self.frame_ids(v) for x in f})
        return self._clip(v, 0, len(self.videos[v].frames), ids)

    def check(self) -> None:
        if not self.videos:
            raise _bad(self.root, f"the {self.split} split has no videos", "add JPEGImages/<video>/ folders")
        n_obj = 0
        for v, vid in enumerate(self.videos):
            if vid.orphans:
                p = vid.orphans[0]
                raise _bad(p, f"mask has no frame {p.stem}.* in {self.jpeg_dir / vid.name}",
                           "add the frame or remove the mask")
            if not vid.frames:
                raise _bad(self.ann_dir / vid.name, "no frame has a mask PNG of the same name",
                           "name masks like their frames (00000.jpg -> 00000.png)")
            for f, m in zip(vid.frames, vid.masks):
                fh, fw = _image_size(f)
                with _open_png(m) as img:
                    mw, mh = img.size
                    if img.mode not in ("P", "L"):
                        raise _bad(m, f"mask PNG has mode {img.mode}, not a palette or 8-bit grey image",
                                   "save masks with pixel value = object id")
                if (mh, mw) != (fh, fw):
                    raise _bad(m, f"mask is {mw}x{mh} but its frame {f.name} is {fw}x{fh}",
                               "save the mask at the frame's size")
            ids = self.frame_ids(v)
            n_obj += sum(1 for f in ids if f)
            if len(vid.frames) < self.clip_len:
                raise _bad(self.ann_dir / vid.name, f"has {len(vid.frames)} annotated frames, fewer than "
                           f"clip_len={self.clip_len}", "lower clip_len= or remove the video")
            if not any(ids[: len(vid.frames) - self.clip_len + 1]):
                raise _bad(self.ann_dir / vid.name, f"no clip of {self.clip_len} frames starts on a frame with an object",
                           "lower clip_len= or remove the video")
        if n_obj == 0:  # pragma: no cover - caught per video above
            raise _bad(self.root, f"no labelled object in the {self.split} split", "add object masks")

    def __repr__(self) -> str:
        return f"VideoDataset({self.root}, split={self.split!r}, {len(self.videos)} videos, clip_len={self.clip_len})"


def _open_png(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise _bad(path, "mask PNG not found", "restore it") from None
    except Exception:
        raise _bad(path, "cannot read the mask PNG", "replace the file") from None


# ----------------------------------------------------------------------------- entry points


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
