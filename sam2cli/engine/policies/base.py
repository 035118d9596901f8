"""The tracker policy protocol, the reference's policy, and per-object state for one pass.

The Tracker asks its policy three things on a tracked frame (a frame segmented from memory,
without new clicks):

    choose = policy.begin(obj, frame, reverse)        # before decoding: the candidate chooser
    mems = policy.memories(obj, frame, reverse)        # in gather: the memories to attend to
    policy.observe(obj, frame, out, reverse)           # after it: update the object's state

`choose` is heads.sam_heads' `choose(logits (B, 3, h, w), ious (B, 3), obj_score (B, 1)) -> (B,)`
or None (the highest predicted IoU); `memories` returns [(frames ago, Memory)] as gather passes
them on (0: a conditioning-like memory, 1..num_maskmem-1: a recent one), or None for the
reference's selection. Object pointers are always the reference's. Prompted frames (clicks,
boxes, masks) never ask the policy, so they keep the reference's rule.

A policy's state lives on each ObjectTrack (`obj.policy`), so several objects, objects added
mid-video and a new video each start clean. It is valid for one pass: consecutive frames in one
direction. A tracked frame that does not follow the last one observed (a reverse pass, a second
propagation, `reset_tracking`) starts a new state, seeded from what the object already has
behind that frame; a conditioning frame reached by tracking starts one from its prompt.
"""

from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

from sam2cli.model.sam2 import Memory

MemoryList = List[Tuple[int, Memory]]


class Policy:
    """tracker=sam2: the reference's rule, exactly (no chooser, the reference's memories)."""

    name = "sam2"

    def bind(self, cfg) -> "Policy":
        """Called by the Tracker with the model's config (num_maskmem, max_obj_ptrs)."""
        self.cfg = cfg
        return self

    def begin(self, obj, frame: int, reverse: bool):
        return None

    def memories(self, obj, frame: int, reverse: bool) -> Optional[MemoryList]:
        return None

    def observe(self, obj, frame: int, out, reverse: bool) -> None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@dataclass
class PassState:
    """What every stateful policy keeps: the pass it belongs to."""
    last: int                    # the last frame observed
    reverse: bool
    now: Optional[int] = None    # the tracked frame under way (between begin and observe)


def present(out) -> Optional[torch.Tensor]:
    """The (h, w) bool mask of a FrameOut whose object is judged present, else None."""
    if out is None or float(out.obj_score.reshape(-1)[0]) <= 0:
        return None
    m = out.logits[0, 0] > 0
    return m if bool(m.any()) else None


class PassPolicy(Policy):
    """Shared pass bookkeeping; subclasses give `fresh(obj, last, reverse)`, the state of a pass
    whose last frame is `last`, seeded from the object's outputs there and before."""

    def fresh(self, obj, last: int, reverse: bool) -> PassState:  # pragma: no cover - abstract
        raise NotImplementedError

    def state(self, obj, frame: int, reverse: bool) -> PassState:
        """The object's state for tracked `frame`: a fresh one unless `frame` continues the pass."""
        st = obj.policy
        last = frame + (1 if reverse else -1)
        if not (isinstance(st, PassState) and st.last == last and st.reverse == reverse
                and obj.tracked.get(last) == reverse):
            st = obj.policy = self.fresh(obj, last, reverse)
        st.now = frame
        return st

    def active(self, obj, frame: int, reverse: bool) -> Optional[PassState]:
        """The state when `frame` is the tracked frame under way, else None (a prompt, a peek)."""
        st = obj.policy
        return st if isinstance(st, PassState) and st.now == frame and st.reverse == reverse else None

    @staticmethod
    def history(obj, last: int, reverse: bool, n: int):
        """[(t, FrameOut)] of the object's recent (tracked) outputs on the n frames ending at `last`
        in the pass's direction, nearest first: what the reference would attend to next."""
        sign = -1 if reverse else 1
        frames = (last - d * sign for d in range(n))
        return [(t, obj.recent[t]) for t in frames if t in obj.recent]

    @staticmethod
    def cond_memories(obj) -> MemoryList:
        return [(0, o.memory) for o in obj.cond.values()]
