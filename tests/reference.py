"""Helpers for parity tests against Meta's reference implementation (the `sam2` package).

The reference is a test oracle only: it builds random-weight checkpoints in the official
format and runs the same inputs. Nothing here is used by sam2cli itself.
"""

from pathlib import Path

import pytest
import torch

sam2_ref = pytest.importorskip("sam2", reason="the reference (pip install sam2==1.1.0) is needed for parity")

REF_CONFIGS = {  # our config name -> the reference's hydra config
    "sam2.1_hiera_t": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_s": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_b+": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_l": "configs/sam2.1/sam2.1_hiera_l.yaml",
    "sam2_hiera_t": "configs/sam2/sam2_hiera_t.yaml",
    "sam2_hiera_s": "configs/sam2/sam2_hiera_s.yaml",
    "sam2_hiera_b+": "configs/sam2/sam2_hiera_b+.yaml",
    "sam2_hiera_l": "configs/sam2/sam2_hiera_l.yaml",
}


def small_size_overrides(image_size: int):
    """Hydra overrides that build the reference at a smaller input size."""
    s = image_size // 16
    return [f"++model.image_size={image_size}",
            f"++model.memory_attention.layer.self_attention.feat_sizes=[{s},{s}]",
            f"++model.memory_attention.layer.cross_attention.feat_sizes=[{s},{s}]"]


def build_reference(name: str, ckpt=None, image_size: int = 1024):
    from sam2.build_sam import build_sam2
    extra = small_size_overrides(image_size) if image_size != 1024 else []
    return build_sam2(REF_CONFIGS[name], str(ckpt) if ckpt else None, device="cpu",
                      hydra_overrides_extra=extra)


def make_random_checkpoint(name: str, path: Path, seed: int = 0, noise: float = 0.02) -> Path:
    """A random-weight checkpoint in the official {"model": state_dict} format.

    Every tensor is perturbed, so that no path is trivially zero (e.g. layer-scale gammas
    initialised at 1e-6, zero biases, LayerNorm weights at exactly 1).
    """
    torch.manual_seed(seed)
    model = build_reference(name)
    gen = torch.Generator().manual_seed(seed + 1)
    sd = {}
    for k, v in model.state_dict().items():
        v = v.clone()
        if v.is_floating_point():
            v += noise * torch.randn(v.shape, generator=gen)
        sd[k] = v
    torch.save({"model": sd}, path)
    return path
