"""`sam2 annotate`: detector boxes -> SAM 2 masks -> YOLO segmentation labels, for a whole dataset.

    sam2 annotate data=ds/images det_model=yolo11x.pt sam_model=sam2.1_b.pt

This module lists the dataset (sorted relative paths, stable hash shards, resume), runs the local
engine (a thread decodes and detects `PREFETCH` images ahead of SAM) or hands the list to the Ray
engine, and composes the COCO file. The per-image step is `annotate_image.py`; the contract
(label format, shards, resume, COCO ids) is in the README, *Auto-annotation*.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Optional, Protocol

import numpy as np
from rich.console import Console
from rich.markup import escape

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.atomic import atomic_path
from sam2cli.io.image import load_image
from sam2cli.io.prediction_json import dumps
from sam2cli.io.source_stream import is_video_file
from .image import Item, Summary, clean_stale_temps, filter_detections, segment, sidecar_path, write_image
from .video import check_video_options
from .video_data import list_media
from .detectors import Detections, build_detector
from ..options import AnnotateOptions
from ..progress import rated_progress

PREFETCH = 4  # images decoded + detected ahead of SAM


# ----------------------------------------------------------------------------- dataset

def default_output_dir(data: Path) -> Path:
    parts = data.resolve().parts
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        return Path(*parts[:i], "labels", *parts[i + 1:])
    return data.resolve().parent / "labels"


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
        with rated_progress(console, "annotate", len(items), "image") as advance, \
                Prefetcher(items, self._detect, self.prefetch) as pf:
            for it, rgb, dets, error in pf:
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
                advance()
        return s


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


def run_annotate(opts: AnnotateOptions, console: Console, detector: Any = None, sam_imgsz: Optional[int] = None) -> int:
    """Run the annotate job; returns the exit code (1 when some images failed).
    ``detector`` replaces the one the options describe; ``sam_imgsz`` (default: the option) sets
    SAM's input size."""
    sam_imgsz = opts.sam_imgsz if sam_imgsz is None else sam_imgsz
    if not opts.data:
        raise UsageError("data= is required, e.g. sam2 annotate data=path/to/images det_model=yolo11x.pt")
    data = Path(opts.data).expanduser()
    if not data.is_dir() and not (data.is_file() and is_video_file(data)):
        raise UsageError(f"data={opts.data} is not a directory or a video: give the folder of images "
                         "(or videos) to annotate")
    check_engine(opts.engine)
    check_video_options(opts.video)
    det = replace(opts.detector, classes=parse_classes(opts.detector.classes))  # imgsz= is the detector's here
    i, n = parse_shard(opts.shard)
    out_dir = Path(opts.output_dir).expanduser() if opts.output_dir else default_output_dir(data)
    if out_dir.resolve() == data.resolve():
        raise UsageError(f"output_dir={out_dir} is the data folder: give another output_dir=")
    if det.det_labels and Path(det.det_labels).expanduser().resolve() == out_dir.resolve():
        raise UsageError(f"det_labels={det.det_labels} is also the output folder: give another output_dir=, "
                         f"e.g. output_dir={out_dir}_seg")

    videos, images = list_media(data)
    if not images and not videos:  # as predict on the same folder: a runtime error, before any detector or folder
        raise SAM2Error(f"no images or videos found in {data} (hidden files are skipped); "
                        "give a folder of images, videos or frame folders to annotate")
    given, detector = detector, detector or build_detector(det)
    rc = 0
    if images:
        rc = _annotate_images(opts, console, data, images, out_dir, det, detector, given, sam_imgsz, (i, n))
    if videos:
        from .video_job import run_videos
        mine = [v for v in videos if n == 1 or shard_of(Path(v.name), n) == i]
        rc = max(rc, run_videos(replace(opts, detector=det), console, data, mine, detector, (i, n), sam_imgsz, given))
    return rc


def _annotate_images(opts: AnnotateOptions, console: Console, data: Path, images: list, out_dir: Path, det: Any,
                     detector: Any, given: Any, sam_imgsz: Optional[int], shard: tuple[int, int]) -> int:
    """The images of the job (labels beside them, see the README's contract); returns the exit code."""
    i, n = shard
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
    save_json = opts.save_json
    dests = [it.label for it in items] + ([sidecar_path(out_dir, it.rel) for it in items] + [json_path]) * save_json
    clean_stale_temps(dests)
    pending = [it for it in items if opts.overwrite or not it.label.is_file()]
    summary.skipped = len(items) - len(pending)

    if pending:
        engine: Engine
        if opts.engine == "ray":
            from .ray_engine import RayEngine
            names = detector.names if isinstance(getattr(detector, "names", None), dict) else None
            engine = RayEngine(replace(opts, detector=det), out_dir, sam_imgsz, detector=given, names=names)
        else:
            from ..image_predictor import ImagePredictor
            from ..loader import load_model
            net, _ = load_model(opts.sam_model, opts.device, sam_imgsz)
            predictor = ImagePredictor(net, half=opts.half)
            engine = LocalEngine(detector, predictor, det.classes, det.max_det, save_json, out_dir)
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
