"""The one image resize of the project, prompts to model tensors (`point_prompt`), and mask resizing.

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


def point_prompt(points, labels, box, orig_hw: Tuple[int, int], size: int, device=None):
    """The one place prompts become the model's point tensors (an ObjectPrompt's points, labels, box).

    points (P, 2) or (N, P, 2) and box (4,) or (N, 4), xyxy, in original-image pixels; labels (P,)
    or (N, P), 1 foreground / 0 background, all 1 when None. Returns coords (N, K, 2) float32 in
    model-input pixels and labels (N, K) int32 (N = 1 for the unbatched forms), or (None, None)
    when neither points nor a box is given. A box becomes two corner points labelled 2 and 3,
    placed before the clicks. Scaling is the reference's float32 x / W * size, y / H * size.
    """
    coords, codes = [], []
    if box is not None:
        corners = torch.as_tensor(np.asarray(box, np.float32).reshape(-1, 2, 2))
        coords.append(corners)
        codes.append(torch.tensor([[2, 3]], dtype=torch.int32).expand(len(corners), 2))
    if points is not None:
        xy = torch.as_tensor(points, dtype=torch.float32, device="cpu")
        xy = xy if xy.ndim == 3 else xy.reshape(1, -1, 2)
        coords.append(xy)
        codes.append(torch.ones(xy.shape[:2], dtype=torch.int32) if labels is None
                     else torch.as_tensor(np.asarray(labels), dtype=torch.int32).reshape(xy.shape[:2]))
    if not coords:
        return None, None
    xy = torch.cat(coords, 1)
    h, w = orig_hw
    xy = torch.stack([xy[..., 0] / w, xy[..., 1] / h], -1) * size
    return xy.to(device), torch.cat(codes, 1).to(device)
