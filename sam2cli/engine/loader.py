"""Turn what the user passes as `model=` into a ready SAM2Model on a device."""

from pathlib import Path
from typing import Optional, Tuple, Union

import torch

from sam2cli.io.model_cfg import registry
from sam2cli.io.weights import resolve_weights
from sam2cli.model.checkpoint import build_model
from sam2cli.model.sam2 import SAM2Model
from .device import select_device


def load_model(model: Union[str, Path], device=None, imgsz: Optional[int] = None) -> Tuple[SAM2Model, Path]:
    """Resolve (path, weights dir, download), detect the variant from the tensors, load strictly."""
    path = resolve_weights(model)
    net = build_model(None, path, registry().values())
    if imgsz and imgsz != net.image_size:
        net.set_image_size(imgsz)
    dev = select_device(device)
    return net.to(dev).eval(), path


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
