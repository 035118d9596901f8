"""Validation metrics: mask IoU (J) and the DAVIS boundary F-measure (F)."""

import cv2
import numpy as np


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region similarity J; two empty masks count as 1."""
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def _boundary(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.uint8)
    return (m - cv2.erode(m, np.ones((3, 3), np.uint8))) > 0


def boundary_f(pred: np.ndarray, gt: np.ndarray, tol_ratio: float = 0.008) -> float:
    """Contour accuracy F: precision/recall of boundary pixels matched within a tolerance of
    tol_ratio * image diagonal (DAVIS convention); two empty masks count as 1."""
    bp, bg = _boundary(pred), _boundary(gt)
    if not bp.any() and not bg.any():
        return 1.0
    if not bp.any() or not bg.any():
        return 0.0
    r = max(1, int(np.ceil(tol_ratio * np.hypot(*pred.shape))))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    gt_zone = cv2.dilate(bg.astype(np.uint8), disk) > 0
    pred_zone = cv2.dilate(bp.astype(np.uint8), disk) > 0
    precision = (bp & gt_zone).sum() / bp.sum()
    recall = (bg & pred_zone).sum() / bg.sum()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))
