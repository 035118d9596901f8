"""Mask post-processing shared by the predictors: hole filling and non-overlap."""

import cv2
import numpy as np
import torch


def connected_components(mask: torch.Tensor):
    """8-connected components of (N, 1, H, W) binary masks -> labels and per-pixel component area
    (both (N, 1, H, W), 0 on background)."""
    m = mask.to(torch.uint8).cpu().numpy()
    labels = np.zeros(m.shape, np.int32)
    areas = np.zeros(m.shape, np.int32)
    for i in range(m.shape[0]):
        n, lab, stats, _ = cv2.connectedComponentsWithStats(m[i, 0], connectivity=8)
        area = stats[:, cv2.CC_STAT_AREA].copy()
        area[0] = 0
        labels[i, 0] = lab
        areas[i, 0] = area[lab]
    return torch.from_numpy(labels).to(mask.device), torch.from_numpy(areas).to(mask.device)


def fill_holes(logits: torch.Tensor, max_area: int) -> torch.Tensor:
    """Background regions (logits <= 0) of at most max_area pixels become foreground (0.1).

    Works on CPU, CUDA and MPS (the reference needs its CUDA extension for this)."""
    if max_area <= 0:
        return logits
    labels, areas = connected_components(logits <= 0)
    is_hole = (labels > 0) & (areas <= max_area)
    return torch.where(is_hole, torch.full_like(logits, 0.1), logits)


def non_overlapping(logits: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) logits: each pixel keeps only its highest-scoring object; the others are
    clamped to at most -10 there."""
    if logits.shape[0] <= 1:
        return logits
    winner = logits.argmax(0, keepdim=True)
    keep = winner == torch.arange(logits.shape[0], device=logits.device)[:, None, None, None]
    return torch.where(keep, logits, logits.clamp(max=-10.0))
