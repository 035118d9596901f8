"""The files of `sam2 annotate` on videos: what counts as a video, where each output goes, resume
markers, and the dataset-level files (``data.yaml``, the YouTube-VIS json).

A dataset root holds, per video ``<video>`` (its path under ``data`` without the suffix):

    images/<video>/<frame>.jpg      every vid_stride-th frame
    labels/<video>/<frame>.txt      YOLO segmentation lines (an empty file: no objects)
    masks/<video>/<frame>.png       save_masks=True: DAVIS palette PNGs, pixel = track id
    overlays/<video>.mp4            save=True
    .vis/<video>.json               save_json=True: the video's YouTube-VIS records
    .done/<video>.json              written last: the video is complete

and ``data.yaml`` (+ ``annotations.json`` with save_json). ``<frame>`` is the frame file's stem for
a frame folder, the frame number as 5 digits (``00042``) for a video file. A video is written in
``.partial/`` and moved into place when complete, then its marker is written; a video without its
marker is redone from scratch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from sam2cli.io.atomic import atomic_path, write_text_atomic
from sam2cli.io.frames import FRAME_EXTENSIONS
from sam2cli.io.prediction_json import dumps
from sam2cli.io.source_stream import is_video_file
from sam2cli.io.sources import images_under

KINDS = ("images", "labels", "masks")  # per-video folders, moved into place in this order


@dataclass
class VideoItem:
    index: int   # position among the videos of data, sorted by name (the YouTube-VIS id is index + 1)
    name: str    # <video>: the relative path without suffix, POSIX
    path: Path   # the video file or the frame folder


def is_frame_folder(folder: Path) -> bool:
    """A folder of >= 2 frames and nothing else: JPEG/PNG files whose stems are consecutive integers."""
    try:
        entries = [e for e in os.scandir(folder) if not e.name.startswith(".")]
    except OSError:
        return False
    if len(entries) < 2 or not all(e.is_file() for e in entries):
        return False
    stems = [Path(e.name).stem for e in entries]
    if not all(Path(e.name).suffix.lower() in FRAME_EXTENSIONS for e in entries) or not all(s.isdigit() for s in stems):
        return False
    nums = sorted(int(s) for s in stems)
    return nums == list(range(nums[0], nums[0] + len(nums)))


def list_media(data: Path) -> tuple[list[VideoItem], list[Path]]:
    """(videos, images) of ``data``: a video file is one video; in a folder, the video files
    anywhere under it (recursive, '.'-names skipped) and its direct subfolders that are frame
    folders are videos, every other image is annotated as an image (relative paths)."""
    if data.is_file():
        return ([VideoItem(0, data.stem, data)] if is_video_file(data) else []), []
    folders = sorted((p for p in data.iterdir() if p.is_dir() and not p.name.startswith(".") and is_frame_folder(p)),
                     key=lambda p: p.name)
    files = (p for p in data.rglob("*") if p.is_file() and is_video_file(p))
    vids = [p for p in files if not any(s.startswith(".") for s in p.relative_to(data).parts)]
    named = [(p.relative_to(data).with_suffix("").as_posix(), p) for p in vids] + [(p.name, p) for p in folders]
    named.sort(key=lambda np_: (np_[0], np_[1].as_posix()))
    videos = [VideoItem(i, name, path) for i, (name, path) in enumerate(named)]
    inside = {p.name for p in folders}
    images = [r for r in images_under(data) if not (len(r.parts) == 2 and r.parts[0] in inside)]
    return videos, images


def default_root(data: Path) -> Path:
    """Where a video dataset goes unless output_dir= says: ``<data>_yolo`` beside ``data``."""
    d = data.resolve()
    return d.parent / f"{d.stem if d.is_file() else d.name}_yolo"


def frame_stem(item: VideoItem, reader: Any, i: int) -> str:
    """The ``<frame>`` of frame ``i``: the file's stem in a frame folder, else ``%05d``."""
    if item.path.is_dir():
        return Path(reader.path_of(i)).stem
    return f"{i:05d}"


