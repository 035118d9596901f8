"""Simulated prompts of the image protocols, and the interactive scores.

* :func:`interior_point` -- the pixel of a region farthest from its boundary (the image border
  counts as boundary; ties: the first in raster order), as (x, y) pixel indices.
* :func:`tight_box` -- the box around a mask, [x0, y0, x1 + 1, y1 + 1] (pixel edges, COCO's convention).
* :func:`corrective_click` -- the next click of the interactive protocol: the largest (by area,
  8-connected) error region of the prediction, missed pixels (gt & ~pred) giving a positive click
  and false pixels (pred & ~gt) a negative one, clicked at its interior point.
* :func:`clicks_to_reach` -- NoC@t: the first click count whose IoU reaches t (``max_clicks`` when never).
* :func:`curve_auc` -- the area under the mIoU-per-click curve, normalised to 0..1 (see its docstring).
"""

from __future__ import annotations

from typing import Sequence, Tuple

import cv2
import numpy as np


def interior_point(mask: np.ndarray) -> Tuple[float, float]:
    """(x, y) of the pixel of ``mask`` farthest from its boundary; (0, 0) for an empty mask."""
    m = np.ascontiguousarray(np.asarray(mask, bool))
    if not m.any():
        return 0.0, 0.0
    d = cv2.distanceTransform(np.pad(m, 1).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(d)), d.shape)
    return float(x), float(y)


def tight_box(mask: np.ndarray) -> Tuple[float, float, float, float]:
    """[x0, y0, x1, y1] pixel edges around a non-empty mask."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        raise ValueError("an empty mask has no box")
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def _largest_region(mask: np.ndarray) -> Tuple[np.ndarray, int]:
    """The largest 8-connected component of ``mask`` and its area (0 when empty)."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(np.ascontiguousarray(mask).view(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros_like(mask, bool), 0
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return lab == k, int(stats[k, cv2.CC_STAT_AREA])


def corrective_click(gt: np.ndarray, pred: np.ndarray) -> Tuple[Tuple[float, float], int]:
    """((x, y), label) of the next click: 1 inside the largest missed region, 0 inside the largest
    false one (the larger of the two by area; a tie goes to the missed region). A perfect
    prediction gets a negative click on the background's interior point (or (0, 0)), which
    changes nothing the scores use: the IoU already reached every threshold."""
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    fn, n_fn = _largest_region(gt & ~pred)
    fp, n_fp = _largest_region(pred & ~gt)
    if n_fn == 0 and n_fp == 0:
        return interior_point(~gt), 0
    if n_fn >= n_fp:
        return interior_point(fn), 1
    return interior_point(fp), 0


def clicks_to_reach(ious: Sequence[float], threshold: float, max_clicks: int) -> int:
    """NoC: 1 + the index of the first IoU >= threshold among the first ``max_clicks``; else ``max_clicks``."""
    for k, v in enumerate(list(ious)[:max_clicks]):
        if v >= threshold:
            return k + 1
    return max_clicks


def curve_auc(miou_per_click: Sequence[float]) -> float:
    """Area under the mIoU-vs-clicks curve on clicks 1..K, normalised to 0..1: the mean of the
    trapezoids between consecutive clicks (a curve at 1 everywhere gives 1). One click: its mIoU."""
    y = np.asarray(miou_per_click, dtype=np.float64)
    if y.size == 0:
        return float("nan")
    if y.size == 1:
        return float(y[0])
    return float(np.sum((y[1:] + y[:-1]) / 2) / (y.size - 1))
