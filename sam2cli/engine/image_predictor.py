"""Image predictor: embed an image once, then decode any number of prompts against it."""

from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from sam2cli.model.sam2 import PREV_MASK_CLAMP, ImageFeatures
from .backend import Backend
from .device import autocast
from sam2cli.core.prompts import ObjectPrompt
from .transforms import point_prompt, preprocess, resize_mask_prompt, upsample_logits


class ImagePredictor:
    """The same semantics as the reference SAM2ImagePredictor (set_image / predict)."""

    def __init__(self, model: Backend, half: bool = False, mask_threshold: float = 0.0):
        self.model = model
        self.half = half
        self.mask_threshold = mask_threshold
        self.features: Optional[ImageFeatures] = None
        self.orig_hw: Optional[Tuple[int, int]] = None

    @property
    def device(self) -> torch.device:
        return self.model.device

    @torch.inference_mode()
    def set_image(self, image: np.ndarray) -> None:
        """(H, W, 3) uint8 RGB; the embedding is kept for the following predict calls."""
        x = preprocess(image, self.model.image_size, self.device)
        with autocast(self.device, self.half):
            feats = self.model.encode_image(x)
        top = feats.top + self.model.no_mem_embed.reshape(1, -1, 1, 1)  # image mode: "no memory"
        self.features = feats._replace(top=top)
        self.orig_hw = tuple(image.shape[:2])

    @torch.inference_mode()
    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None,
                multimask_output: bool = True, return_logits: bool = False):
        """Prompts in original-image pixels, batched over objects like the reference.

        point_coords (P, 2) or (N, P, 2); point_labels (P,) or (N, P); box (4,) or (N, 4);
        mask_input (1, 256, 256) or (N, 1, 256, 256) low-res logits. Returns masks (N?, M, H, W), scores (N?, M),
        low-res logits (N?, M, 256, 256) as numpy; the leading N is dropped for a single object.
        """
        if self.features is None:
            raise RuntimeError("call set_image(...) before predict(...)")
        coords, labels = point_prompt(point_coords, point_labels, box, self.orig_hw, self.model.image_size,
                                      self.device)
        mask_t = None
        if mask_input is not None:
            mask_t = torch.as_tensor(np.asarray(mask_input, np.float32), device=self.device)
            if mask_t.ndim == 3:
                mask_t = mask_t[None]
        masks, scores, low = self._decode(coords, labels, mask_t, multimask_output)
        single = masks.shape[0] == 1
        masks = masks.float() if return_logits else masks > self.mask_threshold
        out = (masks.cpu().numpy(), scores.cpu().numpy(), low.cpu().numpy())
        return tuple(o[0] for o in out) if single else out

    def _decode(self, coords, labels, mask_t, multimask: bool):
        f = self.features
        with autocast(self.device, self.half):
            out = self.model.decode(f.top, f.high_res, coords, labels, mask_t, multimask)
        masks = upsample_logits(out.masks, self.orig_hw)
        return masks, out.iou.float(), torch.clamp(out.masks.float(), -PREV_MASK_CLAMP, PREV_MASK_CLAMP)

    @torch.inference_mode()
    def predict_objects(self, objects: Sequence[ObjectPrompt], multimask_output: bool = False):
        """One call per group of objects with the same prompt layout, so ragged prompts batch
        without padding (padding would change the answer). Returns, in input order, masks
        (N, M, H, W) bool and scores (N, M)."""
        groups: dict = {}
        for i, o in enumerate(objects):
            key = (0 if o.points is None else len(o.points), o.box is not None, o.mask is not None)
            groups.setdefault(key, []).append(i)
        n, m = len(objects), 3 if multimask_output else 1
        h, w = self.orig_hw
        masks = np.zeros((n, m, h, w), dtype=bool)
        scores = np.zeros((n, m), dtype=np.float32)
        for (n_pts, has_box, has_mask), idx in groups.items():
            objs = [objects[i] for i in idx]
            coords, labels = point_prompt(np.stack([o.points for o in objs]) if n_pts else None,
                                          np.stack([o.labels for o in objs]) if n_pts else None,
                                          np.stack([o.box for o in objs]) if has_box else None,
                                          self.orig_hw, self.model.image_size, self.device)
            low = None
            if has_mask:
                s = self.model.mask_input_size
                low = torch.cat([resize_mask_prompt(o.mask, s) for o in objs]).to(self.device)  # (n, 1, s, s)
            mk, sc, _ = self._decode(coords, labels, low, multimask_output)
            masks[idx], scores[idx] = (mk > self.mask_threshold).cpu().numpy(), sc.cpu().numpy()
        return masks, scores
