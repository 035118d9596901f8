"""The SAM 2 memory tracker, per object, as the reference video predictor runs it.

The tracker owns each object's state (an `ObjectTrack`) and the protocol that changes it:

    out = tracker.prompt(feats, obj, t, points=(coords, labels))   # waits, no memory yet
    tracker.commit(obj, features_of)                                # encode the waiting memories
    out = tracker.track(feats, obj, t + 1)                          # from memory; remembered
    tracker.evict(obj, t + 1)                                       # forget what cannot be seen

`prompt_image` and `peek` serve the interactive predictor (one bank across independent images).
Callers read an object's results with `obj.output(frame)` and never write its fields.

Recent frames that can no longer be attended to are evicted, so memory does not grow with the
length of the video. Memory features are stored in bfloat16, as the reference stores them.
"""

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from sam2cli.model.sam2 import PREV_MASK_CLAMP, ImageFeatures, Memory, SAM2Model, mask_to_logits
from .heads import Choose, HeadOutput, mask_as_output, sam_heads
from .policies import Policy
from .postprocess import fill_holes

MEMORY_DTYPE = torch.bfloat16
Points = Tuple[torch.Tensor, torch.Tensor]  # (1, P, 2) coords at model resolution, (1, P) labels


@dataclass
class FrameOut:
    """What is kept of one object on one frame."""
    logits: torch.Tensor                 # (1, 1, h, w) low-res mask logits (holes filled)
    obj_ptr: torch.Tensor                # (1, C) object pointer
    obj_score: torch.Tensor              # (1, 1) object-presence logit
    memory: Optional[Memory] = None      # memory features (bf16) and their position encoding


@dataclass
class Waiting:
    """A prompted frame whose memory is not encoded yet."""
    out: FrameOut
    as_cond: bool                        # becomes a conditioning memory (else a recent one)


@dataclass
class ObjectTrack:
    """One object's memory bank. Its fields are the tracker's to change."""
    obj_id: int
    cond: Dict[int, FrameOut] = field(default_factory=dict)     # conditioning (prompted) frames
    recent: Dict[int, FrameOut] = field(default_factory=dict)   # tracked frames near the front
    waiting: Dict[int, Waiting] = field(default_factory=dict)   # prompted, memory not encoded yet
    clicks: Dict[int, Points] = field(default_factory=dict)     # the clicks/box given on a frame
    tracked: Dict[int, bool] = field(default_factory=dict)      # frame -> tracked in reverse?
    policy: Any = None                                           # the tracker policy's state (engine/policies)

    def output(self, frame: int) -> Optional[FrameOut]:
        """The latest output on a frame: a waiting prompt result, else a stored one."""
        if frame in self.waiting:
            return self.waiting[frame].out
        return self.cond.get(frame) or self.recent.get(frame)

    @property
    def prompted(self) -> bool:
        """Whether the object has a committed conditioning memory to track from."""
        return bool(self.cond)


