"""The one image resize of the project, coordinate scaling, and mask resizing.

Images are stretched to S x S (not letterboxed) and normalised with ImageNet mean/std, with the
interpolation each reference path uses (see `preprocess`).
"""

from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def preprocess(image: np.ndarray, size: int, device=None, resample: str = "bilinear") -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, size, size) normalised float32.

    resample="bilinear": antialiased bilinear on floats (the reference image predictor).
    resample="bicubic": PIL bicubic on the uint8 image (the reference video predictor), so that
    video results reproduce the published numbers.
    """
    image = np.ascontiguousarray(image)
    if resample == "bicubic":
        image = np.array(Image.fromarray(image).resize((size, size), Image.BICUBIC))
    elif not image.flags.writeable:
        image = image.copy()
    x = torch.from_numpy(image).to(device).permute(2, 0, 1)[None].float() / 255.0
    if resample != "bicubic":
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


def binary_mask_prompt(mask: np.ndarray, size: int, device=None) -> torch.Tensor:
    """A user mask (H, W) -> (1, 1, size, size) 0/1 float, as the reference video path does:
    antialiased bilinear resize then >= 0.5 (kept as is when already size x size)."""
    m = np.asarray(mask)
    if m.shape == (size, size):
        return torch.as_tensor(m.astype(np.float32), device=device)[None, None]
    return (resize_mask_prompt(m.astype(bool), size) >= 0.5).float().to(device)


def point_prompt(coords, labels, box, orig_hw: Tuple[int, int], size: int, device=None):
    """One object's clicks and/or box -> (1, P, 2) model-pixel coords and (1, P) int32 labels;
    the box becomes two corner points labelled 2 and 3, placed before the clicks."""
    xy = np.zeros((0, 2), np.float32) if coords is None else np.asarray(coords, np.float32).reshape(-1, 2)
    lab = np.ones(len(xy), np.int32) if labels is None else np.asarray(labels, np.int32).reshape(-1)
    if box is not None:
        xy = np.concatenate([np.asarray(box, np.float32).reshape(2, 2), xy])
        lab = np.concatenate([np.array([2, 3], np.int32), lab])
    return (torch.as_tensor(scale_coords(xy, orig_hw, size), device=device)[None],
            torch.as_tensor(lab, dtype=torch.int32, device=device)[None])
