"""Samples -> model-ready tensors, with augmentation drawn once per sample (once per clip for
videos, so a clip stays consistent): horizontal flip, scale jitter (a random crop of 70-100% of
the side) and colour jitter (brightness, contrast, saturation)."""

from typing import Dict, List, Tuple

import cv2
import numpy as np
import torch

from sam2cli.engine.transforms import preprocess


def draw_augment(gen: torch.Generator, enabled: bool = True) -> Dict[str, float]:
    r = torch.rand(7, generator=gen).tolist()
    if not enabled:
        return {"flip": False, "scale": 1.0, "x": 0.0, "y": 0.0, "bright": 0.0, "contrast": 1.0, "sat": 1.0}
    return {"flip": r[0] < 0.5, "scale": 0.7 + 0.3 * r[1], "x": r[2], "y": r[3],
            "bright": (r[4] - 0.5) * 0.4 * 255, "contrast": 0.8 + 0.4 * r[5], "sat": 0.8 + 0.4 * r[6]}


def augment(image: np.ndarray, masks: np.ndarray, p: Dict[str, float]) -> Tuple[np.ndarray, np.ndarray]:
    """image (H, W, 3) uint8, masks (N, H, W) bool -> the same, augmented."""
    h, w = image.shape[:2]
    ch, cw = max(1, int(round(h * p["scale"]))), max(1, int(round(w * p["scale"])))
    y0, x0 = int(p["y"] * (h - ch)), int(p["x"] * (w - cw))
    image, masks = image[y0:y0 + ch, x0:x0 + cw], masks[:, y0:y0 + ch, x0:x0 + cw]
    if p["flip"]:
        image, masks = image[:, ::-1], masks[:, :, ::-1]
    img = image.astype(np.float32)
    gray = img.mean(axis=2, keepdims=True)
    img = gray + (img - gray) * p["sat"]
    img = (img - img.mean()) * p["contrast"] + img.mean() + p["bright"]
    return np.clip(img, 0, 255).astype(np.uint8), np.ascontiguousarray(masks)


def to_tensors(image: np.ndarray, masks: np.ndarray, size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """-> normalised (3, S, S) image and (N, S, S) bool masks (nearest resize)."""
    x = preprocess(np.ascontiguousarray(image), size)[0]
    m = np.stack([cv2.resize(mk.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) for mk in masks]) \
        if len(masks) else np.zeros((0, size, size), np.uint8)
    return x, torch.from_numpy(m > 0)


def image_item(sample, size: int, gen: torch.Generator, max_objects: int, aug: bool):
    """An ImageSample -> (image (3,S,S), masks (K,S,S)) with up to max_objects non-empty objects."""
    image, masks = augment(sample.image, sample.masks.astype(bool), draw_augment(gen, aug))
    x, m = to_tensors(image, masks, size)
    keep = torch.nonzero(m.flatten(1).any(1)).flatten()
    if len(keep) > max_objects:
        keep = keep[torch.randperm(len(keep), generator=gen)[:max_objects]]
    return x, m[keep]


def clip_item(clip, size: int, gen: torch.Generator, aug: bool):
    """A VideoClip -> frames (T,3,S,S), masks (T,N,S,S); objects must be present on frame 0."""
    p = draw_augment(gen, aug)
    frames, masks = [], []
    for t, frame in enumerate(clip.frames):
        image, mk = augment(frame, clip.masks[t].astype(bool), p)
        x, m = to_tensors(image, mk, size)
        frames.append(x)
        masks.append(m)
    m = torch.stack(masks)
    present = m[0].flatten(1).any(1)
    return torch.stack(frames), m[:, present]


def stack_images(items: List[Tuple[torch.Tensor, torch.Tensor]]):
    """-> images (I,3,S,S), object masks (B,1,S,S), owner (B,) image index per object."""
    images = torch.stack([x for x, _ in items])
    masks = [m for _, m in items]
    owner = torch.cat([torch.full((len(m),), i, dtype=torch.long) for i, m in enumerate(masks)])
    return images, torch.cat(masks)[:, None], owner
