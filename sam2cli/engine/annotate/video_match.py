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
  is hidden or gone): it ends there, unless it is re-found;
* *re-found*: a detection no object covers, of the class of a live object no detection matched
  (drifted, taken, or absent for now), restarts that object from its box instead of starting a
  new one: the nearest such object, by the centres of the detection and of the object's last
  matched box. When it was present somewhere meanwhile (on this frame, or unmatched on a
  detection frame), its labels since its last matching detection are dropped: they were on
  something else. An object that was only hidden keeps them.

:class:`TrackBook` keeps every object's identity (the detector's class when it started, the mean
confidence of the detections matched to it, a track id) and says when an object ends: absent
(object score < 0, an empty mask) for ``max_lost`` frames, taken, or present but matched by no
detection on the detection frames of ``max_lost`` frames. The detector's last word on an object
decides how far its labels go (:meth:`TrackBook.labelled`): when the last detection frame on which it
was present matched it, all of them; otherwise (taken, unmatched, or a false detection never seen
again) only up to the last frame a detection matched it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

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
    refind: list = field(default_factory=list)     # [(det, track id)]: an uncovered detection restarts it


def _centre(b) -> np.ndarray:
    b = np.asarray(b, np.float64).reshape(4)
    return (b[:2] + b[2:]) / 2


def plan_frame(boxes: np.ndarray, cls: np.ndarray, tracked: dict, new_iou: float, reprompt_iou: float,
               live: Optional[dict] = None) -> FramePlan:
    """Detections ``boxes`` (N, 4) xyxy with classes ``cls`` (N,), in the order they are to be
    considered (highest confidence first) against ``tracked`` {track id: (mask box xyxy, class)}
    (objects with a mask on this frame); ``live`` {track id: (last matched box, class)} are the
    objects that may be re-found (default: none). Deterministic: ties go to the lower index / id."""
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
    free = {t: v for t, v in (live or {}).items() if t not in {t for _, t, _ in plan.matched}}
    for d in list(plan.new):
        near = sorted((float(np.linalg.norm(_centre(boxes[d]) - _centre(b))), t) for t, (b, c) in free.items()
                      if int(c) == int(cls[d]))
        if near:
            plan.refind.append((d, near[0][1]))
            plan.new.remove(d)
            free.pop(near[0][1])
    found = {t for _, t in plan.refind}
    plan.taken = [t for t in plan.taken if t not in found]
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
    taken: bool = False          # ended because it sat on another object's detection
    last_box: Optional[np.ndarray] = None  # the box of the last detection matched to it
    drops: list = field(default_factory=list)  # (lo, hi): its labels on frames lo < f < hi are dropped

    @property
    def conf(self) -> float:
        return self.conf_sum / self.hits if self.hits else 0.0



class TrackBook:
    """Every object of one video, live or ended (see the module docstring)."""

    def __init__(self, max_lost: int, det_stride: int):
        self.max_lost, self.det_stride = int(max_lost), int(det_stride)
        self.max_misses = max(1, math.ceil(self.max_lost / self.det_stride))
        self.tracks: dict[int, Track] = {}

    @property
    def live(self) -> list[int]:
        return [t for t, tr in self.tracks.items() if tr.ended is None]

    def start(self, frame: int, cls: int, conf: float, box: Optional[np.ndarray] = None) -> int:
        tid = len(self.tracks) + 1
        self.tracks[tid] = Track(tid, int(cls), frame, float(conf), 1, last_seen=frame, last_hit=frame,
                                 last_box=np.asarray(box, np.float64) if box is not None else None)
        return tid

    def live_boxes(self) -> dict:
        """{track id: (last matched box, class)} of the live objects (what may be re-found)."""
        return {t: (self.tracks[t].last_box, self.tracks[t].cls) for t in self.live
                if self.tracks[t].last_box is not None}

    def detected(self, frame: int, plan: FramePlan, boxes: np.ndarray, conf: np.ndarray, present: dict) -> None:
        """A detection frame's matches: hits and misses of the objects present before it, and
        the objects re-found (hits whose labels since their last hit are dropped)."""
        hit = {t: d for d, t, _ in plan.matched}
        found = {t: d for d, t in plan.refind}
        for t, here in present.items():
            tr = self.tracks[t]
            if here and tr.first != frame and t not in found:
                tr.chances += 1
                tr.misses = 0 if t in hit else tr.misses + 1
        for t, d in list(hit.items()) + list(found.items()):
            tr = self.tracks[t]
            if t in found:
                if present.get(t) or tr.misses:  # it was on something else: not just hidden
                    tr.drops.append((tr.last_hit, frame))
                tr.misses = 0
                tr.last_seen = frame
            tr.hits += 1
            tr.conf_sum += float(conf[d])
            tr.last_hit = frame
            tr.last_box = np.asarray(boxes[d], np.float64)

    def seen(self, frame: int, present: dict) -> None:
        """The objects with a mask on ``frame`` ({track id: bool})."""
        for t, here in present.items():
            if here:
                self.tracks[t].last_seen = frame

    def due(self, frame: int, taken: Optional[list] = None) -> list[int]:
        """Live objects that end on ``frame``: taken, absent for max_lost frames, or unmatched on
        the detection frames of max_lost frames."""
        out = []
        for t in self.live:
            tr = self.tracks[t]
            tr.taken = t in (taken or ())
            if tr.taken or tr.misses >= self.max_misses or frame - tr.last_seen >= self.max_lost:
                out.append(t)
        return out

    def end(self, tid: int, frame: int) -> None:
        self.tracks[tid].ended = frame

    def labelled(self, tid: int, frame: int) -> bool:
        """Whether the object's label on ``frame`` is kept: not in a dropped span, and not after
        its last matching detection when it was taken or its last chances were misses."""
        tr = self.tracks[tid]
        if any(lo < frame < hi for lo, hi in tr.drops):
            return False
        return not ((tr.taken or tr.misses) and frame > tr.last_hit)

    def cut(self, tid: int) -> bool:
        """Whether some of the object's labels are dropped."""
        tr = self.tracks[tid]
        return bool(tr.drops) or bool(tr.taken or tr.misses)
