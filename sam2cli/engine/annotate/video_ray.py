"""`sam2 annotate … engine=ray` on videos: whole videos to a pool of Ray actors.

Each actor holds one detector and one SAM (loaded once) and runs :func:`video.annotate_video`,
the local engine's code, on one video at a time; the driver keeps every actor busy with one video
in flight (long and short videos balance themselves) and collects one stats row per video. The
actors write the files themselves (``data``, the output folder and the weights on a filesystem
every node mounts). A video whose actor dies is given to the restarted actor and redone from
scratch (its partial folder is never moved into place). Cluster choice and resources are the
image engine's (`ray_engine.RayEngine`).
"""

from __future__ import annotations

import os
import pickle
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from rich.console import Console
from rich.markup import escape

from ..options import AnnotateOptions
from ..progress import progress_bar
from .ray_engine import RayEngine, _pickle_error, import_ray, worker_options
from .video_data import Layout, VideoItem

RETRIES = 2  # times a video is retried on a restarted actor


class VideoWorker:
    """One actor: a detector and SAM; ``annotate(row)`` does a whole video and returns its stats."""

    def __init__(self, opts: AnnotateOptions, sam_model_name: str, device: str, root: str,
                 sam_imgsz: Optional[int], threads: int = 1, detector: Any = None):
        import ray
        import torch

        torch.set_num_threads(threads)
        self.opts, self.layout = opts, Layout(Path(root))
        self.where = f"{ray.util.get_node_ip_address()} pid {os.getpid()}"
        self.init_error: Optional[bytes] = None
        try:  # a failure here is deterministic: reported through the results, not by dying
            from .detectors import build_detector
            from ..loader import load_model

            self.detector = detector or build_detector(replace(opts.detector, device=device))
            sam = opts.sam_model if Path(opts.sam_model).exists() else sam_model_name
            self.net, _ = load_model(sam, device or None, sam_imgsz)
        except Exception as e:
            self.init_error = _pickle_error(e)

    def annotate(self, row: dict) -> dict:
        from .video import annotate_video, video_failure

        out = {"name": row["name"], "error": "", "fatal": b"", "where": self.where, "stats": None, "names": {}}
        if self.init_error is not None:
            out["fatal"] = self.init_error
            return out
        item = VideoItem(int(row["index"]), str(row["name"]), Path(row["path"]))
        det = self.opts.detector
        try:
            st = annotate_video(item, self.detector, self.net, self.opts.video, self.layout, classes=det.classes,
                                max_det=det.max_det, save_json=self.opts.save_json, half=self.opts.half)
            out["stats"] = vars(st)
        except Exception as e:
            why = video_failure(e)
            if why is None:
                out["fatal"] = _pickle_error(e)
            else:
                out["error"] = why
        out["names"] = {int(k): str(v) for k, v in dict(getattr(self.detector, "names", {}) or {}).items()}
        return out


class VideoRayEngine(RayEngine):
    """``VideoRayEngine(opts, root).run(videos, console, summary)``: the videos on Ray actors."""

    def run(self, items: list[VideoItem], console: Console, summary: Any = None) -> Any:  # type: ignore[override]
        from .video import VideoStats

        ray = import_ray()
        wopts, name = worker_options(self.opts)
        t_start = time.perf_counter()
        started = self._connect(ray)
        try:
            size = max(1, min(self.workers, len(items)))
            resources, device, threads = self._resources(ray, console, size)
            actor = ray.remote(max_restarts=RETRIES, max_task_retries=RETRIES, **resources)(VideoWorker)
            pool = [actor.remote(wopts, name, device, os.path.abspath(self.out_dir), self.sam_imgsz, threads,
                                 self.detector) for _ in range(size)]
            todo = [{"index": it.index, "name": it.name, "path": os.path.abspath(it.path)} for it in items]
            init_s = time.perf_counter() - t_start
            running: dict = {}
            t0 = time.perf_counter()
            with progress_bar(console) as bar:
                task = bar.add_task(f"annotate videos (ray, {size} worker(s))", total=len(items), rate="")
                while todo or running:
                    for a in pool:
                        if todo and a not in running.values():
                            running[a.annotate.remote(todo.pop(0))] = a
                    ready, _ = ray.wait(list(running), num_returns=1)
                    running.pop(ready[0])
                    r = ray.get(ready[0])
                    if r["fatal"]:
                        raise pickle.loads(r["fatal"])
                    if r["error"]:
                        summary.fail(console, r["name"], r["error"])
                    else:
                        summary.add(VideoStats(**r["stats"]))
                    if self.names is not None:
                        for k, v in r["names"].items():
                            self.names.setdefault(int(k), v)
                    fps = summary.frames / max(time.perf_counter() - t0, 1e-9)
                    bar.update(task, advance=1, rate=f"{fps:.2f} frames/s total")
            wall = time.perf_counter() - t0
            console.print(escape(f"ray: {summary.videos} video(s), {summary.frames} frame(s) in {wall:.1f} s with "
                                 f"{size} worker(s), {summary.frames / max(wall, 1e-9):.2f} frames/s total "
                                 f"(Ray connect {init_s:.1f} s)"), highlight=False)
        finally:
            if started:
                ray.shutdown()
        return summary
