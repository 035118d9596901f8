"""Training forward passes: prompts simulated as in SAM 2's training, predictions as StepPreds.

Images: a click or a jittered box, then `n_correct` corrective clicks from the error region of the
previous prediction (the previous low-res logits go in as the mask prompt). Videos: the first
frame is prompted (mask, box or click, then corrections), every later frame is tracked from the
memory bank exactly as at inference, and every frame is supervised.
"""

from typing import List, Optional

import torch
import torch.nn.functional as F

from sam2cli.engine.tracker import FrameOut, ObjectTrack, Tracker
from sam2cli.model.sam2 import ImageFeatures, SAM2Model
from .losses import StepPred
from .prompts_sim import click_from_errors, concat_points, initial_prompt


def upsample(logits: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(logits.float(), size=(size, size), mode="bilinear", align_corners=False)


def prompted_frame(model: SAM2Model, feats: ImageFeatures, gt: torch.Tensor, gen: torch.Generator,
                   n_correct: int, p_point: float, first_frame: bool = True):
    """A prompted (conditioning) frame: the initial prompt and the correction rounds.

    feats: one entry per object (B, ...); gt: (B, 1, S, S) bool. Returns the StepPreds and the
    last HeadOutput (for the memory) and whether the prompt was points (for memory binarising)."""
    size = model.image_size
    prompt = initial_prompt(gt.cpu(), gen, p_point=p_point)
    if prompt["kind"] == "mask":
        out = model.mask_as_output(feats.top, feats.high_res, gt.float())
        return [StepPred(gt.float() * 20.0 - 10.0, out.ious, out.obj_score)], out, False
    pix = model.condition_on_memory(feats, [], [], 1)  # first frame: the no-memory embedding
    points = prompt["points"].to(gt.device)
    labels = prompt["labels"].to(gt.device)
    steps: List[StepPred] = []
    mask_input: Optional[torch.Tensor] = None
    for r in range(n_correct + 1):
        multimask = points.shape[1] <= 1
        out = model.sam_heads(pix, feats.high_res, points, labels, mask_input, multimask)
        steps.append(StepPred(upsample(out.multi_logits, size), out.ious, out.obj_score))
        if r == n_correct:
            break
        pred = upsample(out.logits, size) > 0
        new_pts, new_lab = click_from_errors(gt.cpu(), pred.cpu(), gen)
        points, labels = concat_points(points, labels, new_pts.to(gt.device), new_lab.to(gt.device))
        mask_input = out.logits
    return steps, out, True


def image_batch(model: SAM2Model, images: torch.Tensor, gt: torch.Tensor, owner: torch.Tensor,
                gen: torch.Generator, n_correct: int = 7) -> List[List[StepPred]]:
    """images (I, 3, S, S); gt (B, 1, S, S) object masks; owner (B,) image index of each object."""
    feats = model.encode_image(images).select(owner)
    steps, _, _ = prompted_frame(model, feats, gt, gen, n_correct, p_point=1.0)
    return [steps]


def video_clip(model: SAM2Model, frames: torch.Tensor, gt: torch.Tensor, gen: torch.Generator,
               n_correct: int = 7) -> List[List[StepPred]]:
    """frames (T, 3, S, S) of one clip; gt (T, B, 1, S, S) masks of its B objects."""
    t_len, b = gt.shape[:2]
    size = model.image_size
    all_feats = model.encode_image(frames)
    track = ObjectTrack(0)
    tracker = Tracker(model, fill_hole_area=0)
    preds: List[List[StepPred]] = []
    for t in range(t_len):
        feats = all_feats.select(torch.zeros(b, dtype=torch.long, device=frames.device) + t)
        if t == 0:
            steps, out, from_points = prompted_frame(model, feats, gt[0], gen, n_correct, p_point=0.5)
            high = steps[-1].masks if out.logits.shape[1] == 1 else upsample(out.logits, size)
        else:
            pix = model.condition_on_memory(feats, *tracker.gather(track, t, False, t_len))
            out = model.sam_heads(pix, feats.high_res, multimask=True)
            steps, from_points = [StepPred(upsample(out.multi_logits, size), out.ious, out.obj_score)], False
            high = upsample(out.logits, size)
        memory = model.encode_memory(feats.top, high, out.obj_score, from_points)
        (track.cond if t == 0 else track.recent)[t] = FrameOut(out.logits, out.obj_ptr, out.obj_score, memory)
        preds.append(steps)
    return preds
