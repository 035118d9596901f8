"""The SAM 2 memory tracker, per object, as the reference video predictor runs it.

State is explicit and small: one `ObjectTrack` per object holding its conditioning (prompted)
frames, a window of recent frames, and prompts that still wait for their memory to be encoded.
Recent frames that can no longer be attended to are evicted, so memory does not grow with the
length of the video. Memory features are stored in bfloat16, as the reference stores them.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch

from sam2cli.model.sam2 import HeadOutput, ImageFeatures, Memory, SAM2Model
from .postprocess import fill_holes

MEMORY_DTYPE = torch.bfloat16


@dataclass
class FrameOut:
    """What is kept of one object on one frame."""
    logits: torch.Tensor                 # (1, 1, h, w) low-res mask logits (holes filled)
    obj_ptr: torch.Tensor                # (1, C) object pointer
    obj_score: torch.Tensor              # (1, 1) object-presence logit
    memory: Optional[Memory] = None      # memory features (bf16) and their position encoding


@dataclass
class ObjectTrack:
    obj_id: int
    cond: Dict[int, FrameOut] = field(default_factory=dict)     # conditioning frames
    recent: Dict[int, FrameOut] = field(default_factory=dict)   # tracked frames near the front
    pending: Dict[int, Tuple[FrameOut, bool]] = field(default_factory=dict)  # prompted, no memory yet
    points: Dict[int, Tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # (1,P,2), (1,P)
    masks: Dict[int, torch.Tensor] = field(default_factory=dict)  # (1, 1, S, S) binary mask prompts
    tracked: Dict[int, bool] = field(default_factory=dict)       # frame -> tracked in reverse?

    def output(self, frame: int) -> Optional[FrameOut]:
        """The latest output on a frame: a pending prompt result, else a stored one."""
        if frame in self.pending:
            return self.pending[frame][0]
        return self.cond.get(frame) or self.recent.get(frame)


class Tracker:
    """Per-frame tracking steps for one object at a time (batch size 1, like the reference)."""

    def __init__(self, model: SAM2Model, fill_hole_area: int = 8):
        self.model = model
        self.cfg = model.cfg
        self.fill_hole_area = fill_hole_area

    # ------------------------------------------------------------------ memory selection
    def gather(self, obj: ObjectTrack, frame: int, reverse: bool, num_frames: Optional[int]):
        """The memories and object pointers the reference attends to on `frame`."""
        sign = -1 if reverse else 1
        memories: List[Tuple[int, Memory]] = [(0, o.memory) for o in obj.cond.values()]
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

    # ------------------------------------------------------------------ one frame
    def run(self, feats: ImageFeatures, obj: ObjectTrack, frame: int, is_init_cond: bool,
            points=None, mask=None, reverse: bool = False, num_frames: Optional[int] = None,
            encode_memory: bool = True, prev_logits: Optional[torch.Tensor] = None) -> FrameOut:
        """Segment one object on one frame from its prompts and/or its memory."""
        m = self.model
        if mask is not None:
            heads = m.mask_as_output(feats.top, feats.high_res, mask)
            high = mask.float() * 20.0 - 10.0
        else:
            if is_init_cond:
                pix = m.condition_on_memory(feats, [], [], 1)
            else:
                pix = m.condition_on_memory(feats, *self.gather(obj, frame, reverse, num_frames))
            n_pts = 0 if points is None else points[1].shape[1]
            multimask = (is_init_cond or self.cfg.multimask_output_for_tracking) and \
                self.cfg.multimask_min_pt_num <= n_pts <= self.cfg.multimask_max_pt_num
            coords, labels = points if points is not None else (None, None)
            heads: HeadOutput = m.sam_heads(pix, feats.high_res, coords, labels, prev_logits, multimask)
            high = heads.high_res(m.image_size)
        memory = self.encode(feats, high, heads.obj_score, points is not None) if encode_memory else None
        return FrameOut(fill_holes(heads.logits, self.fill_hole_area), heads.obj_ptr, heads.obj_score, memory)

    def encode(self, feats: ImageFeatures, high_res_logits, obj_score, from_points: bool) -> Memory:
        mem = self.model.encode_memory(feats.top, high_res_logits, obj_score, from_points)
        return Memory(mem.features.to(MEMORY_DTYPE), mem.pos)

    def encode_pending(self, obj: ObjectTrack, frame: int, feats: ImageFeatures) -> None:
        """Commit a prompted frame: encode its memory from the (hole-filled) low-res mask."""
        out, is_cond = obj.pending.pop(frame)
        high = torch.nn.functional.interpolate(out.logits, size=(self.model.image_size,) * 2,
                                               mode="bilinear", align_corners=False)
        out.memory = self.encode(feats, high, out.obj_score, from_points=True)
        (obj.cond if is_cond else obj.recent)[frame] = out
        if is_cond:
            obj.recent.pop(frame, None)

    # ------------------------------------------------------------------ bounded state
    def evict(self, obj: ObjectTrack, frame: int) -> None:
        """Drop recent frames no later step can attend to: farther than the pointer window from
        the current frame and from every conditioning frame (reverse passes start there)."""
        keep = self.cfg.max_obj_ptrs
        anchors = [frame, *obj.cond]
        for t in [t for t in obj.recent if all(abs(t - a) > keep for a in anchors)]:
            del obj.recent[t]
