"""Prompt simulation for training, as in SAM 2's training recipe.

Per clip (one draw for the whole batch of objects, as the reference does):

- with probability ``1 - p_point`` the first frame is prompted with the ground-truth mask itself;
- otherwise with probability ``p_box`` a noisy box (corners jittered by up to 10% of the box
  size, at most 20 px), else one positive click sampled uniformly inside the object;
- then ``NUM_CORRECTION_POINTS`` corrective clicks, each from the error region of the previous
  prediction: a positive click in a false-negative pixel or a negative click in a false-positive
  pixel (``'uniform'``: uniformly over all error pixels, the training default; ``'center'``: the
  point farthest from the boundary of its error region, as in evaluation). With probability
  ``p_from_gt`` a corrective click ignores the prediction and is sampled from the ground truth.

So by default: 50% mask, 25% box, 25% click. On single images (no memory to propagate a mask
prompt) the reference always uses points/boxes: call ``initial_prompt(..., p_point=1.0)``.

Coordinates are (x, y) pixel indices of the masks' grid, as float; labels are int32:
1 positive, 0 negative, 2 box top-left, 3 box bottom-right. Randomness comes from an optional
``torch.Generator`` (seeded for reproducibility); without one, torch's global RNG.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

__all__ = ["PROB_POINT", "PROB_BOX", "NUM_CORRECTION_POINTS", "PROB_FROM_GT", "EVAL_METHOD",
           "initial_prompt", "noisy_box_points", "click_from_errors", "concat_points"]

# SAM 2.1 training config (SAM2Train)
PROB_POINT = 0.5  # prob_to_use_pt_input_for_train (else the mask is the prompt)
PROB_BOX = 0.5  # prob_to_use_box_input_for_train (given point input)
NUM_CORRECTION_POINTS = 7  # num_correction_pt_per_frame
PROB_FROM_GT = 0.1  # prob_to_sample_from_gt_for_train
EVAL_METHOD = "center"  # pt_sampling_for_eval; training always samples 'uniform'


def _rand(n: int, generator: torch.Generator | None, device) -> torch.Tensor:
    gdev = generator.device if generator is not None else "cpu"
    return torch.rand(n, generator=generator, device=gdev).to(device)


def _check_masks(gt: torch.Tensor, name="gt_masks") -> torch.Tensor:
    if gt.dim() != 4 or gt.shape[1] != 1:
        raise ValueError(f"{name} must be (B, 1, H, W), got {tuple(gt.shape)}")
    return gt if gt.dtype == torch.bool else gt > 0


def initial_prompt(gt_masks: torch.Tensor, generator: torch.Generator | None = None,
                   p_point: float = PROB_POINT, p_box: float = PROB_BOX, method: str = "uniform",
                   noise: float = 0.1, bound: float = 20) -> dict:
    """The first prompt for a batch of objects on a conditioning frame.

    Returns ``dict(kind, points, labels, mask)``: ``kind='mask'`` with ``mask`` = the (B, 1, H, W)
    bool ground truth (points/labels None), or ``kind='box'`` with points (B, 2, 2) and labels
    (B, 2) = [2, 3], or ``kind='click'`` with points (B, 1, 2) and labels (B, 1) (1, or 0 for an
    empty mask: a negative click on the background).
    """
    gt = _check_masks(gt_masks)
    r = _rand(2, generator, "cpu")  # always two draws, so the stream does not depend on the outcome
    if not float(r[0]) < p_point:
        return {"kind": "mask", "points": None, "labels": None, "mask": gt}
    if float(r[1]) < p_box:
        pts, lab = noisy_box_points(gt, noise=noise, bound=bound, generator=generator)
        return {"kind": "box", "points": pts, "labels": lab, "mask": None}
    pts, lab = click_from_errors(gt, None, generator=generator, method=method, p_from_gt=0.0)
    return {"kind": "click", "points": pts, "labels": lab, "mask": None}


def _mask_box(gt: torch.Tensor) -> torch.Tensor:
    """Tight inclusive box (x0, y0, x1, y1) per mask, (B, 4) float; an empty mask gives (W, H, -1, -1)."""
    B, _, H, W = gt.shape
    cols = gt[:, 0].any(dim=1)  # (B, W)
    rows = gt[:, 0].any(dim=2)  # (B, H)
    xs = torch.arange(W, device=gt.device)
    ys = torch.arange(H, device=gt.device)
    x0 = torch.where(cols, xs, W).amin(1)
    x1 = torch.where(cols, xs, -1).amax(1)
    y0 = torch.where(rows, ys, H).amin(1)
    y1 = torch.where(rows, ys, -1).amax(1)
    return torch.stack([x0, y0, x1, y1], 1).float()


def noisy_box_points(gt_masks: torch.Tensor, noise: float = 0.1, bound: float = 20,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A jittered box around each mask, as two corner points.

    Each coordinate of the tight box (inclusive pixel indices) moves by a uniform amount in
    [-d, d], d = min(noise * box size, bound) along that axis, and is clamped to the image
    ([0, W-1] x [0, H-1]). Returns points (B, 2, 2) float [[x0, y0], [x1, y1]] and labels
    (B, 2) int32 = [2, 3]. An empty mask gives a degenerate (inverted) box, as the reference does.
    """
    gt = _check_masks(gt_masks)
    B, _, H, W = gt.shape
    box = _mask_box(gt)
    if noise > 0:
        bw = box[:, 2] - box[:, 0]
        bh = box[:, 3] - box[:, 1]
        dx = torch.minimum(bw * noise, torch.tensor(float(bound), device=gt.device))
        dy = torch.minimum(bh * noise, torch.tensor(float(bound), device=gt.device))
        u = _rand(B * 4, generator, gt.device).view(B, 4) * 2 - 1
        box = box + u * torch.stack([dx, dy, dx, dy], 1)
        lo = torch.zeros(4, device=gt.device)
        hi = torch.tensor([W - 1, H - 1, W - 1, H - 1], dtype=box.dtype, device=gt.device)
        box = torch.maximum(torch.minimum(box, hi), lo)
    labels = torch.tensor([2, 3], dtype=torch.int32, device=gt.device).expand(B, 2).contiguous()
    return box.view(B, 2, 2), labels


