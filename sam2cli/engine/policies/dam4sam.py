"""tracker=dam4sam: a distractor-aware memory (after DAM4SAM, Videnovic et al., arXiv 2411.17576;
our own code from the paper's description).

The memory is split in two (num_maskmem - 1 = 6 slots besides the prompted frames, as SAM 2 has):

* recent appearances (RAM, `ram_size` slots): the newest frame where the object is present, and
  frames taken every `every` present frames; frames where it is absent are skipped, so an
  occlusion does not fill the memory with empty masks. Temporal positions are their ranks.
  `every` is 1 (the last present frames), not the paper's 5: with 5 this small model lost
  objects on plain clips of a tuning split (cfg/trackers/dam4sam.yaml). With `spare` on (ours),
  the anchor slots not yet filled hold recent appearances too, so that until anchors come the
  object attends to its last 6 present frames, as SAM 2 does: with 3, a partial occlusion of 3
  frames filled the whole recent memory with poor masks and the object was judged absent
  for 5 frames where SAM 2 kept it (a plain tuning split, seed 6464).
* distractor-resolving anchors (DRM, `drm_size` slots): a tracked frame becomes an anchor, kept
  like a prompted frame (no temporal position), when tracking is reliable (predicted IoU of the
  chosen mask >= iou_threshold, its area >= area_ratio x the median of the last `area_window`
  present frames) and an alternative candidate reveals a look-alike: the box of the chosen mask
  is under `box_ratio` of the box holding it and that alternative (the alternative reaches out
  to something else). Anchors are at least `anchor_gap` frames apart; the oldest goes first.

The candidate choice is the reference's (the highest predicted IoU).
"""

from collections import deque
from dataclasses import dataclass, field
from functools import partial
from statistics import median
from typing import Deque, List, Optional, Tuple

import torch

from .base import MemoryList, PassPolicy, PassState, present
from .kalman import Box, box_area, box_union, mask_box


@dataclass
class DamState(PassState):
    newest: Optional[Tuple[int, object]] = None                       # last frame with the object
    ram: Deque[Tuple[int, object]] = field(default_factory=deque)     # every `every` present frames, oldest first
    count: int = 0                                                     # present frames since the last RAM entry
    drm: Deque[Tuple[int, object]] = field(default_factory=deque)     # anchors, oldest first
    last_anchor: Optional[int] = None
    areas: Deque[float] = field(default_factory=deque)                # mask areas of recent present frames
    cand: Optional[Tuple[List[Optional[Box]], int, float]] = None     # frame's candidate boxes, choice, its IoU


def reveals_distractor(boxes: List[Optional[Box]], chosen: int, box_ratio: float) -> bool:
    """Whether an alternative candidate reaches beyond the chosen one: the chosen box's area is
    under `box_ratio` of the area of the box holding both."""
    b = boxes[chosen]
    if b is None or box_area(b) <= 0:
        return False
    return any(box_area(b) < box_ratio * box_area(box_union([b, o]))
               for k, o in enumerate(boxes) if k != chosen and o is not None)


