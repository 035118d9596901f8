"""One image of `sam2 annotate`, shared by the local and the Ray engine: detect, filter, segment
with SAM, and write the image's label (and COCO sidecar) atomically.

Both engines call exactly this code, so the same inputs, device and models give byte-identical files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

from sam2cli.core.results import mask_to_polygon, masks_to_boxes
from sam2cli.io.atomic import write_text_atomic
from sam2cli.io.coco_rle import mask_to_rle
from sam2cli.io.prediction_json import dumps
from sam2cli.io.yolo_labels import yolo_seg_lines
from .detectors import Detections, as_detections

BOX_BATCH = 300  # boxes decoded at once (all of them up to the default max_det)
_TMP = re.compile(r"^\.(?P<stem>.*)\.tmp[0-9a-f]{8}(?P<suffix>\.[^.]*)?$")


@dataclass
class Item:
    index: int  # position in the whole sorted dataset
    rel: Path
    path: Path
    label: Path


@dataclass
class Summary:
    images: int = 0
    objects: int = 0
    empty: int = 0
    dropped: int = 0
    skipped: int = 0  # already labelled
    failures: list = field(default_factory=list)  # (relative path, reason)


def filter_detections(dets: Detections, classes: Optional[list[int]], max_det: int) -> Detections:
    boxes, cls, conf = as_detections(*dets)
    keep = np.isin(cls, classes) if classes is not None else np.ones(len(cls), bool)
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(-conf[idx], kind="stable")][:max_det]
    return boxes[idx], cls[idx], conf[idx]


def usable_polygon(mask: np.ndarray) -> bool:
    """True when the mask's polygon (largest part) has >= 3 points and a non-zero area."""
    poly = mask_to_polygon(mask)
    return len(poly) >= 3 and cv2.contourArea(poly.reshape(-1, 1, 2)) > 0


def segment(predictor: Any, rgb: np.ndarray, dets: Detections, save_json: bool = False):
    """SAM masks for the boxes ``dets`` of one image -> (label lines, COCO records, stats)."""
    boxes, cls, conf = dets
    h, w = rgb.shape[:2]
    if len(boxes) == 0:
        return [], [], {"detections": 0, "objects": 0, "dropped": 0}
    predictor.set_image(rgb)  # encoded once
    chunks = []
    for s in range(0, len(boxes), BOX_BATCH):
        m, _, _ = predictor.predict(box=boxes[s:s + BOX_BATCH], multimask_output=False)
        chunks.append(np.asarray(m).reshape(-1, h, w))  # (N, 1, H, W), or (1, H, W) for one box
    masks = np.concatenate(chunks)
    keep = np.array([usable_polygon(m) for m in masks], bool)
    lines = yolo_seg_lines(masks[keep], cls[keep]) if keep.any() else []
    records = []
    if save_json:
        xyxy = masks_to_boxes(masks[keep])
        for m, c, s, (x1, y1, x2, y2) in zip(masks[keep], cls[keep], conf[keep], xyxy):
            records.append({"category_id": int(c), "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                            "area": int(m.sum()), "segmentation": mask_to_rle(m), "score": round(float(s), 6),
                            "iscrowd": 0})
    return lines, records, {"detections": len(boxes), "objects": len(lines), "dropped": int((~keep).sum())}


def annotate_image(detector: Any, predictor: Any, rgb: np.ndarray, rel: Optional[Path] = None,
                   classes: Optional[list[int]] = None, max_det: int = 300, save_json: bool = False):
    """The whole per-image step: detect, filter, segment. Returns (label lines, COCO records, stats)."""
    dets = filter_detections(detector(rgb, rel), classes, max_det)
    return segment(predictor, rgb, dets, save_json)


# ----------------------------------------------------------------------------- files

def sidecar_path(out_dir: Path, rel: Path) -> Path:
    return out_dir / ".coco" / rel.with_suffix(".json")


def write_image(it: Item, lines: list[str], records: list[dict], hw: tuple, json_dir: Optional[Path]) -> None:
    """The image's COCO sidecar (when json_dir is set) then its label, each atomically."""
    if json_dir is not None:
        image = {"file_name": it.rel.as_posix(), "height": int(hw[0]), "width": int(hw[1])}
        write_text_atomic(sidecar_path(json_dir, it.rel), dumps({"image": image, "annotations": records}))
    write_text_atomic(it.label, "".join(f"{line}\n" for line in lines))


def clean_stale_temps(dests: list[Path]) -> int:
    """Delete temp files that interrupted atomic writes of ``dests`` left behind; only those, so
    processes working on other shards of the same folder are never disturbed."""
    owned: dict[Path, set] = {}
    for d in dests:
        owned.setdefault(d.parent, set()).add((d.stem[:180], d.suffix))
    removed = 0
    for parent, keys in owned.items():
        if not parent.is_dir():
            continue
        for entry in os.scandir(parent):
            m = _TMP.match(entry.name)
            if m and (m["stem"], m["suffix"] or "") in keys:
                try:
                    os.unlink(entry.path)
                    removed += 1
                except FileNotFoundError:
                    pass
    return removed
