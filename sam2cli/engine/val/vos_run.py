"""`sam2 val task=vos` over a dataset: stream each video through :func:`~.val_vos.track_frames`,
score it, and optionally write the predicted masks in the input's layout.

DAVIS layout: overlaps are resolved as a palette PNG stores them (lowest id on top) before
scoring, so the scores are those of the written PNGs; ``masks/<video>/<frame>.png`` palette PNGs
for every frame (empty before the first object). SA-V layout: each object is scored on its own
mask (overlaps allowed, as in SA-V's binary PNGs); ``masks/<video>/<obj id, 3 digits>/<frame>.png``
0/255 PNGs on the annotated frames.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from PIL import Image

from sam2cli.io.atomic import atomic_path
from sam2cli.io.mask_pngs import davis_palette
from sam2cli.io.datasets.vos import VosVideo
from .vos import ObjectScores, Truth, VosScorer, global_stats, lowest_id_on_top, track_frames


def _save_png(path: Path, array: np.ndarray, palette: bool) -> None:
    img = Image.fromarray(array)
    if palette:
        img.putpalette(davis_palette())
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def _write(masks_dir: Path, video: VosVideo, t: int, pred: Truth, annotated: bool) -> None:
    stem = video.frames[t].stem
    if video.layout == "davis":
        label = np.zeros(video.size, np.uint8)
        for oid in sorted(pred, reverse=True):  # lowest id painted last: on top
            label[pred[oid]] = oid
        _save_png(masks_dir / video.name / f"{stem}.png", label, palette=True)
    elif annotated:
        for oid in video.obj_ids:
            m = pred.get(oid)
            m = np.zeros(video.size, np.uint8) if m is None else m.astype(np.uint8) * 255
            _save_png(masks_dir / video.name / f"{oid:03d}" / f"{stem}.png", m, palette=False)


def evaluate_video(model, video: VosVideo, half: bool = False, masks_dir: Optional[Path] = None,
                   advance: Callable[[str], None] = lambda name: None, tracker: str = "sam2") -> VosScorer:
    """Track and score one video; ``advance(name)`` is called once per frame."""
    scorer = VosScorer(video.name, video.obj_ids, video.annotated)
    position = {t: k for k, t in enumerate(video.annotated)}
    start = min(video.first_seen.values())
    for t in range(start):  # before the first object: nothing to track, every object empty
        if t in position and t in scorer.scored:
            scorer.add(t, video.read_truth(position[t]), {})
        if masks_dir is not None:
            _write(masks_dir, video, t, {}, t in position)
        advance(video.name)

    def frames():
        for t in range(start, len(video.frames)):
            yield t, video.read_frame(t), video.read_truth(position[t]) if t in position else None

    for t, _, truth, pred in track_frames(model, frames(), len(video.frames), half, tracker=tracker):
        if video.layout == "davis":
            pred = lowest_id_on_top(pred)
        scorer.add(t, truth, pred)
        if masks_dir is not None:
            _write(masks_dir, video, t, pred, t in position)
        advance(video.name)
    return scorer


def evaluate_videos(model, videos: Sequence[VosVideo], half: bool = False, masks_dir: Optional[Path] = None,
                    advance: Callable[[str], None] = lambda name: None, tracker: str = "sam2") -> Dict:
    """-> objects (ObjectScores, in video then id order), global (the DAVIS row), videos (per-video
    means over objects), frames, seconds (wall) and metric_seconds (in J and F)."""
    t0 = time.perf_counter()
    objects: List[ObjectScores] = []
    per_video, metric_s, n_frames = [], 0.0, 0
    for video in videos:
        scorer = evaluate_video(model, video, half, masks_dir, advance, tracker)
        objs = list(scorer.objects.values())
        objects += objs
        metric_s += scorer.seconds
        n_frames += len(video.frames)
        g = global_stats(objs)
        per_video.append({"video": video.name, "objects": len(objs), "frames": len(video.frames),
                          "annotated": len(video.annotated), **g})
    return {"objects": objects, "global": global_stats(objects), "videos": per_video, "frames": n_frames,
            "seconds": time.perf_counter() - t0, "metric_seconds": metric_s}
