"""`sam2 annotate`: detector boxes -> SAM 2 masks -> YOLO segmentation labels, for a whole dataset.

    sam2 annotate data=ds/images det_model=yolo11x.pt sam_model=sam2.1_b.pt

Decisions (the contract the tests hold):

* Dataset: the image files under ``data`` (recursive, '.'-names skipped), sorted by relative POSIX
  path; labels go to ``output_dir/<relative path>.txt``. Default ``output_dir``: the last ``images``
  folder of ``data`` becomes ``labels`` (``ds/images/train`` -> ``ds/labels/train``), else ``labels`` beside it.
* Lines: ``class x1 y1 ... xn yn``, normalised, 6 decimals, the detector's class id kept
  (:func:`sam2cli.io.yolo_labels.yolo_seg_lines`). A mask in several parts becomes ONE polygon:
  **its largest part** (the project's :func:`mask_to_polygon` convention): no self-touching
  bridges, at the cost of the smaller parts. A mask whose polygon has fewer than 3 points or
  zero area is dropped and counted. No detections (or every mask dropped) -> an empty file.
* ``imgsz`` is the detector's input size (YOLO only; torchvision models keep their own);
  left at the global default (1024) it means 640 here. SAM runs at its native size.
* ``shard=i/n``: an image is in shard ``sha1(relative path) mod n``: exactly one shard, which never
  changes when files are added or listed in another order.
* Resume: an image whose label file exists is skipped (``overwrite=True`` redoes it). Every file
  is written atomically; temp files an interrupted run left for this shard's files are removed.
* ``save_json=True``: each image's COCO annotations (RLE, bbox/area from the mask, score,
  category = detector class) are kept in ``output_dir/.coco/<relative path>.json`` (written
  before the label, so resume keeps them), and ``output_dir/annotations.json``
  (``annotations_shard{i}of{n}.json`` with a shard) is composed from them at the end for
  every labelled image of the run's slice. COCO image ids = position in the sorted dataset + 1.
* Pipeline: a thread decodes images and runs the detector ``PREFETCH`` images ahead (bounded
  queue) while the main thread encodes each image once with SAM and decodes all its boxes in one
  batch (``BOX_BATCH`` = 300 boxes at most; more are split, for memory). :func:`annotate_image` is the pure per-image step, for engines other than LocalEngine.
* Engines: anything with ``run(items, console, summary) -> Summary`` (:class:`Engine`): ``engine=local``
  (:class:`LocalEngine`, this process) or ``engine=ray`` (:class:`sam2cli.engine.ray_engine.RayEngine`,
  a Ray cluster, the optional ``sam2cli[ray]`` extra). Listing, resume and the COCO file stay here.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Protocol

import cv2
import numpy as np
from rich.console import Console
from rich.markup import escape

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.atomic import atomic_path, write_text_atomic
from sam2cli.io.coco_rle import mask_to_rle
from sam2cli.io.image import is_image_file, load_image
from sam2cli.io.prediction_json import dumps
from sam2cli.io.yolo_labels import yolo_seg_lines
from .detectors import Detections, as_detections, build_detector
from .progress import progress_bar
from sam2cli.core.results import mask_to_polygon, masks_to_boxes

PREFETCH = 4  # images decoded + detected ahead of SAM
BOX_BATCH = 300  # boxes decoded at once (all of them up to the default max_det)
DET_IMGSZ = 640
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


# ----------------------------------------------------------------------------- dataset

def default_output_dir(data: Path) -> Path:
    parts = data.resolve().parts
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        return Path(*parts[:i], "labels", *parts[i + 1:])
    return data.resolve().parent / "labels"


def list_images(data: Path) -> list[Path]:
    """Relative paths of the images under ``data``, sorted by POSIX path."""
    rels = (p.relative_to(data) for p in data.rglob("*") if is_image_file(p) and p.is_file())
    return sorted((r for r in rels if not any(s.startswith(".") for s in r.parts)), key=lambda r: r.as_posix())


def shard_of(rel: Path, n: int) -> int:
    return int.from_bytes(hashlib.sha1(rel.as_posix().encode("utf-8")).digest()[:8], "big") % n


def parse_shard(shard: Optional[str]) -> tuple[int, int]:
    i, n = (int(v) for v in str(shard).split("/")) if shard else (0, 1)
    return i, n


def parse_classes(value: Any) -> Optional[list[int]]:
    if value is None:
        return None
    vals = value if isinstance(value, (list, tuple)) else [value]
    if not vals or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in vals):
        raise UsageError(f"classes={value} is not valid: expected class ids, e.g. classes=[0,2]")
    return [int(v) for v in vals]


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


# ----------------------------------------------------------------------------- one image

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


# ----------------------------------------------------------------------------- engines

class Engine(Protocol):
    """Annotates ``items`` (all still to do), writing each image's files with :func:`write_image`."""

    def run(self, items: list[Item], console: Console, summary: Optional[Summary] = None) -> Summary: ...


