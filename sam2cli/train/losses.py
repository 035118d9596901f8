"""SAM 2 training losses (focal + dice on the best of the multimask outputs, IoU-prediction L1,
object-score BCE), with the semantics and weights of SAM 2.1's training config.

Inputs, for a clip of T frames and B objects:

- ``preds``: a list over frames; each frame is a list over prompting/correction steps; each step
  is a ``StepPred(masks, ious, obj_scores)`` (or any 3-tuple) with
  ``masks`` mask logits (B, M, H, W) at the target's resolution (M = 3 multimask or 1),
  ``ious`` predicted IoUs (B, M), ``obj_scores`` object-score logits (B, 1).
- ``targets``: ground-truth masks per frame, (T, B, H, W) / (T, B, 1, H, W) or a list of
  (B, H, W) / (B, 1, H, W); bool or {0, 1}.

Semantics (those of the reference's ``MultiStepMultiMasksAndIous``):

- every per-mask term is divided by ``num_objects`` = B (averaged over DDP ranks when
  torch.distributed is initialised, at least 1), then summed over objects, steps *and frames*
  (no averaging over frames or steps);
- focal: mean over pixels of ``alpha_t * BCE * (1 - p_t)**gamma``;
- dice: ``1 - (2 * sum(p * t) + 1) / (sum(p) + sum(t) + 1)`` per mask;
- with M > 1 the focal and dice terms are taken from the mask with the lowest
  ``w_mask * focal + w_dice * dice``; the IoU term is the mean over all M masks
  (``supervise_all_iou``) or the best one's; the "actual" IoU uses ``logits > 0``;
- focal, dice and IoU terms count only for objects present in the target (non-empty mask);
  the object-score term (BCE on "target non-empty", no alpha, gamma 0) counts for all;
- ``core_loss = sum(weight * term)`` over the named terms with non-zero weight.

Loss terms are computed in float32 whatever the dtype of the predictions (autocast-safe).
Weights: ``SAM2Loss(weights=...)`` takes keys ``mask``/``dice``/``iou``/``class`` (``loss_`` prefixes
and ``class_`` accepted); a dict without ``class`` gives it weight 0, as the reference does.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F

__all__ = ["StepPred", "SAM2Loss", "DEFAULT_WEIGHTS", "to_reference_inputs", "from_reference_outputs"]

# SAM 2.1 training config (sam2.1_hiera_b+_MOSE_finetune.yaml): loss_mask 20, loss_dice 1, loss_iou 1, loss_class 1
DEFAULT_WEIGHTS = {"mask": 20.0, "dice": 1.0, "iou": 1.0, "class": 1.0}
TERMS = ("mask", "dice", "iou", "class")


class StepPred(NamedTuple):
    """One decoder pass: mask logits (B, M, H, W), predicted IoUs (B, M), object-score logits (B, 1)."""

    masks: torch.Tensor
    ious: torch.Tensor
    obj_scores: torch.Tensor


def _norm_key(k: str) -> str:
    k = k[5:] if k.startswith("loss_") else k
    return k.rstrip("_")  # "class_" -> "class"


def _num_objects(b: int, device, sync: bool = True) -> float:
    """B, averaged over DDP ranks when a process group is up (as the reference does), at least 1."""
    n = torch.tensor(float(b), device=device)
    if sync and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(n)
        n = n / torch.distributed.get_world_size()
    return max(float(n), 1.0)


def _focal_per_mask(logits, target, alpha: float, gamma: float):
    """Sigmoid focal loss averaged over the pixels of each mask: (B, M, H, W) -> (B, M)."""
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    loss = ce
    if gamma != 0:
        p = torch.sigmoid(logits)
        p_t = p * target + (1 - p) * (1 - target)
        loss = loss * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * target + (1 - alpha) * (1 - target))
    return loss.flatten(2).mean(-1)


def _dice_per_mask(logits, target):
    """Soft dice loss with +1 smoothing per mask: (B, M, H, W) -> (B, M)."""
    p = torch.sigmoid(logits).flatten(2)
    t = target.flatten(2)
    inter = (p * t).sum(-1)
    return 1 - (2 * inter + 1) / (p.sum(-1) + t.sum(-1) + 1)


def _actual_iou(logits, target_bool):
    """IoU of each thresholded mask (logits > 0) with the target: (B, M)."""
    pred = logits.flatten(2) > 0
    gt = target_bool.flatten(2)
    inter = (pred & gt).sum(-1).float()
    union = (pred | gt).sum(-1).float()
    return inter / union.clamp(min=1.0)


def _as_frame_targets(targets) -> list[torch.Tensor]:
    frames = list(targets.unbind(0)) if isinstance(targets, torch.Tensor) else list(targets)
    out = []
    for t in frames:
        if t.dim() == 3:
            t = t.unsqueeze(1)
        if t.dim() != 4 or t.shape[1] != 1:
            raise ValueError(f"target masks must be (B, H, W) or (B, 1, H, W) per frame, got {tuple(t.shape)}")
        out.append(t)
    return out


class SAM2Loss:
    """SAM 2's multi-step, multi-mask loss. ``loss(preds, targets)`` -> dict with
    ``loss_mask``, ``loss_dice``, ``loss_iou``, ``loss_class`` (unweighted, summed over frames)
    and ``core_loss`` (the weighted sum to back-propagate)."""

    def __init__(self, weights: dict | None = None, focal_alpha: float = 0.25, focal_gamma: float = 2.0,
                 supervise_all_iou: bool = True, iou_use_l1_loss: bool = True, pred_obj_scores: bool = True,
                 obj_focal_alpha: float = -1.0, obj_focal_gamma: float = 0.0):
        w = dict(DEFAULT_WEIGHTS)
        if weights is not None:
            given = {_norm_key(k): float(v) for k, v in weights.items()}
            unknown = set(given) - set(TERMS)
            if unknown:
                raise ValueError(f"unknown loss weight(s) {sorted(unknown)}; expected {list(TERMS)}")
            w = {k: given.get(k, 0.0 if k == "class" else w[k]) for k in TERMS}
        self.weights = w
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.supervise_all_iou = supervise_all_iou
        self.iou_use_l1_loss = iou_use_l1_loss
        self.pred_obj_scores = pred_obj_scores
        self.sync_num_objects = True  # all-reduce the object count under DDP (the reference's choice)
        self.obj_focal_alpha = obj_focal_alpha
        self.obj_focal_gamma = obj_focal_gamma

    def __call__(self, preds: Sequence[Sequence], targets) -> dict[str, torch.Tensor]:
        frame_targets = _as_frame_targets(targets)
        if len(preds) != len(frame_targets):
            raise ValueError(f"{len(preds)} frames of predictions but {len(frame_targets)} frames of targets")
        if not frame_targets:
            raise ValueError("no frames to compute a loss on")
        num_objects = _num_objects(frame_targets[0].shape[0], frame_targets[0].device, self.sync_num_objects)
        totals = {k: 0.0 for k in TERMS}
        for steps, tgt in zip(preds, frame_targets):
            tgt_bool = tgt > 0
            tgt_f = tgt_bool.float()
            present = tgt_bool.flatten(1).any(-1).float()  # (B,)
            for step in steps:
                masks, ious, obj = (step if isinstance(step, StepPred) else StepPred(*step))
                for k, v in self._step_terms(masks.float(), ious.float(), obj.float(), tgt_f, tgt_bool,
                                             present, num_objects).items():
                    totals[k] = totals[k] + v
        out = {f"loss_{k}": (v if isinstance(v, torch.Tensor) else torch.tensor(v)) for k, v in totals.items()}
        core = 0.0
        for k in TERMS:
            if self.weights[k] != 0:
                core = core + self.weights[k] * out[f"loss_{k}"]
        out["core_loss"] = core if isinstance(core, torch.Tensor) else torch.tensor(core)
        return out

    def _step_terms(self, masks, ious, obj, tgt_f, tgt_bool, present, n):
        B, M = masks.shape[:2]
        if tgt_f.shape[0] != B or tgt_f.shape[-2:] != masks.shape[-2:]:
            raise ValueError(f"mask logits {tuple(masks.shape)} do not match targets {tuple(tgt_f.shape)}")
        t = tgt_f.expand_as(masks)
        focal = _focal_per_mask(masks, t, self.focal_alpha, self.focal_gamma) / n  # (B, M)
        dice = _dice_per_mask(masks, t) / n
        with torch.no_grad():
            actual = _actual_iou(masks, tgt_bool.expand_as(masks))
        iou_err = (ious - actual).abs() if self.iou_use_l1_loss else (ious - actual) ** 2
        iou_err = iou_err / n
        if M > 1:
            best = torch.argmin(focal * self.weights["mask"] + dice * self.weights["dice"], dim=-1, keepdim=True)
            focal = focal.gather(1, best)
            dice = dice.gather(1, best)
            iou_err = iou_err.mean(-1, keepdim=True) if self.supervise_all_iou else iou_err.gather(1, best)
        if self.pred_obj_scores:
            gate = present[:, None]
            cls = _focal_per_mask(obj[:, :, None, None], gate[:, :, None, None],
                                  self.obj_focal_alpha, self.obj_focal_gamma).sum() / n
        else:  # no object-score head: every object counts as present, no class term
            gate = torch.ones_like(present)[:, None]
            cls = masks.new_zeros(())
        return {"mask": (focal * gate).sum(), "dice": (dice * gate).sum(), "iou": (iou_err * gate).sum(),
                "class": cls}


def to_reference_inputs(preds: Sequence[Sequence], targets):
    """Our (preds, targets) in the format of the reference's ``MultiStepMultiMasksAndIous.forward``:
    a list of per-frame dicts of per-step lists, and targets (T, B, H, W)."""
    outs = []
    for steps in preds:
        steps = [s if isinstance(s, StepPred) else StepPred(*s) for s in steps]
        outs.append({"multistep_pred_multimasks_high_res": [s.masks for s in steps],
                     "multistep_pred_ious": [s.ious for s in steps],
                     "multistep_object_score_logits": [s.obj_scores for s in steps]})
    tg = torch.stack([t[:, 0] for t in _as_frame_targets(targets)])
    return outs, tg


def from_reference_outputs(outs: Sequence[dict]) -> list[list[StepPred]]:
    """The reference's per-frame output dicts (as SAM2Train returns them) -> our ``preds``."""
    return [[StepPred(m, i, o) for m, i, o in zip(d["multistep_pred_multimasks_high_res"], d["multistep_pred_ious"],
                                                   d["multistep_object_score_logits"])] for d in outs]
