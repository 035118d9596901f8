"""Segmentation metrics with the definitions of the DAVIS 2017 evaluation (our own code).

* :func:`iou` -- region similarity J: |pred & gt| / |pred | gt|; two empty masks score 1.
* :func:`boundary_f` -- contour accuracy F: the F-measure of the boundary pixels of the prediction
  and of the ground truth, a pixel matching when the other boundary has a pixel within
  ``ceil(0.008 x image diagonal)`` pixels (Euclidean). Both empty: 1; one of them empty: 0.
* :func:`boundary_map` -- the boundary pixels as DAVIS draws them: a pixel whose value differs from
  its right, lower or lower-right neighbour (so the line sits half a pixel towards the origin);
  on the last row only the right neighbour counts, on the last column only the lower one, and the
  bottom-right pixel is never a boundary. The image border is not a boundary.
* :func:`sequence_stats` -- per object over its evaluated frames: mean, recall (share of frames
  scoring strictly above 0.5) and decay (mean of the first quarter minus mean of the last, the
  four quarters cut at ``round(1 + k (n - 1) / 4) - 1``, k = 0..4, each quarter including its end
  frame, so neighbouring quarters share a frame).
* :func:`eval_frame_indices` -- which annotated frames count: all but the first and the last
  (semi-supervised protocol: the first is the prompt); a sequence of 1 or 2 annotated frames keeps them all.

Masks are (H, W) bool arrays at the ground truth's resolution.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence, Tuple

import cv2
import numpy as np

BOUNDARY_TOL = 0.008  # fraction of the image diagonal
RECALL_THRESHOLD = 0.5
DECAY_BINS = 4


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region similarity J; two empty masks count as 1."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else float(np.count_nonzero(pred & gt) / union)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool boundary pixels of a binary mask (the DAVIS / Berkeley seg2bmap convention)."""
    m = np.asarray(mask, bool)
    b = np.zeros_like(m)
    core = m[:-1, :-1]
    b[:-1, :-1] = (core != m[:-1, 1:]) | (core != m[1:, :-1]) | (core != m[1:, 1:])
    b[-1, :-1] = m[-1, :-1] != m[-1, 1:]  # last row: right neighbour only
    b[:-1, -1] = m[:-1, -1] != m[1:, -1]  # last column: lower neighbour only
    b[-1, -1] = False
    return b


def tolerance_px(shape: Tuple[int, int], tol: float = BOUNDARY_TOL) -> int:
    """The matching distance in pixels: ``ceil(tol x diagonal)`` (``tol`` itself when >= 1)."""
    return int(tol) if tol >= 1 else int(math.ceil(tol * math.hypot(shape[0], shape[1])))


@lru_cache(maxsize=16)
def _disk(r: int) -> np.ndarray:
    """(2r+1, 2r+1) uint8 disk: the offsets with x^2 + y^2 <= r^2."""
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return (x * x + y * y <= r * r).astype(np.uint8)


def _crop(pred: np.ndarray, gt: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Both masks cut to the box around their union plus a 1-pixel margin (where the image has
    one): outside it both are empty, so no boundary and no match is lost (the speed of F on
    large frames with small objects)."""
    rows = np.flatnonzero((pred | gt).any(1))
    cols = np.flatnonzero((pred | gt).any(0))
    if not len(rows):
        return pred[:0, :0], gt[:0, :0]
    y0, y1 = max(rows[0] - 1, 0), min(rows[-1] + 2, pred.shape[0])
    x0, x1 = max(cols[0] - 1, 0), min(cols[-1] + 2, pred.shape[1])
    return pred[y0:y1, x0:x1], gt[y0:y1, x0:x1]


def boundary_f(pred: np.ndarray, gt: np.ndarray, tol: float = BOUNDARY_TOL) -> float:
    """Contour accuracy F of ``pred`` against ``gt`` ((H, W) bool), tolerance ``tol`` x diagonal."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in size")
    r = tolerance_px(gt.shape, tol)  # from the full frame, before cropping
    p_crop, g_crop = _crop(pred, gt)
    bp, bg = (boundary_map(p_crop), boundary_map(g_crop)) if p_crop.size else (p_crop, g_crop)
    n_p, n_g = int(np.count_nonzero(bp)), int(np.count_nonzero(bg))
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    disk = _disk(r)
    near_g = cv2.dilate(bg.view(np.uint8), disk) > 0
    near_p = cv2.dilate(bp.view(np.uint8), disk) > 0
    precision = np.count_nonzero(bp & near_g) / n_p
    recall = np.count_nonzero(bg & near_p) / n_g
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def decay_bins(n: int, bins: int = DECAY_BINS) -> list:
    """The ``bins`` (start, stop) index ranges of the decay over ``n`` values (stop exclusive)."""
    edges = [int(math.floor(1 + k * (n - 1) / bins + 0.5)) - 1 for k in range(bins + 1)]
    return [(edges[k], edges[k + 1] + 1) for k in range(bins)]


def sequence_stats(values: Sequence[float]) -> Tuple[float, float, float]:
    """(mean, recall, decay) of one object's per-frame scores (J or F); NaN when empty."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    parts = [x[a:b] for a, b in decay_bins(len(x))]
    return float(x.mean()), float(np.mean(x > RECALL_THRESHOLD)), float(parts[0].mean() - parts[-1].mean())


def eval_frame_indices(n_annotated: int) -> range:
    """Positions (in annotated-frame order) that are scored: all but the first and last."""
    return range(1, n_annotated - 1) if n_annotated > 2 else range(n_annotated)
