"""`sam2 annotate` on videos: the job around :func:`video.annotate_video` (one video).

    sam2 annotate data=videos/ det_model=yolo11x.pt sam_model=sam2.1_b.pt det_stride=10

It picks this shard's videos (``sha1(<video>) mod n``, as images are sharded), skips the finished
ones (their marker), runs the rest locally (a bar over videos with the current video's fps) or
hands them to Ray actors (`video_ray.py`, whole videos each), then writes ``data.yaml`` and, with
save_json, the YouTube-VIS file. An unreadable video is reported in one line and skipped; the
run goes on and exits 1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from rich.console import Console
from rich.markup import escape

from ..options import AnnotateOptions
from ..progress import progress_bar
from .video import VideoStats, annotate_video, video_failure
from .video_data import Layout, VideoItem, class_names, default_root, write_data_yaml, write_vis_json


@dataclass
class VideoSummary:
    videos: int = 0
    frames: int = 0
    written: int = 0
    tracks: int = 0
    cut: int = 0
    objects: int = 0
    dropped: int = 0
    seconds: float = 0.0
    skipped: int = 0  # already done
    failures: list = field(default_factory=list)  # (video, reason)

    def add(self, st: VideoStats) -> None:
        self.videos += 1
        for k in ("frames", "written", "tracks", "cut", "objects", "dropped", "seconds"):
            setattr(self, k, getattr(self, k) + getattr(st, k))

    def fail(self, console: Console, name: str, why: str) -> None:
        self.failures.append((name, why))
        console.print(f"[yellow]skipped[/] video {escape(name)}: {escape(why)}", highlight=False)


def video_root(opts: AnnotateOptions, data: Path) -> Path:
    return Path(opts.output_dir).expanduser() if opts.output_dir else default_root(data)


def select_videos(videos: list[VideoItem], summary: VideoSummary, console: Console) -> list[VideoItem]:
    """The videos, less a second one with the same <video> name (a failure)."""
    mine, seen = [], {}
    for it in videos:
        if it.name in seen:
            summary.fail(console, str(it.path), f"same output name {it.name} as {seen[it.name]}: rename one of them")
            continue
        seen[it.name] = str(it.path)
        mine.append(it)
    return mine


def run_videos(opts: AnnotateOptions, console: Console, data: Path, videos: list[VideoItem], detector: Any,
               shard: tuple[int, int], sam_imgsz: Optional[int] = None, given: Any = None) -> int:
    """Annotate ``videos`` (this shard's, of ``data``); returns the exit code. ``given``: a
    detector object the caller passed (shipped to Ray actors instead of building one there)."""
    layout = Layout(video_root(opts, data))
    summary = VideoSummary()
    mine = select_videos(videos, summary, console)
    pending = [it for it in mine if opts.overwrite or not layout.done(it.name)]
    summary.skipped = len(mine) - len(pending)
    if pending:
        if opts.engine == "ray":
            from .video_ray import VideoRayEngine
            names = detector.names if isinstance(getattr(detector, "names", None), dict) else None
            VideoRayEngine(opts, layout.root, sam_imgsz, detector=given, names=names).run(pending, console, summary)
        else:
            _run_local(opts, console, pending, detector, layout, sam_imgsz, summary)
    i, n = shard
    names = class_names(getattr(detector, "names", None), layout.markers())
    if layout.markers():
        write_data_yaml(layout.root, names)
    fps = f", {summary.frames / summary.seconds:.2f} frames/s" if summary.seconds > 0 else ""
    console.print(f"{summary.videos} video(s) annotated{f' (shard {i}/{n})' if n > 1 else ''}, "
                  f"{summary.frames} frame(s) tracked, {summary.written} written, {summary.tracks} track(s) "
                  f"({summary.cut} cut at their last detection), {summary.objects} object label(s), "
                  f"{summary.dropped} dropped mask(s), {len(summary.failures)} failure(s), "
                  f"{summary.skipped} already done{fps}; dataset in {escape(str(layout.root))}", highlight=False)
    if opts.save_json:
        path = layout.root / ("annotations.json" if n == 1 else f"annotations_shard{i}of{n}.json")
        n_vid, n_ann = write_vis_json(path, layout, mine, names)
        console.print(f"YouTube-VIS json: {escape(str(path))} ({n_vid} video(s), {n_ann} track(s))", highlight=False)
    if summary.failures:
        console.print(f"[yellow]{len(summary.failures)} video(s) failed:[/] "
                      + escape("; ".join(f"{p} ({r})" for p, r in summary.failures[:5])), highlight=False)
        return 1
    return 0


def _run_local(opts: AnnotateOptions, console: Console, pending: list[VideoItem], detector: Any, layout: Layout,
               sam_imgsz: Optional[int], summary: VideoSummary) -> None:
    from ..loader import load_model
    net, _ = load_model(opts.sam_model, opts.device, sam_imgsz)
    det = opts.detector
    with progress_bar(console) as bar:
        task = bar.add_task("annotate videos", total=len(pending), rate="")
        for it in pending:
            t0 = time.perf_counter()

            def progress(done: int, total: int, name: str = it.name, t0: float = t0) -> None:
                fps = done / max(time.perf_counter() - t0, 1e-9)
                bar.update(task, rate=f"{escape(name)} {done}/{total} frames, {fps:.2f} fps")

            try:
                st = annotate_video(it, detector, net, opts.video, layout, classes=det.classes, max_det=det.max_det,
                                    save_json=opts.save_json, half=opts.half, progress=progress)
                summary.add(st)
            except Exception as e:
                why = video_failure(e)
                if why is None:
                    raise
                summary.fail(console, it.name, why)
            bar.update(task, advance=1)
