"""One video of `sam2 annotate`, shared by the local and the Ray engine: detect every det_stride
frames, track every object with SAM 2's memory in one streaming pass, keep identities, and write
the video's part of the dataset (layout in `video_data.py`, rules in `video_match.py`).

Per frame ``i`` (every frame is read and tracked; ``vid_stride`` only picks the frames written):

1. the objects the session has are tracked onto ``i`` from their memories (``session.step``);
2. on a detection frame (``i % det_stride == 0``, and the last frame) the detections are matched
   against the boxes of the masks' largest parts: uncovered ones re-find a lost object of their
   class or start one (a box prompt), drifted matches restart theirs from the box, and the
   prompts' memories are encoded
   (``session.commit``), giving the frame's final masks;
3. objects taken, absent or unmatched for ``max_lost`` frames end: they leave the session (no more
   memory-attention cost) and keep their records.

Labels are composed when the video ends, so each object's labels stop where the detector's last
word on it says (`video_match`): a false detection keeps only its own frame. Both engines call :func:`annotate_video`: the same inputs, device and
models give byte-identical files.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import cv2
import numpy as np

from sam2cli.core.results import masks_to_boxes
from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.coco_rle import mask_to_rle, rle_to_mask
from sam2cli.io.mask_pngs import save_mask_pngs
from sam2cli.io.overlay import overlay
from sam2cli.io.prediction_json import dumps
from sam2cli.io.sources import open_frames
from sam2cli.io.video_writer import VideoWriter
from sam2cli.io.yolo_labels import yolo_seg_lines
from ..options import VideoAnnotateOptions
from ..session import TrackingSession
from .detectors import LabelsDetector
from .image import filter_detections, usable_polygon
from .video_data import Layout, VideoItem, frame_stem
from .video_match import TrackBook, plan_frame

AHEAD = 4  # frames decoded (and detected on) ahead of SAM
JPEG_QUALITY = 95
_TEST_HOOKS: dict = {}  # tests only: {"kill_at": (video name, frame)} SIGKILLs this process there


@dataclass
class VideoStats:
    """What one video gave (the marker's content; no timings, so reruns write the same bytes)."""
    video: str
    frames: int = 0          # frames read and tracked
    written: int = 0         # frames in the dataset
    tracks: int = 0          # tracks with labels
    cut: int = 0             # tracks whose labels stop at their last matching detection
    objects: int = 0         # label lines
    dropped: int = 0         # masks without a usable polygon
    classes: list = field(default_factory=list)
    seconds: float = 0.0     # not in the marker

    def marker(self) -> dict:
        d = dict(vars(self))
        d.pop("seconds")
        return d


def check_video_options(v: VideoAnnotateOptions) -> None:
    """One line (exit 2) for a value outside its range."""
    def whole(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{name}={value} is not valid: expected a whole number >= 1")
    whole("det_stride", v.det_stride)
    whole("max_lost", v.max_lost)
    whole("vid_stride", v.vid_stride)
    for name in ("new_iou", "reprompt_iou"):
        value = getattr(v, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
            raise UsageError(f"{name}={value} is not valid: expected a box IoU in (0, 1]")


def video_failure(e: BaseException) -> Optional[str]:
    """The one-line reason a video is skipped, or None when ``e`` must stop the run."""
    if isinstance(e, UsageError):
        return None
    if isinstance(e, SAM2Error):
        return str(e)
    try:
        import av
        if isinstance(e, av.error.FFmpegError):
            return f"cannot decode: {e}"
    except ImportError:  # pragma: no cover - av is a dependency
        pass
    return None


class _Ahead:
    """Frames (and the detections of detection frames) read in a thread, AHEAD frames ahead:
    yields (i, rgb, detections or None)."""

    _END = object()

    def __init__(self, reader: Any, detect: Callable[[int, np.ndarray], Any], det_stride: int):
        self.reader, self.detect, self.det_stride = reader, detect, det_stride
        self.q: queue.Queue = queue.Queue(maxsize=AHEAD)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._work, name="annotate-video-ahead", daemon=True)

    def _put(self, x: Any) -> None:
        while not self.stop.is_set():
            try:
                return self.q.put(x, timeout=0.1)
            except queue.Full:
                pass

    def _work(self) -> None:
        try:
            for i, rgb in self.reader:
                if self.stop.is_set():
                    return
                last = i == len(self.reader) - 1  # the last frame too: the tail is checked as well
                self._put((i, rgb, self.detect(i, rgb) if i % self.det_stride == 0 or last else None))
        except BaseException as e:  # decode or detector failure: raised in the main thread
            self._put(e)
        finally:
            self._put(self._END)

    def __enter__(self) -> "_Ahead":
        self.thread.start()
        return self

    def __iter__(self) -> Iterator[tuple]:
        while True:
            x = self.q.get()
            if x is self._END:
                return
            if isinstance(x, BaseException):
                raise x
            yield x

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def annotate_video(item: VideoItem, detector: Any, net: Any, vopts: VideoAnnotateOptions, layout: Layout, *,
                   classes: Optional[list] = None, max_det: int = 300, save_json: bool = False, half: bool = False,
                   progress: Optional[Callable[[int, int], None]] = None) -> VideoStats:
    """Annotate one video into ``layout`` (its old files removed first); returns its stats.
    ``progress(frames done, frames)`` is called after every frame."""
    t0 = time.perf_counter()
    if isinstance(detector, LabelsDetector) and not (detector.dir / item.name).is_dir():
        raise SAM2Error(f"det_labels={detector.dir} has no folder {item.name}/ for this video "
                        f"(expected {detector.dir / item.name}/<frame>.txt)")
    reader = open_frames(item.path)
    layout.clear(item.name)
    part = layout.partial(item.name)
    try:
        stats, frames, book, size = _track(item, reader, detector, net, vopts, part, classes, max_det, half, progress)
        _finish(item, part, frames, book, size, vopts, save_json, reader, stats)
        layout.commit(item.name, part, stats.marker())
    finally:
        reader.close()
        shutil.rmtree(part, ignore_errors=True)
    stats.seconds = time.perf_counter() - t0
    return stats


def _track(item, reader, detector, net, vopts, part, classes, max_det, half, progress):
    """The streaming pass: returns (stats, [(stem, {track id: (line|None, rle)})], book, (h, w))."""
    n, h, w = len(reader), reader.height, reader.width
    session = TrackingSession(net, size=(h, w), num_frames=n, half=half, non_overlap=vopts.non_overlap)
    book = TrackBook(vopts.max_lost, vopts.det_stride)
    stats = VideoStats(item.name)
    frames: list = []
    images = part / "images"
    images.mkdir(parents=True)

    def detect(i: int, rgb: np.ndarray):
        rel = Path(item.name) / f"{frame_stem(item, reader, i)}.jpg"
        return filter_detections(detector(rgb, rel), classes, max_det)

    kill = _TEST_HOOKS.get("kill_at")
    with _Ahead(reader, detect, vopts.det_stride) as ahead:
        for i, rgb, dets in ahead:
            if kill == (item.name, i):
                os.kill(os.getpid(), signal.SIGKILL)
            masks = session.masks(i, session.step(i, image=rgb)) if session.objects else {}
            taken: list = []
            if dets is not None:
                masks, taken = _detections(session, book, i, rgb, dets, masks, vopts)
            present = {t: bool(m.any()) for t, m in masks.items()}
            book.seen(i, present)
            for t in book.due(i, taken):
                book.end(t, i)
                session.remove_object(t)
                masks.pop(t, None)
            if i % vopts.vid_stride == 0:
                stem = frame_stem(item, reader, i)
                cv2.imwrite(str(images / f"{stem}.jpg"), np.ascontiguousarray(rgb[..., ::-1]),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                frames.append((i, stem, _frame_records(book, masks)))
            stats.frames += 1
            if progress is not None:
                progress(stats.frames, n)
    return stats, frames, book, (h, w)


def _detections(session: TrackingSession, book: TrackBook, i: int, rgb: np.ndarray, dets, masks: dict,
                vopts: VideoAnnotateOptions) -> tuple[dict, list]:
    """A detection frame: start, re-prompt and score objects; returns the frame's final masks
    and the objects taken (see `video_match`)."""
    boxes, cls, conf = dets
    shown = {t: m for t, m in masks.items() if m.any()}
    tracked = {t: (main_box(m), book.tracks[t].cls) for t, m in shown.items()}
    plan = plan_frame(boxes, cls, tracked, vopts.new_iou, vopts.reprompt_iou, book.live_boxes())
    book.detected(i, plan, boxes, conf, {t: t in shown for t in masks})
    for d in plan.new:
        session.add_points(i, book.start(i, int(cls[d]), float(conf[d]), boxes[d]), box=boxes[d], image=rgb)
    for d, t in plan.reprompt + plan.refind:
        reprompt(session, i, t, boxes[d], rgb)
    if not (plan.new or plan.reprompt or plan.refind):
        return masks, plan.taken
    session.commit()
    return session.masks(i), plan.taken


def main_box(mask: np.ndarray) -> np.ndarray:
    """The xyxy box of a mask's largest part (8-connected), the part its YOLO label keeps: a
    fragment the tracker leaves behind (where an object entered, say) does not stretch it."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return masks_to_boxes(mask[None])[0]
    x, y, w, h = stats[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])), :4]
    return np.array([x, y, x + w, y + h], np.float32)


def reprompt(session: TrackingSession, frame: int, tid: int, box: np.ndarray, rgb: np.ndarray) -> None:
    """A fresh box prompt for an object: it restarts from the box (its old memories dropped, its
    id kept), so the frame's mask is the box's own rather than a correction of the drifted one,
    and the session holds one conditioning frame per object however often it is re-prompted."""
    session.remove_object(tid)
    session.add_points(frame, tid, box=box, image=rgb)


def _frame_records(book: TrackBook, masks: dict) -> dict:
    """{track id: (YOLO line or None, RLE)} of the objects with a mask on a written frame."""
    out = {}
    for t, m in masks.items():
        if not m.any():
            continue
        line = yolo_seg_lines(m[None], [book.tracks[t].cls])[0] if usable_polygon(m) else None
        out[t] = (line, mask_to_rle(m))
    return out


def _finish(item, part, frames, book, size, vopts, save_json, reader, stats) -> None:
    """Labels, the YouTube-VIS sidecar, palette PNGs and the overlay, after the cuts."""
    for i, _, recs in frames:
        for t in [t for t in recs if not book.labelled(t, i)]:
            del recs[t]
    frames = [(stem, recs) for _, stem, recs in frames]
    labelled = {t for _, recs in frames for t in recs}
    kept = {t: k for k, t in enumerate((t for t in book.tracks if t in labelled), 1)}  # output ids 1.., in start order
    stats.written, stats.tracks = len(frames), len(kept)
    stats.cut = sum(1 for t in book.tracks if book.cut(t))
    stats.classes = sorted({book.tracks[t].cls for t in kept})
    labels = part / "labels"
    labels.mkdir()
    for stem, recs in frames:
        lines = [recs[t][0] for t in kept if t in recs and recs[t][0] is not None]
        stats.objects += len(lines)
        stats.dropped += sum(1 for t in kept if t in recs and recs[t][0] is None)
        (labels / f"{stem}.txt").write_text("".join(f"{ln}\n" for ln in lines), encoding="utf-8")
    if save_json:
        _write_sidecar(item, part / "vis.json", frames, book, kept, size)
    if vopts.save_masks or vopts.save:
        _write_pictures(part, frames, kept, size, vopts, reader)


def _write_sidecar(item, path, frames, book, kept, size) -> None:
    h, w = size
    video = {"width": int(w), "height": int(h), "length": len(frames),
             "file_names": [f"{item.name}/{stem}.jpg" for stem, _ in frames]}
    tracks = []
    for t, k in kept.items():
        segs, bboxes, areas = [], [], []
        for _, recs in frames:
            if t in recs:
                rle = recs[t][1]
                m = rle_to_mask(rle)
                x1, y1, x2, y2 = (float(v) for v in masks_to_boxes(m[None])[0])
                segs.append(rle)
                bboxes.append([x1, y1, x2 - x1, y2 - y1])
                areas.append(int(m.sum()))
            else:
                segs.append(None)
                bboxes.append(None)
                areas.append(None)
        tr = book.tracks[t]
        tracks.append({"track_id": k, "category_id": tr.cls, "score": round(tr.conf, 6), "segmentations": segs,
                       "bboxes": bboxes, "areas": areas})
    path.write_text(dumps({"video": video, "tracks": tracks}) + "\n", encoding="utf-8")


def _write_pictures(part, frames, kept, size, vopts, reader) -> None:
    """DAVIS palette PNGs (pixel = output track id, ids 1-255) and/or the overlay mp4."""
    h, w = size
    writer = VideoWriter(part / "overlay.mp4", reader.fps / vopts.vid_stride if reader.fps else None, w, h) \
        if vopts.save else None
    try:
        for stem, recs in frames:
            ids = [k for t, k in kept.items() if t in recs]
            m = np.stack([rle_to_mask(recs[t][1]) for t in kept if t in recs]) if ids else np.zeros((0, h, w), bool)
            if vopts.save_masks:
                small = [j for j, k in enumerate(ids) if k <= 255]
                save_mask_pngs(part / "masks", stem, m[small], [ids[j] for j in small], mode="palette")
            if writer is not None:
                bgr = cv2.imread(str(part / "images" / f"{stem}.jpg"), cv2.IMREAD_COLOR)
                writer.write(overlay(np.ascontiguousarray(bgr[..., ::-1]), m, ids))
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