def _uniform_error_click(gt, pred, generator):
    B, _, H, W = gt.shape
    fn = (gt & ~pred).flatten(1)
    fp = (~gt & pred).flatten(1)
    err = fn | fp
    all_correct = ~err.any(1, keepdim=True)
    # no error at all: a negative click on the background (if there is any)
    region = torch.where(all_correct, ~gt.flatten(1), err)
    count = region.sum(1)
    k = (_rand(B, generator, gt.device) * count).long().clamp(min=0)
    k = torch.minimum(k, (count - 1).clamp(min=0))
    idx = (region.cumsum(1) > k[:, None]).to(torch.uint8).argmax(1)  # the k-th pixel of the region
    labels = fn.gather(1, idx[:, None]).to(torch.int32)
    points = torch.stack([idx % W, idx // W], 1).float()[:, None]
    return points, labels


def _center_error_click(gt, pred):
    """The FN or FP pixel farthest from its region's boundary (the image border counts as one)."""
    B = gt.shape[0]
    W = gt.shape[-1]
    fn = (gt & ~pred)[:, 0].cpu().numpy()
    fp = (~gt & pred)[:, 0].cpu().numpy()
    points = torch.zeros(B, 1, 2)
    labels = torch.zeros(B, 1, dtype=torch.int32)

    def dist(m):
        d = cv2.distanceTransform(np.pad(m, 1).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        return d[1:-1, 1:-1].ravel()

    for b in range(B):
        dfn, dfp = dist(fn[b]), dist(fp[b])
        i_fn, i_fp = int(dfn.argmax()), int(dfp.argmax())
        positive = dfn[i_fn] > dfp[i_fp]  # a tie (no error at all: both 0) gives a negative click
        i = i_fn if positive else i_fp
        points[b, 0, 0], points[b, 0, 1] = i % W, i // W
        labels[b, 0] = int(positive)
    return points.to(gt.device), labels.to(gt.device)


def click_from_errors(gt_masks: torch.Tensor, pred_masks: torch.Tensor | None = None,
                      generator: torch.Generator | None = None, method: str = "uniform",
                      p_from_gt: float = PROB_FROM_GT) -> tuple[torch.Tensor, torch.Tensor]:
    """One corrective click per object from the error of ``pred_masks`` against ``gt_masks``.

    A pixel of the false-negative region (gt & ~pred) gives a positive click (label 1), one of
    the false-positive region (~gt & pred) a negative click (label 0). ``'uniform'`` draws
    uniformly over all error pixels, so the sign follows the areas; ``'center'`` takes the point
    farthest from its region's boundary (positive when the FN region's is strictly farther).
    When nothing is wrong, ``'uniform'`` gives a negative click on the background and
    ``'center'`` a negative click at (0, 0), as the reference. ``pred_masks=None`` counts as an
    empty prediction (a positive click inside the object). With probability ``p_from_gt`` (one
    draw for the batch, made only when ``p_from_gt > 0``) the prediction is ignored.

    Returns points (B, 1, 2) float (x, y) and labels (B, 1) int32.
    """
    gt = _check_masks(gt_masks)
    if p_from_gt > 0 and float(_rand(1, generator, "cpu")[0]) < p_from_gt:
        pred_masks = None
    pred = torch.zeros_like(gt) if pred_masks is None else _check_masks(pred_masks, "pred_masks")
    if pred.shape != gt.shape:
        raise ValueError(f"pred_masks {tuple(pred.shape)} and gt_masks {tuple(gt.shape)} differ")
    if method == "uniform":
        return _uniform_error_click(gt, pred, generator)
    if method == "center":
        return _center_error_click(gt, pred)
    raise ValueError(f"unknown point sampling method {method!r}; expected 'uniform' or 'center'")


def concat_points(points: torch.Tensor | None, labels: torch.Tensor | None,
                  new_points: torch.Tensor, new_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Append new clicks after the previous prompt points (boxes stay first)."""
    if points is None:
        return new_points, new_labels
    return torch.cat([points, new_points], 1), torch.cat([labels, new_labels], 1)