# ----------------------------------------------------------------------------- local engine

class Prefetcher:
    """Decode + detect in a background thread, ``depth`` images ahead; yields
    (item, rgb, detections, error). Use as a context manager so an interrupt stops the thread."""

    _DONE = object()

    def __init__(self, items: list[Item], detect: Any, depth: int = PREFETCH):
        self.items, self.detect = items, detect
        self.q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._work, name="annotate-prefetch", daemon=True)

    def _put(self, x: Any) -> None:
        while not self.stop.is_set():
            try:
                return self.q.put(x, timeout=0.1)
            except queue.Full:
                pass

    def _work(self) -> None:
        try:
            for it in self.items:
                if self.stop.is_set():
                    return
                try:
                    rgb = load_image(it.path)
                except Exception as e:  # corrupt or unreadable: reported, the run goes on
                    self._put((it, None, None, str(e)))
                    continue
                self._put((it, rgb, self.detect(rgb, it.rel), None))
        except BaseException as e:  # detector failure: raised in the main thread
            self._put(e)
        finally:
            self._put(self._DONE)

    def __enter__(self) -> "Prefetcher":
        self.thread.start()
        return self

    def __iter__(self) -> Iterator[tuple]:
        while True:
            x = self.q.get()
            if x is self._DONE:
                return
            if isinstance(x, BaseException):
                raise x
            yield x

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


class LocalEngine:
    """Runs the job in this process: prefetch thread + SAM in the main thread."""

    def __init__(self, detector: Any, predictor: Any, classes: Optional[list[int]] = None, max_det: int = 300,
                 save_json: bool = False, out_dir: Optional[Path] = None, prefetch: int = PREFETCH):
        self.detector, self.predictor = detector, predictor
        self.classes, self.max_det, self.save_json = classes, max_det, save_json
        self.out_dir, self.prefetch = out_dir, prefetch

    def _detect(self, rgb: np.ndarray, rel: Path) -> Detections:
        return filter_detections(self.detector(rgb, rel), self.classes, self.max_det)

    def run(self, items: list[Item], console: Console, summary: Optional[Summary] = None) -> Summary:
        s = summary or Summary()
        t0 = time.perf_counter()
        with progress_bar(console) as bar, Prefetcher(items, self._detect, self.prefetch) as pf:
            task = bar.add_task("annotate", total=len(items), rate="")
            for done, (it, rgb, dets, error) in enumerate(pf, 1):
                if error is not None:
                    s.failures.append((it.rel.as_posix(), error))
                    console.print(f"[yellow]skipped[/] {escape(it.rel.as_posix())}: {escape(error)}", highlight=False)
                else:
                    lines, records, st = segment(self.predictor, rgb, dets, self.save_json)
                    write_image(it, lines, records, rgb.shape[:2], self.out_dir if self.save_json else None)
                    s.images += 1
                    s.objects += st["objects"]
                    s.dropped += st["dropped"]
                    s.empty += not lines
                bar.update(task, advance=1, rate=f"{done / (time.perf_counter() - t0):.2f} img/s")
        return s


def sidecar_path(out_dir: Path, rel: Path) -> Path:
    return out_dir / ".coco" / rel.with_suffix(".json")


def write_image(it: Item, lines: list[str], records: list[dict], hw: tuple, json_dir: Optional[Path]) -> None:
    """The image's COCO sidecar (when json_dir is set) then its label, each atomically."""
    if json_dir is not None:
        image = {"file_name": it.rel.as_posix(), "height": int(hw[0]), "width": int(hw[1])}
        write_text_atomic(sidecar_path(json_dir, it.rel), dumps({"image": image, "annotations": records}))
    write_text_atomic(it.label, "".join(f"{line}\n" for line in lines))


def write_coco(path: Path, items: list[Item], out_dir: Path, names: dict) -> tuple[int, int]:
    """Compose the COCO instances file from the sidecars of ``items`` (streamed).
    Returns (images written, labelled images without a sidecar)."""
    images, used, missing, ann_id = [], set(), 0, 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write('{"annotations": [')
        for it in items:
            side = sidecar_path(out_dir, it.rel)
            if not side.is_file():
                missing += it.label.is_file()
                continue
            rec = json.loads(side.read_text(encoding="utf-8"))
            images.append({"id": it.index + 1, **rec["image"]})
            for a in rec["annotations"]:
                ann_id += 1
                used.add(int(a["category_id"]))
                f.write(("\n" if ann_id == 1 else ",\n") + dumps({"id": ann_id, "image_id": it.index + 1, **a}))
        cats = [{"id": c, "name": str(names.get(c, c))} for c in sorted(set(names) | used)]
        f.write('\n], "images": ' + dumps(images) + ', "categories": ' + dumps(cats) + "}\n")
    return len(images), missing


