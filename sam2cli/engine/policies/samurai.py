"""tracker=samurai: motion-aware candidate choice and memory selection (after SAMURAI, Yang et al.,
arXiv 2411.11922; our own code from the paper's description).

Each object has a constant-velocity Kalman filter on its box (`KalmanBox`). Once the filter has
agreed with the tracked box on `warmup` consecutive frames (box IoU of its prediction with the
chosen mask's box >= `stable_iou`), a tracked frame keeps the candidate with the best

    alpha * IoU(predicted box, candidate's box) + (1 - alpha) * predicted IoU

instead of the best predicted IoU. Memory: instead of the last num_maskmem - 1 frames, the last
num_maskmem - 1 frames whose chosen mask passed the thresholds (predicted IoU > mask_threshold,
object score > obj_threshold, and, while the filter is trusted, box IoU with its prediction >
kf_threshold); their temporal positions are their ranks (1 = the newest), or their distances in
frames (`positions: distance`, at most num_maskmem - 1). The filter coasts on frames where the
object is absent and is dropped after `max_coast` of them (restarted when the object is seen).
`mask_threshold` is 0.0, not the paper's 0.5: this small model's predicted IoU is too weak a
judge of its masks (cfg/trackers/samurai.yaml), so the gate is in effect the object score and,
while the filter is trusted, the box IoU.
"""

from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import Deque, Optional, Tuple

import torch

from .base import MemoryList, PassPolicy, PassState, present
from .kalman import Box, KalmanBox, box_iou, mask_box


@dataclass
class SamuraiState(PassState):
    kf: Optional[KalmanBox] = None
    stable: int = 0                  # consecutive frames the filter's prediction matched the mask
    coast: int = 0                   # frames since the object was last seen
    pred: Optional[Box] = None       # the filter's box for the frame under way
    iou: Optional[float] = None      # predicted IoU of the frame's chosen candidate (None: not decoded as 3)
    kf_iou: Optional[float] = None   # its box IoU with `pred` while the filter is trusted, else None
    good: Deque[Tuple[int, object]] = field(default_factory=deque)  # (frame, FrameOut), newest last


class Samurai(PassPolicy):
    name = "samurai"

    def __init__(self, alpha: float = 0.25, warmup: int = 15, stable_iou: float = 0.3, mask_threshold: float = 0.0,
                 obj_threshold: float = 0.0, kf_threshold: float = 0.0, max_coast: int = 10,
                 std_pos: float = 1 / 20, std_vel: float = 1 / 160, positions: str = "rank"):
        if positions not in ("rank", "distance"):
            raise ValueError(f"samurai positions must be rank or distance, got {positions!r}")
        self.alpha, self.warmup, self.stable_iou = float(alpha), int(warmup), float(stable_iou)
        self.mask_threshold, self.obj_threshold, self.kf_threshold = float(mask_threshold), float(obj_threshold), \
            float(kf_threshold)
        self.max_coast, self.std_pos, self.std_vel, self.positions = int(max_coast), float(std_pos), float(std_vel), \
            positions

    def __repr__(self) -> str:
        return (f"Samurai(alpha={self.alpha}, warmup={self.warmup}, stable_iou={self.stable_iou}, "
                f"mask_threshold={self.mask_threshold}, obj_threshold={self.obj_threshold}, "
                f"kf_threshold={self.kf_threshold}, max_coast={self.max_coast}, positions={self.positions!r})")

    @property
    def slots(self) -> int:
        return self.cfg.num_maskmem - 1

    def fresh(self, obj, last: int, reverse: bool) -> SamuraiState:
        st = SamuraiState(last, reverse, good=deque(maxlen=self.slots))
        seen = present(obj.output(last))
        if seen is not None:
            st.kf, st.stable = KalmanBox(mask_box(seen), self.std_pos, self.std_vel), 1
        for t, o in reversed(self.history(obj, last, reverse, self.slots)):
            if float(o.obj_score.reshape(-1)[0]) > self.obj_threshold:
                st.good.append((t, o))
        return st

    def begin(self, obj, frame: int, reverse: bool):
        st = self.state(obj, frame, reverse)
        st.iou = st.kf_iou = None
        st.pred = st.kf.predict() if st.kf is not None else None
        return partial(self.choose, st)

    def trusted(self, st: SamuraiState) -> bool:
        return st.pred is not None and st.stable >= self.warmup

    def choose(self, st: SamuraiState, logits: torch.Tensor, ious: torch.Tensor, obj_score: torch.Tensor) -> torch.Tensor:
        """heads.sam_heads' chooser for one object (rows share its filter; the tracker's batch is 1)."""
        best = ious.argmax(-1)
        if self.trusted(st):
            for b in range(logits.shape[0]):
                motion = torch.tensor([box_iou(st.pred, mask_box(logits[b, k] > 0)) for k in range(logits.shape[1])])
                score = self.alpha * motion + (1 - self.alpha) * ious[b].detach().float().cpu()
                best[b] = int(score.argmax())
                if b == 0:
                    st.kf_iou = float(motion[best[0]])
        st.iou = float(ious[0, best[0]])
        return best

    def observe(self, obj, frame: int, out, reverse: bool) -> None:
        if obj.cond.get(frame) is out:  # a prompted frame: a new pass starts from its mask
            obj.policy = self.fresh(obj, frame, reverse)
            return
        st = self.active(obj, frame, reverse)
        if st is None:
            return
        seen = present(out)
        box = mask_box(seen) if seen is not None else None
        if box is None:
            st.coast += 1
            if st.coast > self.max_coast:
                st.kf, st.stable = None, 0
        elif st.kf is None:
            st.kf, st.stable, st.coast = KalmanBox(box, self.std_pos, self.std_vel), 1, 0
        else:
            agree = box_iou(st.pred, box) >= self.stable_iou
            st.kf.update(box)
            st.stable, st.coast = (st.stable + 1 if agree else 0), 0
        if ((st.iou is None or st.iou > self.mask_threshold)
                and float(out.obj_score.reshape(-1)[0]) > self.obj_threshold
                and (st.kf_iou is None or st.kf_iou > self.kf_threshold)):
            st.good.append((frame, out))
        st.last, st.now = frame, None

    def memories(self, obj, frame: int, reverse: bool) -> Optional[MemoryList]:
        st = self.active(obj, frame, reverse)
        if st is None:
            return None
        kept = list(st.good)[-self.slots:]
        mems = self.cond_memories(obj)
        for i, (t, o) in enumerate(kept):  # oldest first, as the reference orders recent memories
            ago = len(kept) - i if self.positions == "rank" else min(abs(frame - t), self.slots)
            mems.append((ago, o.memory))
        return mems
