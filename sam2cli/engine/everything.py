"""Segment everything: prompt a grid of points over the image (and over crops of it), keep the
good, stable, non-duplicate masks.

Same semantics, parameters and defaults as the reference ``SAM2AutomaticMaskGenerator``
(sam2 1.1.0), including two quirks kept for parity:

* ``min_mask_region_area`` fills background holes and removes foreground sprinkles of at most
  that many pixels in the *low-res* (e.g. 256x256) logits before upsampling, as the reference
  predictor does (``max_hole_area``/``max_sprinkle_area``; 8-connectivity; at logit 0 whatever
  ``mask_threshold`` is, since that predictor keeps its default threshold). The reference
  silently skips this step when its optional CUDA extension is missing; we always apply it.
* boxes are xyxy with *inclusive* x2/y2 (the last foreground index), so ``bbox`` w/h are one
  less than the pixel extent.

The SAM 1 full-resolution cleanup (holes then islands below ``min_mask_region_area``, then box
NMS preferring unchanged masks) is available with ``postprocess_small_regions=True``.

Work saved against the reference with identical results: only masks that pass the predicted-IoU
filter are upsampled; upsampling, stability, boxes and encoding run in memory-bounded chunks;
kept masks are held as crop-local run lengths until the end.
"""

import math
from itertools import product
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torchvision.ops import batched_nms, box_area

from .device import autocast
from .image_predictor import ImagePredictor
from sam2cli.core.results import masks_to_boxes
from sam2cli.model.sam2 import PREV_MASK_CLAMP
from .transforms import point_prompt, upsample_logits

OUTPUT_MODES = ("binary_mask", "coco_rle", "uncompressed_rle")
# MaskGenerator's keyword parameters a caller may set (SAM(...) without prompts, generate_masks)
GENERATOR_PARAMS = ("points_per_side", "points_per_batch", "pred_iou_thresh", "stability_score_thresh",
                    "stability_score_offset", "mask_threshold", "box_nms_thresh", "crop_n_layers",
                    "crop_nms_thresh", "crop_overlap_ratio", "crop_n_points_downscale_factor", "point_grids",
                    "min_mask_region_area", "use_m2m", "multimask_output", "postprocess_small_regions")
CHUNK_BYTES = 256 << 20  # float32 logits upsampled at once


# ---------------------------------------------------------------------------- grids and crops
def point_grid(n_per_side: int) -> np.ndarray:
    """(n*n, 2) xy points in [0, 1], cell centres of an n x n grid, x varying fastest."""
    side = np.linspace(0.5 / n_per_side, 1 - 0.5 / n_per_side, n_per_side)
    xs, ys = np.meshgrid(side, side)
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def layer_point_grids(n_per_side: int, n_layers: int, downscale: int) -> List[np.ndarray]:
    """One grid per crop layer; layer i has int(n / downscale**i) points per side."""
    return [point_grid(int(n_per_side / downscale ** i)) for i in range(n_layers + 1)]


def crop_boxes(im_hw: Tuple[int, int], n_layers: int, overlap_ratio: float) -> Tuple[List[List[int]], List[int]]:
    """xyxy crop boxes and their layer: the whole image, then (2**i)**2 overlapping crops in
    layer i (x0 outer, y0 inner)."""
    h, w = im_hw
    boxes, layers = [[0, 0, w, h]], [0]
    for i in range(1, n_layers + 1):
        n = 2 ** i
        overlap = int(overlap_ratio * min(h, w) * 2 / n)
        cw, ch = (int(math.ceil((overlap * (n - 1) + length) / n)) for length in (w, h))
        xs = [int((cw - overlap) * k) for k in range(n)]
        ys = [int((ch - overlap) * k) for k in range(n)]
        for x0, y0 in product(xs, ys):
            boxes.append([x0, y0, min(x0 + cw, w), min(y0 + ch, h)])
            layers.append(i)
    return boxes, layers


# ---------------------------------------------------------------------------- mask quality
def stability_score(logits: torch.Tensor, threshold: float, offset: float) -> torch.Tensor:
    """IoU of the masks thresholded at threshold +/- offset, per (N, H, W) logit map (NaN if empty)."""
    row_dtype = torch.int16 if logits.shape[-1] < 2 ** 15 else torch.int32  # cheap per-row counts

    def count(above: float) -> torch.Tensor:
        return (logits > above).sum(-1, dtype=row_dtype).sum(-1, dtype=torch.int32)
    return count(threshold + offset) / count(threshold - offset)


