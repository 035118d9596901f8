"""Training forward passes: prompts simulated as in SAM 2's training, predictions as StepPreds.

Images: a click or a jittered box, then `n_correct` corrective clicks from the error region of the
previous prediction (the previous low-res logits go in as the mask prompt). Videos: the first
frame is prompted (mask, box or click, then corrections), every later frame is tracked from the
memory bank exactly as at inference, and every frame is supervised.

Several samples share one decoder pass: their objects are stacked, and the samples whose prompts
have the same form (mask / box / click) run together. Each sample keeps its own random generator,
drawn in the same order as if it ran alone, so a batch computes what its samples would one by one.
"""

from typing import List, NamedTuple, Sequence

import torch
import torch.nn.functional as F

from sam2cli.engine.heads import HeadOutput, mask_as_output, sam_heads
from sam2cli.engine.tracker import FrameOut, ObjectTrack, Tracker
from sam2cli.model.sam2 import ImageFeatures, SAM2Model, mask_to_logits
from .losses import StepPred
from .prompts_sim import click_from_errors, concat_points, initial_prompt


class Prompted(NamedTuple):
    """One sample's prompted frame: a StepPred per decoder pass, the last HeadOutput (for the
    memory) and whether the prompt was points (the memory encoder binarises those at inference)."""
    steps: List[StepPred]
    out: HeadOutput
    from_points: bool


def upsample(logits: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(logits.float(), size=(size, size), mode="bilinear", align_corners=False)


def spans_of(counts: Sequence[int]) -> List[slice]:
    """Object counts per sample -> each sample's slice of the stacked objects."""
    starts = [sum(counts[:i]) for i in range(len(counts))]
    return [slice(s, s + c) for s, c in zip(starts, counts)]


def correction_rounds(model: SAM2Model, feats: ImageFeatures, gt: torch.Tensor, points, labels,
                      gens: Sequence[torch.Generator], spans: Sequence[slice], n_correct: int):
    """The initial points/box, then n_correct corrective clicks, each sample's drawn from its own
    generator. feats/gt/points: the stacked objects (B, ...). -> (StepPreds, last HeadOutput)."""
    size = model.image_size
    pix = model.condition_on_memory(feats, [], [], 1)  # a prompted frame: the no-memory embedding
    steps: List[StepPred] = []
    mask_input = None
    for r in range(n_correct + 1):
        out = sam_heads(model, pix, feats.high_res, points, labels, mask_input, points.shape[1] <= 1)
        steps.append(StepPred(upsample(out.multi_logits, size), out.ious, out.obj_score))
        if r == n_correct:
            break
        pred, truth = (upsample(out.logits, size) > 0).cpu(), gt.cpu()
        clicks = [click_from_errors(truth[s], pred[s], g) for s, g in zip(spans, gens)]
        points, labels = concat_points(points, labels, torch.cat([c[0] for c in clicks]).to(gt.device),
                                       torch.cat([c[1] for c in clicks]).to(gt.device))
        mask_input = out.logits
    return steps, out


def prompted_frames(model: SAM2Model, feats: ImageFeatures, gt: torch.Tensor, spans: Sequence[slice],
                    gens: Sequence[torch.Generator], n_correct: int, p_point: float) -> List[Prompted]:
    """Prompted (conditioning) frames of several samples at once.

    feats: one entry per object (B, ...); gt (B, 1, S, S) bool; spans[i] the objects of sample i,
    gens[i] its generator. -> one Prompted per sample."""
    prompts = [initial_prompt(gt[s].cpu(), g, p_point=p_point) for s, g in zip(spans, gens)]
    groups: dict = {}
    for i, p in enumerate(prompts):
        groups.setdefault(p["kind"], []).append(i)
    results: List[Prompted] = [None] * len(spans)  # type: ignore[list-item]
    for kind, members in groups.items():
        idx = torch.cat([torch.arange(spans[i].start, spans[i].stop) for i in members]).to(gt.device)
        sub, sub_gt = feats.select(idx), gt[idx]
        local = spans_of([spans[i].stop - spans[i].start for i in members])
        if kind == "mask":
            out = mask_as_output(model, sub.top, sub.high_res, sub_gt.float())
            steps = [StepPred(mask_to_logits(sub_gt), out.ious, out.obj_score)]
        else:
            pts = torch.cat([prompts[i]["points"] for i in members]).to(gt.device)
            lab = torch.cat([prompts[i]["labels"] for i in members]).to(gt.device)
            steps, out = correction_rounds(model, sub, sub_gt, pts, lab, [gens[i] for i in members], local, n_correct)
        for i, s in zip(members, local):
            results[i] = Prompted([StepPred(*(t[s] for t in st)) for st in steps],
                                  HeadOutput(*(t[s] for t in out)), kind != "mask")
    return results


def video_clip(model: SAM2Model, frames: torch.Tensor, gt: torch.Tensor, gen: torch.Generator,
               n_correct: int = 7) -> List[List[StepPred]]:
    """frames (T, 3, S, S) of one clip; gt (T, B, 1, S, S) masks of its B objects."""
    t_len, b = gt.shape[:2]
    size = model.image_size
    all_feats = model.encode_image(frames)
    track = ObjectTrack(0)
    tracker = Tracker(model, fill_hole_area=0)  # its memory selection; memories keep their gradients
    preds: List[List[StepPred]] = []
    for t in range(t_len):
        feats = all_feats.select(torch.zeros(b, dtype=torch.long, device=frames.device) + t)
        if t == 0:
            steps, out, from_points = prompted_frames(model, feats, gt[0], [slice(0, b)], [gen], n_correct, 0.5)[0]
            high = upsample(out.logits, size) if from_points else steps[-1].masks  # the mask prompt itself
        else:
            pix = tracker.attend(feats, track, t, num_frames=t_len)
            out = sam_heads(model, pix, feats.high_res, multimask=True)
            steps, from_points = [StepPred(upsample(out.multi_logits, size), out.ious, out.obj_score)], False
            high = upsample(out.logits, size)
        memory = model.encode_memory(feats.top, high, out.obj_score, from_points)
        tracker.remember(track, t, FrameOut(out.logits, out.obj_ptr, out.obj_score, memory), cond=t == 0)
        preds.append(steps)
    return preds
