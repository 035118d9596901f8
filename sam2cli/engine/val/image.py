"""Image protocols: one click, the tight box, box plus click, and the interactive click loop.

    predictor = ImagePredictor(model)
    ious = prompt_ious(predictor, image, masks)          # {"click": [...], "box": [...], "box_click": [...]}
    curves = click_curves(predictor, image, masks, 20)   # (N, 20) IoU after each click

Each object (a (H, W) bool mask at the image's resolution) is prompted alone; the objects of an
image share one image embedding and one decoder call per prompt form. The click is the object's
interior point (farthest from its boundary), the box its tight box in pixel edges. Interactive:
click 1 is the interior point; every later click is :func:`~.val_clicks.corrective_click` on the
previous mask, and the previous low-res logits go in as the mask prompt (as SAM's interactive
training and the reference demo do). With ``multimask=True`` a prediction from a single click
keeps the best of 3 masks by predicted IoU; otherwise the model returns one mask.
``sam2 val`` and ``sam2 train``'s validation both run this code.
"""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from ..image_predictor import ImagePredictor
from ..clicks import corrective_click, interior_point, tight_box
from ..metrics import iou


def _predict(predictor: ImagePredictor, n: int, points=None, labels=None, box=None, mask_input=None,
             multimask: bool = False):
    """-> masks (N, H, W) bool, low-res logits (N, 1, h, w): one mask per object (the best by
    predicted IoU when multimask)."""
    masks, scores, low = predictor.predict(points, labels, box, mask_input, multimask_output=multimask)
    if n == 1:
        masks, scores, low = masks[None], scores[None], low[None]
    best = np.argmax(scores, axis=1)  # (N,)
    pick = np.arange(n)
    return masks[pick, best], low[pick, best][:, None]


def prompt_ious(predictor: ImagePredictor, image: np.ndarray, masks: np.ndarray,
                multimask: bool = False) -> Dict[str, List[float]]:
    """IoU of each object of ``masks`` (N, H, W) prompted by one click, by its box, and by both."""
    masks = np.asarray(masks, bool)
    n = len(masks)
    if n == 0:
        return {"click": [], "box": [], "box_click": []}
    predictor.set_image(image)
    pts = np.array([[interior_point(m)] for m in masks], np.float32)  # (N, 1, 2)
    lab = np.ones((n, 1), np.int32)
    box = np.array([tight_box(m) for m in masks], np.float32)  # (N, 4)
    out = {"click": _predict(predictor, n, pts, lab, multimask=multimask)[0],
           "box": _predict(predictor, n, box=box)[0],
           "box_click": _predict(predictor, n, pts, lab, box)[0]}
    return {k: [iou(p, g) for p, g in zip(v, masks)] for k, v in out.items()}


def click_curves(predictor: ImagePredictor, image: np.ndarray, masks: np.ndarray, max_clicks: int = 20,
                 multimask: bool = False) -> np.ndarray:
    """(N, max_clicks) IoU of each object after 1, 2, ... clicks of the interactive protocol."""
    masks = np.asarray(masks, bool)
    n = len(masks)
    curves = np.zeros((n, max_clicks), np.float64)
    if n == 0:
        return curves
    predictor.set_image(image)
    pts = np.array([[interior_point(m)] for m in masks], np.float32)  # (N, 1, 2)
    lab = np.ones((n, 1), np.int32)
    pred, low = _predict(predictor, n, pts, lab, multimask=multimask)
    curves[:, 0] = [iou(p, g) for p, g in zip(pred, masks)]
    for k in range(1, max_clicks):
        nxt = [corrective_click(g, p) for g, p in zip(masks, pred)]
        pts = np.concatenate([pts, np.array([[xy] for xy, _ in nxt], np.float32)], 1)  # (N, k+1, 2)
        lab = np.concatenate([lab, np.array([[l] for _, l in nxt], np.int32)], 1)
        pred, low = _predict(predictor, n, pts, lab, mask_input=low)
        curves[:, k] = [iou(p, g) for p, g in zip(pred, masks)]
    return curves