class Tracker:
    """Per-frame tracking steps for one object at a time (batch size 1, like the reference).

    `policy` (engine/policies, `make_policy(name)`) chooses the candidate mask and the memories of
    tracked frames; None is the reference's rule (tracker=sam2), exactly."""

    def __init__(self, model: SAM2Model, *, fill_hole_area: int = 8, policy: Optional[Policy] = None):
        self.model = model
        self.cfg = model.cfg
        self.fill_hole_area = fill_hole_area
        self.policy = (policy if policy is not None else Policy()).bind(model.cfg)

    # ------------------------------------------------------------------ protocol
    def prompt(self, feats: ImageFeatures, obj: ObjectTrack, frame: int, *, points: Optional[Points] = None,
               mask: Optional[torch.Tensor] = None, num_frames: Optional[int] = None,
               add_to_clicks: bool = False) -> FrameOut:
        """Clicks/box (`points`) or a (1, 1, S, S) binary `mask` on a video frame; the result
        waits for `commit`. The reference's rule: a frame not tracked yet starts a conditioning
        frame from the prompt alone; a tracked frame is corrected, decoded with its memory and its
        previous mask, and becomes a recent memory. `add_to_clicks` adds `points` to the clicks
        given on this frame before (else they replace them; a mask clears them)."""
        if points is not None:
            old = obj.clicks.get(frame) if add_to_clicks else None
            if old is not None:
                points = (torch.cat([old[0], points[0]], 1), torch.cat([old[1], points[1]], 1))
            obj.clicks[frame] = points
        else:
            obj.clicks.pop(frame, None)
        initial = frame not in obj.tracked
        prev = obj.output(frame)
        prev_logits = None
        if prev is not None and points is not None:
            prev_logits = prev.logits.clamp(-PREV_MASK_CLAMP, PREV_MASK_CLAMP)
        out = self._segment(feats, obj, frame, points=points, mask=mask, with_memory=not initial,
                            reverse=obj.tracked.get(frame, False), num_frames=num_frames,
                            prev_logits=prev_logits)
        obj.waiting[frame] = Waiting(out, as_cond=initial)
        return out

    def prompt_image(self, feats: ImageFeatures, obj: ObjectTrack, frame: int, *,
                     points: Optional[Points] = None, mask: Optional[torch.Tensor] = None) -> FrameOut:
        """A prompt on an independent image (the interactive predictor): decoded with the
        object's memories when it has any; waits for `commit` as a conditioning memory, or for
        `discard`."""
        out = self._segment(feats, obj, frame, points=points, mask=mask, with_memory=obj.prompted)
        obj.waiting[frame] = Waiting(out, as_cond=True)
        return out

    def commit(self, obj: ObjectTrack, features: Callable[[int], ImageFeatures]) -> None:
        """Encode the memories of every waiting frame (non-conditioning ones first, as the
        reference does); `features(frame)` gives a frame's image features."""
        for frame in sorted(obj.waiting, key=lambda f: obj.waiting[f].as_cond):
            w = obj.waiting.pop(frame)
            high = F.interpolate(w.out.logits, size=(self.model.image_size,) * 2, mode="bilinear",
                                 align_corners=False)
            w.out.memory = self._encode(features(frame), high, w.out.obj_score, from_points=True)
            self.remember(obj, frame, w.out, cond=w.as_cond)

    def discard(self, obj: ObjectTrack, frame: int) -> None:
        """Drop a waiting prompt result without remembering it."""
        obj.waiting.pop(frame, None)

    def track(self, feats: ImageFeatures, obj: ObjectTrack, frame: int, *, reverse: bool = False,
              num_frames: Optional[int] = None) -> FrameOut:
        """Segment the object on `frame` from its memories and remember the result; a
        conditioning frame keeps its prompted output. The policy chooses the candidate and the
        memories here, and sees every frame's result."""
        out = obj.cond.get(frame)
        if out is None:
            choose = self.policy.begin(obj, frame, reverse)
            out = self._segment(feats, obj, frame, with_memory=True, reverse=reverse, num_frames=num_frames,
                                encode=True, choose=choose)
            self.remember(obj, frame, out, cond=False)
        obj.tracked[frame] = reverse
        self.policy.observe(obj, frame, out, reverse)
        return out

    def peek(self, feats: ImageFeatures, obj: ObjectTrack, frame: int) -> FrameOut:
        """Segment the object on `frame` from its memories, changing nothing (no memory is
        encoded or stored)."""
        return self._segment(feats, obj, frame, with_memory=True)

    # ------------------------------------------------------------------ bounded state
    def evict(self, obj: ObjectTrack, frame: int) -> None:
        """Drop recent frames no later step can attend to: farther than the pointer window from
        the current frame and from every conditioning frame (reverse passes start there)."""
        keep = self.cfg.max_obj_ptrs
        anchors = [frame, *obj.cond]
        for t in [t for t in obj.recent if all(abs(t - a) > keep for a in anchors)]:
            del obj.recent[t]

    def forget_tracking(self, obj: ObjectTrack) -> None:
        """Forget what tracking produced (recent memories, tracked frames, the policy's state); the
        prompted (conditioning) frames and their clicks stay, and so do prompts waiting for `commit`."""
        obj.recent.clear()
        obj.tracked.clear()
        obj.policy = None

    def keep_newest(self, obj: ObjectTrack, *, max_cond: int) -> None:
        """Keep the newest `max_cond` conditioning and num_maskmem - 1 recent memories (frames
        that are not a video's, where the newest matter most)."""
        for store, limit in ((obj.cond, max_cond), (obj.recent, self.cfg.num_maskmem - 1)):
            for t in sorted(store)[:-limit]:
                del store[t]
        for t in [t for t in obj.tracked if t not in obj.cond and t not in obj.recent]:
            del obj.tracked[t]

    # ------------------------------------------------------------------ memory selection
    def gather(self, obj: ObjectTrack, frame: int, reverse: bool, num_frames: Optional[int]):
        """The memories and object pointers the reference attends to on `frame`:
        ([(frames ago, Memory)], [(distance, (1, C) pointer)], pointer distance scale). On a
        tracked frame the policy may choose the memories instead; the pointers stay these."""
        sign = -1 if reverse else 1
        memories: Optional[List[Tuple[int, Memory]]] = self.policy.memories(obj, frame, reverse)
        if memories is None:
            memories = [(0, o.memory) for o in obj.cond.values()]
            for ago in range(self.cfg.num_maskmem - 1, 0, -1):  # oldest first
                o = obj.recent.get(frame - ago * sign)
                if o is not None:
                    memories.append((ago, o.memory))
        max_ptrs = min(num_frames, self.cfg.max_obj_ptrs) if num_frames else self.cfg.max_obj_ptrs
        ptrs = []
        for t, o in obj.cond.items():
            if self.cfg.only_obj_ptrs_in_the_past and (t - frame) * sign > 0:
                continue
            dist = (frame - t) * sign if self.cfg.use_signed_tpos_enc_to_obj_ptrs else abs(frame - t)
            ptrs.append((dist, o.obj_ptr))
        for d in range(1, max_ptrs):
            t = frame - d * sign
            if t < 0 or (num_frames is not None and t >= num_frames):
                break
            o = obj.recent.get(t)
            if o is not None:
                ptrs.append((d, o.obj_ptr))
        memories = [(ago, Memory(m.features.float(), m.pos)) for ago, m in memories]
        return memories, ptrs, max_ptrs - 1

    def attend(self, feats: ImageFeatures, obj: ObjectTrack, frame: int, *, reverse: bool = False,
               num_frames: Optional[int] = None) -> torch.Tensor:
        """The frame's top features fused with the object's memories -> (B, C, h, w)."""
        return self.model.condition_on_memory(feats, *self.gather(obj, frame, reverse, num_frames))

    # ------------------------------------------------------------------ one frame
    def _segment(self, feats: ImageFeatures, obj: ObjectTrack, frame: int, *, with_memory: bool,
                 points: Optional[Points] = None, mask: Optional[torch.Tensor] = None, reverse: bool = False,
                 num_frames: Optional[int] = None, prev_logits: Optional[torch.Tensor] = None,
                 encode: bool = False, choose: Optional[Choose] = None) -> FrameOut:
        """One object on one frame, from its prompts and/or its memory; `encode` also encodes its
        memory. Without memory (a first prompt) the decoder gives 3 candidates for a single click
        and keeps the best."""
        m = self.model
        if mask is not None:
            heads = mask_as_output(m, feats.top, feats.high_res, mask)
            high = mask_to_logits(mask)
        else:
            if with_memory:
                pix = self.attend(feats, obj, frame, reverse=reverse, num_frames=num_frames)
            else:
                pix = m.condition_on_memory(feats, [], [], 1)
            n_pts = 0 if points is None else points[1].shape[1]
            multimask = (not with_memory or self.cfg.multimask_output_for_tracking) and \
                self.cfg.multimask_min_pt_num <= n_pts <= self.cfg.multimask_max_pt_num
            coords, labels = points if points is not None else (None, None)
            heads: HeadOutput = sam_heads(m, pix, feats.high_res, coords, labels, prev_logits, multimask,
                                          choose=choose)
            high = heads.high_res(m.image_size)
        memory = self._encode(feats, high, heads.obj_score, points is not None) if encode else None
        return FrameOut(fill_holes(heads.logits, self.fill_hole_area), heads.obj_ptr, heads.obj_score, memory)

    def _encode(self, feats: ImageFeatures, high_res_logits, obj_score, from_points: bool) -> Memory:
        mem = self.model.encode_memory(feats.top, high_res_logits, obj_score, from_points)
        return Memory(mem.features.to(MEMORY_DTYPE), mem.pos)

    def remember(self, obj: ObjectTrack, frame: int, out: FrameOut, *, cond: bool) -> None:
        """Put a finished output (its memory encoded) in the bank as a conditioning or a recent
        memory. The protocol above calls it; training, which encodes memories with gradients,
        calls it directly."""
        if cond:
            obj.cond[frame] = out
            obj.recent.pop(frame, None)
        else:
            obj.recent[frame] = out