# ----------------------------------------------------------------------------- command

def check_engine(engine: Optional[str]) -> None:
    if engine == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UsageError('engine=ray needs the ray extra: pip install "sam2cli[ray]"') from None
    elif engine not in (None, "", "local"):
        raise UsageError(f"engine={engine} is not implemented in this version: use engine=local or engine=ray")


def run_annotate(args: dict, console: Console, detector: Any = None, sam_imgsz: Optional[int] = None) -> int:
    """Run the annotate job; returns the exit code (1 when some images failed).
    ``detector`` replaces the one the arguments describe; ``sam_imgsz`` sets SAM's input size."""
    if not args.get("data"):
        raise UsageError("data= is required, e.g. sam2 annotate data=path/to/images det_model=yolo11x.pt")
    data = Path(args["data"]).expanduser()
    if not data.is_dir():
        raise UsageError(f"data={args['data']} is not a directory: give the folder of images to annotate")
    check_engine(args.get("engine"))
    classes = parse_classes(args.get("classes"))
    i, n = parse_shard(args.get("shard"))
    out_dir = Path(args["output_dir"]).expanduser() if args.get("output_dir") else default_output_dir(data)
    if out_dir.resolve() == data.resolve():
        raise UsageError(f"output_dir={out_dir} is the data folder: give another output_dir=")
    if args.get("det_labels") and Path(args["det_labels"]).expanduser().resolve() == out_dir.resolve():
        raise UsageError(f"det_labels={args['det_labels']} is also the output folder: give another output_dir=, "
                         f"e.g. output_dir={out_dir}_seg")
    det_imgsz = args.get("imgsz") or DET_IMGSZ  # imgsz= is the detector's size here: 640 unless given

    images = list_images(data)
    if not images:  # as predict on the same folder: a runtime error, before any detector or folder
        raise SAM2Error(f"no images found in {data} (hidden files are skipped); give the folder of images to annotate")
    summary, items, seen = Summary(), [], {}
    for index, rel in enumerate(images):
        if n > 1 and shard_of(rel, n) != i:
            continue
        it = Item(index, rel, data / rel, out_dir / rel.with_suffix(".txt"))
        if it.label in seen:
            summary.failures.append((rel.as_posix(), f"same label file as {seen[it.label]}: rename one of them"))
            continue
        seen[it.label] = rel.as_posix()
        items.append(it)
    json_path = out_dir / ("annotations.json" if n == 1 else f"annotations_shard{i}of{n}.json")
    save_json = bool(args.get("save_json"))
    dests = [it.label for it in items] + ([sidecar_path(out_dir, it.rel) for it in items] + [json_path]) * save_json
    clean_stale_temps(dests)
    pending = [it for it in items if args.get("overwrite") or not it.label.is_file()]
    summary.skipped = len(items) - len(pending)

    given, detector = detector, detector or build_detector({**args, "classes": classes}, imgsz=det_imgsz)
    if pending:
        engine: Engine
        if args.get("engine") == "ray":
            from .ray_engine import RayEngine
            names = detector.names if isinstance(getattr(detector, "names", None), dict) else None
            engine = RayEngine(args, classes, save_json, out_dir, det_imgsz, sam_imgsz, detector=given, names=names)
        else:
            from .image_predictor import ImagePredictor
            from .loader import load_model
            net, _ = load_model(args["sam_model"], args.get("device") or None, sam_imgsz)
            predictor = ImagePredictor(net, half=bool(args.get("half")))
            engine = LocalEngine(detector, predictor, classes, args["max_det"], save_json, out_dir)
        engine.run(pending, console, summary)
    shard = f" (shard {i}/{n})" if n > 1 else ""
    console.print(f"{summary.images} image(s) annotated{shard}, {summary.objects} object(s), {summary.empty} empty, "
                  f"{summary.dropped} dropped mask(s), {len(summary.failures)} failure(s), "
                  f"{summary.skipped} already labelled; labels in {escape(str(out_dir))}", highlight=False)
    if save_json:
        n_img, missing = write_coco(json_path, items, out_dir, dict(getattr(detector, "names", {}) or {}))
        console.print(f"COCO json: {escape(str(json_path))} ({n_img} image(s))", highlight=False)
        if missing:
            console.print(f"[yellow]{missing} labelled image(s) have no saved masks (labelled without save_json): "
                          "rerun with overwrite=True to include them[/]", highlight=False)
    if summary.failures:
        console.print(f"[yellow]{len(summary.failures)} image(s) failed:[/] "
                      + escape("; ".join(f"{p} ({r})" for p, r in summary.failures[:5])), highlight=False)
        return 1
    return 0