class Layout:
    """Every path of a video dataset rooted at ``root`` (see the module docstring)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def folder(self, kind: str, name: str) -> Path:
        return self.root / kind / name

    def overlay(self, name: str) -> Path:
        return self.root / "overlays" / f"{name}.mp4"

    def sidecar(self, name: str) -> Path:
        return self.root / ".vis" / f"{name}.json"

    def marker(self, name: str) -> Path:
        return self.root / ".done" / f"{name}.json"

    def done(self, name: str) -> bool:
        return self.marker(name).is_file()

    def partial(self, name: str) -> Path:
        """A fresh private folder to write the video in."""
        base = self.root / ".partial" / name
        base.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        while True:
            p = base.with_name(f"{base.name}.tmp{os.getpid():x}{n}")
            try:
                p.mkdir()
                return p
            except FileExistsError:
                n += 1

    def clear(self, name: str) -> None:
        """Remove what an earlier, unfinished run left of a video (its marker first)."""
        self.marker(name).unlink(missing_ok=True)
        for kind in KINDS:
            shutil.rmtree(self.folder(kind, name), ignore_errors=True)
        for p in (self.overlay(name), self.sidecar(name)):
            p.unlink(missing_ok=True)
        parent = (self.root / ".partial" / name).parent
        if parent.is_dir():
            pat = re.compile(re.escape(Path(name).name) + r"\.tmp[0-9a-f]+$")
            for entry in os.scandir(parent):
                if pat.match(entry.name):
                    shutil.rmtree(entry.path, ignore_errors=True)

    def commit(self, name: str, part: Path, marker: dict) -> None:
        """Move a finished video from its partial folder into place, then write its marker."""
        for kind in KINDS:
            src = part / kind
            if src.is_dir():
                dst = self.folder(kind, name)
                shutil.rmtree(dst, ignore_errors=True)
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
        for src, dst in ((part / "overlay.mp4", self.overlay(name)), (part / "vis.json", self.sidecar(name))):
            if src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
        write_text_atomic(self.marker(name), json.dumps(marker, sort_keys=True) + "\n")
        shutil.rmtree(part, ignore_errors=True)

    def markers(self) -> list[dict]:
        """The markers of every finished video under the root (any shard)."""
        d = self.root / ".done"
        out = []
        for p in sorted(d.rglob("*.json")) if d.is_dir() else []:
            try:
                out.append(json.loads(p.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                pass
        return out


# ----------------------------------------------------------------------------- dataset files

def write_data_yaml(root: Path, names: dict) -> Path:
    """``data.yaml`` for a YOLO trainer: the whole root as train and val, the class names."""
    body = {"path": str(Path(root).resolve()), "train": "images", "val": "images",
            "names": {int(k): str(v) for k, v in sorted(names.items())}}
    return write_text_atomic(Path(root) / "data.yaml", yaml.safe_dump(body, sort_keys=False, allow_unicode=True))


def class_names(detector_names: Optional[dict], markers: list[dict]) -> dict:
    """Class id -> name for every id from 0 to the largest the detector names or the videos use
    (a YOLO trainer wants ids 0..nc-1): the detector's name, else the id itself (torchvision's
    COCO ids have gaps)."""
    names = {int(k): str(v) for k, v in (detector_names or {}).items()}
    used = {int(c) for m in markers for c in m.get("classes", [])}
    top = max(set(names) | used, default=-1)
    return {c: names.get(c, str(c)) for c in range(top + 1)}


def write_vis_json(path: Path, layout: Layout, items: list[VideoItem], names: dict) -> tuple[int, int]:
    """Compose the YouTube-VIS file from the sidecars of ``items`` (those done); returns
    (videos, annotations). Video ids are positions in the sorted video list + 1; every track
    is one annotation with per-frame ``segmentations`` (RLE, or null where it is absent),
    ``bboxes``, ``areas``, its ``category_id`` (the detector's class) and ``score`` (mean
    detection confidence)."""
    videos, n_ann = [], 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write('{"annotations": [')
        for it in items:
            side = layout.sidecar(it.name)
            if not side.is_file():
                continue
            rec = json.loads(side.read_text(encoding="utf-8"))
            vid = it.index + 1
            videos.append({"id": vid, **rec["video"]})
            v = rec["video"]
            for tr in rec["tracks"]:
                n_ann += 1
                a = {"id": n_ann, "video_id": vid, "height": v["height"], "width": v["width"], "length": v["length"],
                     "iscrowd": 0, **tr}
                f.write(("\n" if n_ann == 1 else ",\n") + dumps(a))
        cats = [{"id": int(c), "name": str(n), "supercategory": "object"} for c, n in sorted(names.items())]
        f.write('\n], "videos": ' + dumps(videos) + ', "categories": ' + dumps(cats) + "}\n")
    return len(videos), n_ann
