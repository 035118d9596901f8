"""The SAM heads as the tracker runs them, over any backend (engine/backend.py).

A backend's `decode` gives the candidate masks, their IoU scores, the object score and every
candidate's object pointer; the host logic here turns that into one frame's output, as the
reference's `_forward_sam_heads` and `_use_mask_as_output` do: the padding point when there are
no clicks, the mask prompt resized to the decoder's input, absent objects set to NO_OBJ_LOGIT,
the choice of one candidate among the multimask outputs, and a mask prompt taken as the output
itself. Tensors keep their autograd graph, so training calls these too.
"""

from typing import Callable, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F

from sam2cli.model.sam2 import NO_OBJ_LOGIT, mask_to_logits
from .backend import Backend

# (logits (B, 3, h, w), ious (B, 3), obj_score (B, 1)) -> chosen candidate per row, (B,) long
Choose = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class HeadOutput(NamedTuple):
    """One SAM-head step on a frame (video semantics)."""
    multi_logits: torch.Tensor   # (B, M, 4h, 4w) low-res logits of every output mask
    ious: torch.Tensor           # (B, M)
    logits: torch.Tensor         # (B, 1, 4h, 4w) the chosen mask (best IoU when M = 3)
    obj_ptr: torch.Tensor        # (B, C) object pointer of the chosen mask
    obj_score: torch.Tensor      # (B, 1) object-presence logit

    def high_res(self, image_size: int) -> torch.Tensor:
        """(B, 1, S, S) chosen mask logits at the model input resolution."""
        return F.interpolate(self.logits, size=(image_size, image_size), mode="bilinear", align_corners=False)


def best_iou(logits: torch.Tensor, ious: torch.Tensor, obj_score: torch.Tensor) -> torch.Tensor:
    """The reference's rule: the candidate with the highest predicted IoU, (B,) long."""
    return ious.argmax(-1)


def sam_heads(backend: Backend, pix_feat: torch.Tensor, high_res: Sequence[torch.Tensor],
              coords: Optional[torch.Tensor] = None, labels: Optional[torch.Tensor] = None,
              mask_input: Optional[torch.Tensor] = None, multimask: bool = False, *,
              choose: Optional[Choose] = None) -> HeadOutput:
    """The SAM heads on a (memory-conditioned) frame: pix_feat (B, C, h, w), coords (B, P, 2) in
    input pixels and labels (B, P) or None (a padding point); mask_input (B, 1, H', W') mask
    logits of any size, e.g. the previous mask (resized to backend.mask_input_size), or None.

    choose: with `multimask`, which of the 3 candidates each row keeps. It is called as
    `choose(logits, ious, obj_score)` with the decoder's low-res mask logits (B, 3, h, w) (as
    decoded, before an absent object's are set to NO_OBJ_LOGIT), the predicted IoUs (B, 3) and
    the object-score logits (B, 1), and returns the chosen index per row, a (B,) long tensor in
    0..2. None: the highest predicted IoU (`best_iou`), the reference's rule. The chosen index
    selects both the mask and its object pointer; without `multimask` it is not called.
    """
    b = pix_feat.shape[0]
    if coords is None:  # no clicks: a single padding point
        coords = pix_feat.new_zeros(b, 1, 2)
        labels = -torch.ones(b, 1, dtype=torch.int32, device=pix_feat.device)
    if mask_input is not None:
        size = backend.mask_input_size
        if mask_input.shape[-2:] != (size, size):
            mask_input = F.interpolate(mask_input.float(), size=(size, size), mode="bilinear",
                                       align_corners=False, antialias=True)
    out = backend.decode(pix_feat, high_res, coords, labels, mask_input, multimask)
    present = out.obj_score > 0                                              # (B, 1)
    logits = torch.where(present[..., None, None], out.masks, NO_OBJ_LOGIT).float()
    if not multimask:
        return HeadOutput(logits, out.iou, logits, out.obj_ptr[:, 0], out.obj_score)
    n = out.iou.shape[0]  # the prompts' batch (a frame of batch 1 serves them all)
    best = (choose or best_iou)(out.masks, out.iou, out.obj_score)
    if not (isinstance(best, torch.Tensor) and best.shape == (n,)):
        raise ValueError(f"choose must return a ({n},) tensor of candidate indices, got "
                         f"{tuple(best.shape) if isinstance(best, torch.Tensor) else type(best).__name__}")
    best = best.to(device=logits.device, dtype=torch.long)
    idx = torch.arange(n, device=logits.device)
    return HeadOutput(logits, out.iou, logits[idx, best][:, None], out.obj_ptr[idx, best], out.obj_score)


def mask_as_output(backend: Backend, pix_feat: torch.Tensor, high_res: Sequence[torch.Tensor],
                   mask: torch.Tensor) -> HeadOutput:
    """A mask prompt taken as the output itself: mask (B, 1, S, S) binary -> logits +-10 at
    (B, 1, S/4, S/4), the pointer of the decoder given the mask, no_obj_ptr for an empty mask."""
    mask = mask.float()
    high = mask_to_logits(mask)
    low = F.interpolate(high, size=(high.shape[-2] // 4, high.shape[-1] // 4), mode="bilinear",
                        align_corners=False, antialias=True)
    ptr = sam_heads(backend, pix_feat, high_res, mask_input=backend.mask_downsample(mask)).obj_ptr
    present = (mask.flatten(1) > 0).any(1, keepdim=True).float()             # (B, 1)
    ptr = present * ptr + (1 - present) * backend.no_obj_ptr
    ious = mask.new_ones(mask.shape[0], 1)
    return HeadOutput(low, ious, low, ptr, mask_to_logits(present))
