"""The one image resize of the project, coordinate scaling, and mask upsampling.

Matches the reference image path: RGB uint8 -> [0,1] float -> bilinear antialiased resize to
S x S (a stretch, not a letterbox) -> ImageNet mean/std.
"""

from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def preprocess(image: np.ndarray, size: int, device=None) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, size, size) normalised float32."""
    image = np.ascontiguousarray(image)
    if not image.flags.writeable:
        image = image.copy()
    x = torch.from_numpy(image).to(device).permute(2, 0, 1)[None].float() / 255.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def scale_coords(xy: np.ndarray, orig_hw: Tuple[int, int], size: int) -> np.ndarray:
    """Pixel (x, y) in the original image -> the model input's S x S frame."""
    h, w = orig_hw
    xy = np.asarray(xy, dtype=np.float32).copy()
    xy[..., 0] *= size / w
    xy[..., 1] *= size / h
    return xy


def upsample_logits(logits: torch.Tensor, orig_hw: Tuple[int, int]) -> torch.Tensor:
    """(B, M, h, w) low-res logits -> (B, M, H, W) at the original resolution (bilinear)."""
    return F.interpolate(logits.float(), size=tuple(orig_hw), mode="bilinear", align_corners=False)


def resize_mask_prompt(mask: np.ndarray, size: int) -> torch.Tensor:
    """A user mask (H, W), bool or float, -> (1, 1, size, size) float via bilinear antialias."""
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32))[None, None]
    return F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
