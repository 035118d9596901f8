"""YOLO segmentation reader of `sam2 train` and `sam2 val` (Ultralytics' convention, what
``sam2 annotate`` writes).

``data.yaml`` with ``path``, ``train``, ``val`` and ``names`` (a list or an ``{id: name}``
mapping). ``path`` defaults to the yaml's folder; a relative ``path`` is taken relative to the
yaml's folder when that exists, else to the working directory. A split is a folder (its images,
recursively, sorted by relative path, '.'-names skipped: ``images/<video>/<frame>.jpg`` with
``labels/<video>/<frame>.txt`` is a split too), a ``.txt`` list of image paths
(relative ones are relative to the list's folder), or a list of those. The label of an image is
its path with the **last** ``images`` component replaced by ``labels`` and the extension by
``.txt``; when the path has no ``images`` component, ``labels/`` beside the split folder mirrors
it (``sam2 annotate``'s default). No label file, or an empty one, means no objects. A line is
``class x1 y1 x2 y2 ...``: coordinates normalised to 0..1 (1e-6 tolerance), one polygon of >= 3
points, rasterised with ``cv2.fillPoly`` at the image size with vertices at
``round(x * W), round(y * H)`` pixel indices (the convention of ``mask_to_polygon`` and
Ultralytics, boundary pixels included).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np
import yaml

from sam2cli.io.image import is_image_file
from .common import (
    ImageDataset,
    PathLike,
    _bad,
    _image_size,
    _list_images,
    _stack,
)

COORD_TOL = 1e-6  # YOLO coordinates may exceed 0..1 by this much (float noise); they are clipped


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
            elif p.is_file() and is_image_file(p):
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