def fill_holes_and_sprinkles(logits: torch.Tensor, threshold: float, max_area: float) -> torch.Tensor:
    """(N, h, w) logits: background components (8-connected) of <= max_area pixels become
    threshold + 10, foreground components of <= max_area pixels become threshold - 10."""
    out = logits.clone()
    fg_all = (logits > threshold).cpu().numpy()
    for i, fg in enumerate(fg_all):
        for region, value in ((~fg, threshold + 10.0), (fg, threshold - 10.0)):
            _, lab, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8), connectivity=8)
            small = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] <= max_area) + 1
            if small.size:
                out[i][torch.from_numpy(np.isin(lab, small)).to(out.device)] = value
    return out


def remove_small_regions(mask: np.ndarray, area_thresh: float, mode: str) -> Tuple[np.ndarray, bool]:
    """SAM 1 cleanup of one (H, W) bool mask: mode "holes" fills background components smaller
    than area_thresh, "islands" drops such foreground components (keeping the largest if all are
    small). Returns (mask, changed)."""
    holes = mode == "holes"
    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands', not {mode!r}")
    n, lab, stats, _ = cv2.connectedComponentsWithStats((mask != holes).astype(np.uint8), connectivity=8)
    sizes = stats[1:, cv2.CC_STAT_AREA]
    small = np.flatnonzero(sizes < area_thresh) + 1
    if small.size == 0:
        return mask, False
    if holes:
        return mask | np.isin(lab, small), True
    big = np.setdiff1d(np.arange(1, n), small)
    if big.size == 0:
        big = np.array([int(np.argmax(sizes)) + 1])
    return np.isin(lab, big), True


