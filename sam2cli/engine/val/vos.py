"""Semi-supervised video object segmentation: prompt each object with its ground-truth mask on the
first frame where it is annotated, track it forward, score J and F on the annotated frames.

    steps = track_frames(model, frames, num_frames)     # frames: (t, image, truth or None), streamed
    scorer = VosScorer(name, obj_ids, annotated)
    for t, image, truth, pred in steps:
        scorer.add(t, truth, pred)
    scorer.objects                                       # per object: J and F per scored frame

Frames are read and encoded one at a time and the tracker keeps only what it can still attend
to, so memory does not grow with the length of the video. An object is tracked from its first
annotation on (nothing is predicted for it before), alone (batch 1, as the reference tracks), and
its masks are upsampled to the frame size. ``sam2 val`` and ``sam2 train``'s validation both run
this code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..session import TrackingSession
from ..metrics import BOUNDARY_TOL, boundary_f, eval_frame_indices, iou, sequence_stats

Truth = Dict[int, np.ndarray]  # obj id -> (H, W) bool


def track_frames(model, frames: Iterable[Tuple[int, np.ndarray, Optional[Truth]]],
                 num_frames: Optional[int] = None, half: bool = False, fill_hole_area: int = 8,
                 tracker: str = "sam2") -> Iterator[Tuple[int, np.ndarray, Optional[Truth], Truth]]:
    """Track the objects of ``frames`` ((t, (H, W, 3) uint8 RGB, truth or None) in order).

    An object id seen for the first time in a frame's truth is prompted there with its mask.
    Yields (t, image, truth, prediction {obj id: (H, W) bool} for every object started so far).
    """
    session = None
    for t, image, truth in frames:
        if session is None:
            session = TrackingSession(model, size=image.shape[:2], num_frames=num_frames, half=half,
                                      fill_hole_area=fill_hole_area, tracker=tracker)
        new = {oid: m for oid, m in (truth or {}).items() if oid not in session.objects}
        if session.objects:
            session.step(t, image=image)
        for oid, m in sorted(new.items()):
            session.add_mask(t, oid, m, image=image)
        if new:
            session.commit()
        yield t, image, truth, session.masks(t) if session.objects else {}


def lowest_id_on_top(pred: Truth) -> Truth:
    """Overlaps resolved as a palette PNG stores them: a pixel claimed by several objects goes to
    the lowest id (how Meta's DAVIS inference script writes its PNGs)."""
    taken = None
    out = {}
    for oid in sorted(pred):
        m = pred[oid] if taken is None else pred[oid] & ~taken
        out[oid] = m
        taken = m.copy() if taken is None else taken | m
    return out


@dataclass
class ObjectScores:
    """One object of one video: J and F on each scored frame."""

    video: str
    obj_id: int
    J: List[float] = field(default_factory=list)
    F: List[float] = field(default_factory=list)

    @property
    def sequence(self) -> str:
        return f"{self.video}_{self.obj_id}"

    def stats(self) -> Dict[str, float]:
        jm, jr, jd = sequence_stats(self.J)
        fm, fr, fd = sequence_stats(self.F)
        return {"J&F-Mean": (jm + fm) / 2, "J-Mean": jm, "J-Recall": jr, "J-Decay": jd,
                "F-Mean": fm, "F-Recall": fr, "F-Decay": fd}


class VosScorer:
    """J and F of every object on the scored annotated frames of one video (all but the first and
    the last annotated frame). An object missing from a frame's truth or prediction is an empty
    mask there. ``seconds`` is the time spent in the metrics."""

    def __init__(self, video: str, obj_ids: Sequence[int], annotated: Sequence[int], tol: float = BOUNDARY_TOL):
        self.objects = {int(o): ObjectScores(video, int(o)) for o in sorted(obj_ids)}
        self.scored = {annotated[i] for i in eval_frame_indices(len(annotated))}
        self.tol = tol
        self.seconds = 0.0

    def add(self, t: int, truth: Optional[Truth], pred: Truth) -> None:
        if t not in self.scored or truth is None:
            return
        t0 = time.perf_counter()
        any_mask = next(iter(truth.values()), None)
        any_mask = next(iter(pred.values()), None) if any_mask is None else any_mask
        empty = None if any_mask is None else np.zeros(any_mask.shape, bool)
        for oid, scores in self.objects.items():
            g, p = truth.get(oid, empty), pred.get(oid, empty)
            if g is None:  # no mask at all on this frame: empty against empty
                scores.J.append(1.0)
                scores.F.append(1.0)
                continue
            scores.J.append(iou(p, g))
            scores.F.append(boundary_f(p, g, self.tol))
        self.seconds += time.perf_counter() - t0


def global_stats(objects: Sequence[ObjectScores]) -> Dict[str, float]:
    """The DAVIS global row: each column the mean over objects; J&F-Mean = (J-Mean + F-Mean) / 2."""
    rows = [o.stats() for o in objects]
    keys = ["J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    out = {k: float(np.mean([r[k] for r in rows])) if rows else float("nan") for k in keys}
    return {"J&F-Mean": (out["J-Mean"] + out["F-Mean"]) / 2, **out}


def paired_difference(base: Dict[Tuple[str, int], float], other: Dict[Tuple[str, int], float], *,
                      rounds: int = 10000, level: float = 0.95, seed: int = 0) -> Dict[str, float]:
    """How far `other` is from `base` on the same objects, and how sure that is.

    base, other: {(video, obj_id): score}, e.g. each object's J&F-Mean, with the same keys.
    Returns {"delta": mean over objects of other - base (the difference of the DAVIS means),
    "low", "high": a percentile bootstrap interval at `level`, "videos": n}. The bootstrap resamples
    whole videos (with their objects), since objects of one video share its frames and fail together.
    """
    if set(base) != set(other) or not base:
        raise ValueError("paired_difference needs scores for the same, non-empty set of objects")
    videos = sorted({v for v, _ in base})
    per_video = [np.array([other[k] - base[k] for k in base if k[0] == v]) for v in videos]
    sums = np.array([d.sum() for d in per_video])          # (V,)
    counts = np.array([len(d) for d in per_video])          # (V,)
    picks = np.random.default_rng(seed).integers(0, len(videos), size=(rounds, len(videos)))  # (R, V)
    boots = sums[picks].sum(1) / counts[picks].sum(1)       # (R,): the mean over the resampled objects
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(boots, [tail, 100 - tail])
    return {"delta": float(sums.sum() / counts.sum()), "low": float(low), "high": float(high), "videos": len(videos)}


def score_clip(model, frames: Sequence[np.ndarray], masks: np.ndarray, obj_ids: Sequence[int],
               half: bool = False, name: str = "clip") -> List[ObjectScores]:
    """Every frame annotated: frames T x (H, W, 3), masks (T, N, H, W) bool of ``obj_ids`` -> scores.
    (`sam2 train`'s validation clips.)"""
    ids = [int(i) for i in obj_ids]
    scorer = VosScorer(name, ids, list(range(len(frames))))
    steps = ((t, f, {oid: masks[t, k] for k, oid in enumerate(ids) if masks[t, k].any()})
             for t, f in enumerate(frames))
    for t, _, truth, pred in track_frames(model, steps, len(frames), half):
        scorer.add(t, truth, lowest_id_on_top(pred))
    return list(scorer.objects.values())