class Dam4Sam(PassPolicy):
    name = "dam4sam"

    def __init__(self, ram_size: int = 3, every: int = 1, drm_size: int = 3, spare: bool = True,
                 iou_threshold: float = 0.8, area_ratio: float = 0.8, area_window: int = 10,
                 box_ratio: float = 0.7, anchor_gap: int = 5):
        self.ram_size, self.every, self.drm_size = int(ram_size), max(int(every), 1), int(drm_size)
        self.spare = bool(spare)
        self.iou_threshold, self.area_ratio, self.area_window = float(iou_threshold), float(area_ratio), int(area_window)
        self.box_ratio, self.anchor_gap = float(box_ratio), int(anchor_gap)
        if self.ram_size < 1 or self.drm_size < 0:
            raise ValueError("dam4sam needs ram_size >= 1 and drm_size >= 0")

    def __repr__(self) -> str:
        return (f"Dam4Sam(ram_size={self.ram_size}, every={self.every}, drm_size={self.drm_size}, spare={self.spare}, "
                f"iou_threshold={self.iou_threshold}, area_ratio={self.area_ratio}, box_ratio={self.box_ratio}, "
                f"anchor_gap={self.anchor_gap})")

    def bind(self, cfg) -> "Dam4Sam":
        if self.ram_size + self.drm_size > cfg.num_maskmem - 1:
            raise ValueError(f"dam4sam: ram_size + drm_size = {self.ram_size + self.drm_size} is more than the "
                             f"model's {cfg.num_maskmem - 1} memory slots besides the prompted frames")
        return super().bind(cfg)

    def fresh(self, obj, last: int, reverse: bool) -> DamState:
        st = DamState(last, reverse, ram=deque(maxlen=self.ram_size + self.drm_size * self.spare),
                      drm=deque(maxlen=self.drm_size),
                      areas=deque(maxlen=self.area_window))
        for t, o in self.history(obj, last, reverse, self.cfg.num_maskmem - 1):
            if present(o) is not None:
                st.newest = (t, o)
                break
        m = present(obj.output(last))
        if m is not None:
            st.areas.append(float(m.sum()))
        return st

    def begin(self, obj, frame: int, reverse: bool):
        st = self.state(obj, frame, reverse)
        st.cand = None
        return partial(self.choose, st)

    @staticmethod
    def choose(st: DamState, logits: torch.Tensor, ious: torch.Tensor, obj_score: torch.Tensor) -> torch.Tensor:
        """The reference's choice (best predicted IoU); records row 0's candidate boxes."""
        best = ious.argmax(-1)
        st.cand = ([mask_box(logits[0, k] > 0) for k in range(logits.shape[1])], int(best[0]), float(ious[0, best[0]]))
        return best

    def anchor(self, st: DamState, frame: int, area: float) -> bool:
        """The DRM trigger on this frame's candidates (reliable tracking and a revealed look-alike)."""
        if st.cand is None or self.drm_size == 0:
            return False
        boxes, chosen, iou = st.cand
        if iou < self.iou_threshold or (st.areas and area < self.area_ratio * median(st.areas)):
            return False
        if st.last_anchor is not None and abs(frame - st.last_anchor) < self.anchor_gap:
            return False
        return reveals_distractor(boxes, chosen, self.box_ratio)

    def observe(self, obj, frame: int, out, reverse: bool) -> None:
        if obj.cond.get(frame) is out:  # a prompted frame: a new pass starts from its mask
            obj.policy = self.fresh(obj, frame, reverse)
            return
        st = self.active(obj, frame, reverse)
        if st is None:
            return
        seen = present(out)
        if seen is not None:
            area = float(seen.sum())
            if self.anchor(st, frame, area):
                st.drm.append((frame, out))
                st.last_anchor = frame
            st.count += 1
            if st.count >= self.every:
                st.ram.append((frame, out))
                st.count = 0
            st.newest = (frame, out)
            st.areas.append(area)
        st.last, st.now = frame, None

    def memories(self, obj, frame: int, reverse: bool) -> Optional[MemoryList]:
        st = self.active(obj, frame, reverse)
        if st is None:
            return None
        mems = self.cond_memories(obj) + [(0, o.memory) for _, o in st.drm]
        anchors = {t for t, _ in st.drm}
        recent = ([st.newest] if st.newest is not None else []) + list(reversed(st.ram))
        recent = [e for k, e in enumerate(recent) if e[0] not in anchors and all(e[0] != f[0] for f in recent[:k])]
        slots = self.ram_size + (self.drm_size - len(st.drm)) * self.spare
        recent = recent[:slots]                               # newest first, no frame twice
        for rank in range(len(recent), 0, -1):                # oldest first, as the reference orders them
            mems.append((rank, recent[rank - 1][1].memory))
        return mems