# ---------------------------------------------------------------------------- boxes and masks
def inclusive_boxes(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) bool -> (N, 4) int64 xyxy with inclusive x2/y2; zeros for an empty mask."""
    boxes = masks_to_boxes(masks).astype(np.int64)
    boxes[masks.any(axis=(1, 2)), 2:] -= 1
    return boxes


def near_crop_edge(boxes: np.ndarray, crop: Sequence[int], im_hw: Tuple[int, int], atol: float = 20.0) -> np.ndarray:
    """Image-frame boxes within atol of a crop edge that is not also an image edge."""
    near_crop = np.abs(boxes - np.asarray(crop)) <= atol
    near_image = np.abs(boxes - np.array([0, 0, im_hw[1], im_hw[0]])) <= atol
    return (near_crop & ~near_image).any(1)


def mask_runs(masks: np.ndarray) -> List[np.ndarray]:
    """(N, H, W) bool -> per mask, int32 run lengths of its row-major pixels, the first run being
    background (possibly 0 long). Column-major runs (COCO's) are those of the transposed masks."""
    n = len(masks)
    flat = masks.reshape(n, masks.shape[1] * masks.shape[2])
    rows, cols = np.nonzero(flat[:, 1:] != flat[:, :-1])
    bounds = np.searchsorted(rows, np.arange(n + 1))
    out = []
    for i in range(n):
        edges = np.concatenate([[0], cols[bounds[i]:bounds[i + 1]] + 1, [flat.shape[1]]])
        runs = np.diff(edges).astype(np.int32)
        out.append(np.concatenate([np.zeros(1, np.int32), runs]) if flat[i, 0] else runs)
    return out


def runs_to_mask(runs: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`mask_runs` for one (H, W) mask."""
    return np.repeat(np.arange(len(runs)) % 2 == 1, runs).reshape(hw)


def paste_mask(runs: np.ndarray, crop: Sequence[int], im_hw: Tuple[int, int]) -> np.ndarray:
    """Crop-local runs -> (H, W) bool mask in the image frame."""
    x0, y0, x1, y1 = (int(v) for v in crop)
    local = runs_to_mask(runs, (y1 - y0, x1 - x0))
    if local.shape == tuple(im_hw):
        return local
    full = np.zeros(im_hw, dtype=bool)
    full[y0:y1, x0:x1] = local
    return full


def uncompressed_rle(mask: np.ndarray) -> Dict[str, Any]:
    """(H, W) bool -> {"size", "counts"} as pycocotools' uncompressed RLE."""
    return {"size": list(mask.shape), "counts": mask_runs(mask.T[None])[0].tolist()}


def coco_rle(mask: np.ndarray) -> Dict[str, Any]:
    """(H, W) bool -> compressed COCO RLE with str counts (JSON-ready)."""
    from pycocotools import mask as mask_utils
    rle = mask_utils.frPyObjects(uncompressed_rle(mask), *mask.shape)
    rle["counts"] = rle["counts"].decode("utf-8")
    return rle


def xywh(box) -> List[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def passes(scores: torch.Tensor, thresh: float, strict: bool) -> torch.Tensor:
    """The reference's filters: score > thresh (IoU) or >= thresh (stability); off when thresh <= 0."""
    if thresh <= 0:
        return torch.ones_like(scores, dtype=torch.bool)
    return scores > thresh if strict else scores >= thresh


def nms(boxes: np.ndarray, scores: torch.Tensor, thresh: float) -> np.ndarray:
    """Indices kept by class-agnostic box NMS, highest score first."""
    boxes_t = torch.as_tensor(boxes).float()
    return batched_nms(boxes_t, scores.float(), torch.zeros(len(boxes_t)), thresh).numpy()


# ---------------------------------------------------------------------------- the generator
class MaskGenerator:
    """Automatic mask generation over an :class:`ImagePredictor` (whose image it replaces).

    Parameters are the reference's (``points_per_side`` ... ``multimask_output``, same defaults);
    ``postprocess_small_regions`` adds the SAM 1 full-resolution cleanup (see the module doc).
    ``generate(image)`` returns dicts with segmentation ((H, W) bool, or an RLE dict per
    ``output_mode``), area, bbox (xywh), predicted_iou, point_coords, stability_score, crop_box.
    """

    def __init__(self, predictor: ImagePredictor, points_per_side: Optional[int] = 32,
                 points_per_batch: int = 64, pred_iou_thresh: float = 0.8,
                 stability_score_thresh: float = 0.95, stability_score_offset: float = 1.0,
                 mask_threshold: float = 0.0, box_nms_thresh: float = 0.7, crop_n_layers: int = 0,
                 crop_nms_thresh: float = 0.7, crop_overlap_ratio: float = 512 / 1500,
                 crop_n_points_downscale_factor: int = 1, point_grids: Optional[List[np.ndarray]] = None,
                 min_mask_region_area: int = 0, output_mode: str = "binary_mask", use_m2m: bool = False,
                 multimask_output: bool = True, postprocess_small_regions: bool = False):
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("give exactly one of points_per_side or point_grids")
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}, not {output_mode!r}")
        self.grids = (layer_point_grids(points_per_side, crop_n_layers, crop_n_points_downscale_factor)
                      if points_per_side is not None else [np.asarray(g) for g in point_grids])
        if len(self.grids) < crop_n_layers + 1:
            raise ValueError(f"point_grids needs {crop_n_layers + 1} grids (one per crop layer)")
        self.predictor = predictor
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh, self.stability_score_thresh = pred_iou_thresh, stability_score_thresh
        self.stability_score_offset, self.mask_threshold = stability_score_offset, mask_threshold
        self.box_nms_thresh, self.crop_nms_thresh = box_nms_thresh, crop_nms_thresh
        self.crop_n_layers, self.crop_overlap_ratio = crop_n_layers, crop_overlap_ratio
        self.min_mask_region_area, self.output_mode = min_mask_region_area, output_mode
        self.use_m2m, self.multimask_output = use_m2m, multimask_output
        self.postprocess_small_regions = postprocess_small_regions

    @torch.inference_mode()
    def generate(self, image: np.ndarray, image_is_set: bool = False) -> List[Dict[str, Any]]:
        """(H, W, 3) uint8 RGB -> one record per mask, in the reference's order.

        The predictor is left holding this image's embedding (that of the whole-image crop);
        ``image_is_set=True`` says it already does (set_image(image) was called) and skips that embed.
        """
        im_hw = tuple(image.shape[:2])
        boxes, layers = crop_boxes(im_hw, self.crop_n_layers, self.crop_overlap_ratio)
        parts = [self._process_crop(image, boxes[0], layers[0], embed=not image_is_set)]
        whole = (self.predictor.features, self.predictor.orig_hw)
        parts += [self._process_crop(image, box, layer, embed=True) for box, layer in zip(boxes[1:], layers[1:])]
        self.predictor.features, self.predictor.orig_hw = whole
        data = concat_parts(parts)
        if len(boxes) > 1 and len(data["runs"]):
            keep = nms(data["boxes"], 1 / box_area(torch.as_tensor(data["crops"])), self.crop_nms_thresh)
            data = select(data, keep)
        masks = (paste_mask(r, c, im_hw) for r, c in zip(data["runs"], data["crops"]))  # one at a time
        if self.postprocess_small_regions and self.min_mask_region_area > 0 and data["runs"]:
            data, masks = self._cleanup_regions(data, list(masks))
        return [self._record(data, i, m) for i, m in enumerate(masks)]

    def _process_crop(self, image: np.ndarray, crop: List[int], layer: int, embed: bool) -> Dict[str, Any]:
        x0, y0, x1, y1 = crop
        if embed:
            self.predictor.set_image(image[y0:y1, x0:x1])
        crop_hw = (y1 - y0, x1 - x0)
        points = self.grids[layer] * np.array(crop_hw)[None, ::-1]
        data = concat_parts([self._process_batch(points[i:i + self.points_per_batch], crop, tuple(image.shape[:2]))
                             for i in range(0, len(points), self.points_per_batch)])
        data = select(data, nms(data["boxes"], torch.as_tensor(data["iou"]), self.box_nms_thresh))
        offset = np.array([x0, y0, x0, y0])
        data["boxes"] = data["boxes"] + offset
        data["points"] = data["points"] + offset[:2].astype(np.float32)
        data["crops"] = np.tile(np.array(crop, dtype=np.int64), (len(data["runs"]), 1))
        return data

    def _model_coords(self, points: torch.Tensor, crop_hw: Tuple[int, int]):
        """(N, 2) crop-pixel clicks (float32) -> (N, 1, 2) model-input coords and (N, 1) labels of 1."""
        p = self.predictor
        return point_prompt(points[:, None], None, None, crop_hw, p.model.image_size, p.device)

    def _decode(self, coords: torch.Tensor, labels: torch.Tensor, mask_input: Optional[torch.Tensor],
                multimask: bool):
        """(N, 1, 2) model-input clicks, (N, 1) labels -> low-res logits (N, M, h, w) unclamped and IoU (N, M)."""
        p = self.predictor
        with autocast(p.device, p.half):
            out = p.model.decode(p.features.top, p.features.high_res, coords, labels, mask_input, multimask)
        return out.masks.float(), out.iou.float()

    def _process_batch(self, points: np.ndarray, crop: List[int], im_hw: Tuple[int, int]) -> Dict[str, Any]:
        crop_hw = (crop[3] - crop[1], crop[2] - crop[0])
        pts = torch.as_tensor(points, dtype=torch.float32)
        low, iou = self._decode(*self._model_coords(pts, crop_hw), None, self.multimask_output)
        pts = pts.repeat_interleave(low.shape[1], dim=0)
        low, iou = low.flatten(0, 1), iou.flatten(0, 1)
        if self.use_m2m:
            low, iou = self._refine_m2m(pts, crop_hw, low)
        keep = passes(iou, self.pred_iou_thresh, strict=True).cpu()
        low, iou, pts = low[keep.to(low.device)], iou.cpu()[keep], pts[keep]
        if self.min_mask_region_area > 0 and len(low):
            low = fill_holes_and_sprinkles(low, 0.0, self.min_mask_region_area)  # the reference's predictor threshold
        step = max(1, CHUNK_BYTES // (4 * crop_hw[0] * crop_hw[1]))
        parts = [self._finish_chunk(low[i:i + step], iou[i:i + step], pts[i:i + step], crop, crop_hw, im_hw)
                 for i in range(0, len(low), step)]
        return concat_parts(parts)

    def _refine_m2m(self, pts: torch.Tensor, crop_hw: Tuple[int, int], low: torch.Tensor):
        """One more single-mask decode per candidate, prompted by its click and its own logits."""
        (coords, labels), prev = self._model_coords(pts, crop_hw), torch.clamp(low, -PREV_MASK_CLAMP, PREV_MASK_CLAMP)[:, None]
        b = self.points_per_batch
        outs = [self._decode(coords[i:i + b], labels[i:i + b], prev[i:i + b], False) for i in range(0, len(coords), b)]
        return torch.cat([o[0] for o in outs])[:, 0], torch.cat([o[1] for o in outs])[:, 0]

    def _finish_chunk(self, low, iou, pts, crop, crop_hw, im_hw) -> Dict[str, Any]:
        """Upsample, filter on stability, threshold, box, drop crop-edge masks, encode."""
        logits = upsample_logits(low[:, None], crop_hw)[:, 0]
        stab = stability_score(logits, self.mask_threshold, self.stability_score_offset).cpu()
        keep = passes(stab, self.stability_score_thresh, strict=False)
        masks = logits > self.mask_threshold
        del logits
        masks = (masks if bool(keep.all()) else masks[keep.to(masks.device)]).cpu().numpy()
        boxes = inclusive_boxes(masks)
        ok = ~near_crop_edge(boxes + np.array(crop[:2] * 2), crop, im_hw)
        return {"boxes": boxes[ok], "iou": iou[keep].numpy()[ok], "stability": stab[keep].numpy()[ok],
                "points": pts[keep].numpy()[ok], "runs": mask_runs(masks[ok])}

    def _cleanup_regions(self, data: Dict[str, Any], masks: List[np.ndarray]):
        """SAM 1 post-processing: remove small holes and islands, then NMS preferring unchanged masks."""
        scores = []
        for i, m in enumerate(masks):
            m, changed_holes = remove_small_regions(m, self.min_mask_region_area, "holes")
            m, changed_islands = remove_small_regions(m, self.min_mask_region_area, "islands")
            masks[i] = m
            scores.append(float(not (changed_holes or changed_islands)))
        data["boxes"] = inclusive_boxes(np.stack(masks))
        keep = nms(data["boxes"], torch.tensor(scores), max(self.box_nms_thresh, self.crop_nms_thresh))
        return select(data, keep), [masks[i] for i in keep]

    def _record(self, data: Dict[str, Any], i: int, mask: np.ndarray) -> Dict[str, Any]:
        if self.output_mode == "coco_rle":
            seg = coco_rle(mask)
        elif self.output_mode == "uncompressed_rle":
            seg = uncompressed_rle(mask)
        else:
            seg = mask
        return {"segmentation": seg, "area": int(mask.sum()), "bbox": xywh(data["boxes"][i]),
                "predicted_iou": float(data["iou"][i]), "point_coords": [data["points"][i].tolist()],
                "stability_score": float(data["stability"][i]), "crop_box": xywh(data["crops"][i])}


def select(data: Dict[str, Any], keep: np.ndarray) -> Dict[str, Any]:
    """Index every field of a column dict (arrays and the list of runs) by keep."""
    keep = np.asarray(keep, dtype=np.int64)
    return {k: [v[i] for i in keep] if isinstance(v, list) else v[keep] for k, v in data.items()}


def concat_parts(parts: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Concatenate column dicts (the runs column is a list); no parts give empty columns."""
    if not parts:
        return {"boxes": np.zeros((0, 4), np.int64), "iou": np.zeros(0, np.float32),
                "stability": np.zeros(0, np.float32), "points": np.zeros((0, 2), np.float32), "runs": []}
    return {k: [r for p in parts for r in p[k]] if k == "runs" else np.concatenate([p[k] for p in parts])
            for k in parts[0]}


def generate(predictor: ImagePredictor, image: np.ndarray, image_is_set: bool = False,
             **params) -> List[Dict[str, Any]]:
    """One-shot :meth:`MaskGenerator.generate` with the reference's keyword parameters."""
    return MaskGenerator(predictor, **params).generate(image, image_is_set)


def generate_masks(predictor: ImagePredictor, image: np.ndarray, image_is_set: bool = False,
                   **params) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`generate` as arrays: masks (N, H, W) bool and predicted IoU scores (N,) float32."""
    records = generate(predictor, image, image_is_set, **dict(params, output_mode="binary_mask"))
    masks = np.stack([r["segmentation"] for r in records]) if records else np.zeros((0, *image.shape[:2]), bool)
    return masks, np.array([r["predicted_iou"] for r in records], dtype=np.float32)
