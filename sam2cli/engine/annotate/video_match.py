"""The bookkeeping of `sam2 annotate` on videos, as plain functions and records (no model, no I/O).

On a detection frame, :func:`plan_frame` decides what each detection does, against the boxes of
the masks the tracker has for its objects on that frame:

* *covered*: its box IoU with some tracked object's mask box, of the same class, is >= ``new_iou``;
  a detection no object covers starts a new object (prompted with its box);
* *matched*: detections and objects are paired one to one, highest IoU first, among covering
  pairs; a matched detection whose IoU is below ``reprompt_iou`` gives its object a fresh box
  prompt (the tracker's mask has drifted from what the detector sees);
* *taken*: an object no detection matches, whose mask box a detection of another object (matched
  to it, or starting it) covers with IoU >= ``TAKEN_IOU``, has drifted onto that object (its own
  is hidden or gone): it ends there.

:class:`TrackBook` keeps every object's identity (the detector's class when it started, the mean
confidence of the detections matched to it, a track id) and says when an object ends: absent
(object score < 0, an empty mask) for ``max_lost`` frames, or present but matched by no detection
on the detection frames of ``max_lost`` frames. An object ended by the detector's evidence (taken,
or unmatched) keeps its labels up to the last frame a detection matched it. An object the detector saw once and never again on
a later detection frame where it was still tracked is *unconfirmed* (a likely false detection);
its labels are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

MIN_HITS = 2  # detections a track needs once a later detection frame could have matched it
TAKEN_IOU = 0.7  # an unmatched object whose mask box another object's detection covers this well ends


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4); 0 where a union is empty."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


@dataclass
class FramePlan:
    """What the detections of one frame do (indices into the frame's detections)."""
    new: list = field(default_factory=list)        # [det] that start an object
    matched: list = field(default_factory=list)    # [(det, track id, iou)]
    reprompt: list = field(default_factory=list)   # [(det, track id)]: matched, iou < reprompt_iou
    covered: list = field(default_factory=list)    # [det] covered but paired with no object
    taken: list = field(default_factory=list)      # [track id]: unmatched, on another object's detection


def plan_frame(boxes: np.ndarray, cls: np.ndarray, tracked: dict, new_iou: float, reprompt_iou: float) -> FramePlan:
    """Detections ``boxes`` (N, 4) xyxy with classes ``cls`` (N,), in the order they are to be
    considered (highest confidence first) against ``tracked`` {track id: (mask box xyxy, class)}
    (objects with a mask on this frame). Deterministic: ties go to the lower index / id."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    cls = np.asarray(cls).reshape(-1)
    ids = list(tracked)
    plan = FramePlan()
    if ids and len(boxes):
        tb = np.array([tracked[t][0] for t in ids], np.float64).reshape(-1, 4)
        tc = np.array([int(tracked[t][1]) for t in ids])
        iou = np.where(cls[:, None] == tc[None, :], box_iou(boxes, tb), -1.0)
    else:
        iou = np.full((len(boxes), len(ids)), -1.0)
    covers = iou >= new_iou
    pairs = sorted(((-iou[d, k], d, k) for d, k in zip(*np.nonzero(covers))))
    used_d, used_k = set(), set()
    for neg, d, k in pairs:
        if d in used_d or k in used_k:
            continue
        used_d.add(d)
        used_k.add(k)
        plan.matched.append((int(d), ids[k], float(-neg)))
        if -neg < reprompt_iou:
            plan.reprompt.append((int(d), ids[k]))
    starts: list = []  # boxes of the new objects of this frame: a duplicate detection starts nothing
    for d in range(len(boxes)):
        if covers[d].any():
            if d not in used_d:
                plan.covered.append(d)
            continue
        dup = any(c == cls[d] and box_iou(boxes[d], b)[0, 0] >= new_iou for b, c in starts)
        if not dup:
            plan.new.append(d)
            starts.append((boxes[d], cls[d]))
    owned = boxes[sorted(used_d | set(plan.new))]
    if len(owned):
        plan.taken = [t for k, t in enumerate(ids) if k not in used_k
                      and box_iou(np.asarray(tracked[t][0], np.float64), owned).max() >= TAKEN_IOU]
    plan.matched.sort()
    plan.reprompt.sort()
    return plan


@dataclass
class Track:
    """One object's identity and liveness."""
    track_id: int
    cls: int
    first: int                   # the frame it started on
    conf_sum: float = 0.0
    hits: int = 0                # detections matched to it, its first one included
    chances: int = 0             # later detection frames on which it was present
    misses: int = 0              # consecutive detection frames present but unmatched
    last_seen: int = 0           # last frame it had a mask
    last_hit: int = 0            # last frame a detection matched it
    ended: Optional[int] = None  # the frame it ended on
    cut: Optional[int] = None    # its labels stop after this frame (ended on the detector's evidence)

    @property
    def conf(self) -> float:
        return self.conf_sum / self.hits if self.hits else 0.0

    @property
    def confirmed(self) -> bool:
        return self.hits >= MIN_HITS or self.chances == 0


class TrackBook:
    """Every object of one video, live or ended (see the module docstring)."""

    def __init__(self, max_lost: int, det_stride: int):
        self.max_lost, self.det_stride = int(max_lost), int(det_stride)
        self.max_misses = max(1, math.ceil(self.max_lost / self.det_stride))
        self.tracks: dict[int, Track] = {}

    @property
    def live(self) -> list[int]:
        return [t for t, tr in self.tracks.items() if tr.ended is None]

    def start(self, frame: int, cls: int, conf: float) -> int:
        tid = len(self.tracks) + 1
        self.tracks[tid] = Track(tid, int(cls), frame, float(conf), 1, last_seen=frame, last_hit=frame)
        return tid

    def detected(self, frame: int, plan: FramePlan, conf: np.ndarray, present: dict) -> None:
        """A detection frame's matches: hits and misses of the objects present before it."""
        hit = {t: d for d, t, _ in plan.matched}
        for t, here in present.items():
            tr = self.tracks[t]
            if not here or tr.first == frame:
                continue
            tr.chances += 1
            if t in hit:
                tr.hits += 1
                tr.conf_sum += float(conf[hit[t]])
                tr.misses = 0
                tr.last_hit = frame
            else:
                tr.misses += 1

    def seen(self, frame: int, present: dict) -> None:
        """The objects with a mask on ``frame`` ({track id: bool})."""
        for t, here in present.items():
            if here:
                self.tracks[t].last_seen = frame

    def due(self, frame: int, taken: Optional[list] = None) -> list[int]:
        """Live objects that end on ``frame``: taken, absent for max_lost frames, or unmatched on
        the detection frames of max_lost frames. Those ended by the detector's evidence get their
        ``cut``: the last frame a detection matched them."""
        out = []
        for t in self.live:
            tr = self.tracks[t]
            by_detector = t in (taken or ()) or tr.misses >= self.max_misses
            if by_detector or frame - tr.last_seen >= self.max_lost:
                tr.cut = tr.last_hit if by_detector else None
                out.append(t)
        return out

    def end(self, tid: int, frame: int) -> None:
        self.tracks[tid].ended = frame

    def kept(self) -> dict[int, int]:
        """{track id: output id}: the confirmed tracks numbered 1.. in the order they started."""
        return {t: k for k, t in enumerate((t for t, tr in self.tracks.items() if tr.confirmed), 1)}
