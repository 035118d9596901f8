"""AdamW with layer-wise learning-rate decay on the trunk, no weight decay on norms, biases and
embeddings, and a linear-warmup + cosine schedule (down to lrf * lr)."""

import math
import re
from typing import Dict, List, Sequence

import torch

TRUNK_BLOCK = re.compile(r"image_encoder\.trunk\.blocks\.(\d+)\.")
NO_DECAY = re.compile(r"(\.bias$|norm|pos_embed|_embed\b|embed_spatial|no_obj_ptr|no_mem|tpos_enc|"
                      r"point_embeddings|not_a_point|no_mask_embed|iou_token|mask_tokens|obj_score_token|gamma$)")


def trunk_layer(name: str, n_blocks: int) -> int:
    """0 for the patch/position embedding, i+1 for trunk block i, n_blocks+1 for everything else."""
    if name.startswith("image_encoder.trunk.patch_embed") or name.startswith("image_encoder.trunk.pos_embed"):
        return 0
    m = TRUNK_BLOCK.match(name)
    return int(m.group(1)) + 1 if m else n_blocks + 1


def freeze(model: torch.nn.Module, prefixes: Sequence[str]) -> int:
    """Stop gradients for parameters whose name starts with any prefix; returns how many."""
    n = 0
    for name, p in model.named_parameters():
        if any(name.startswith(pre) for pre in prefixes):
            p.requires_grad_(False)
            n += 1
    return n


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float = 0.1,
                    layer_decay: float = 0.9) -> torch.optim.AdamW:
    n_blocks = len(model.image_encoder.trunk.blocks)
    groups: Dict[tuple, List[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        scale = layer_decay ** (n_blocks + 1 - trunk_layer(name, n_blocks))
        wd = 0.0 if (p.ndim <= 1 or NO_DECAY.search(name)) else weight_decay
        groups.setdefault((scale, wd), []).append(p)
    param_groups = [{"params": ps, "lr": lr * s, "lr_scale": s, "weight_decay": wd} for (s, wd), ps in groups.items()]
    return torch.optim.AdamW(param_groups, lr=lr, betas=(0.9, 0.999))


def lr_factor(step: int, total: int, warmup: int, lrf: float) -> float:
    """Linear warmup to 1, then cosine down to lrf."""
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return lrf + (1 - lrf) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def set_lr(opt: torch.optim.Optimizer, base_lr: float, factor: float) -> float:
    for g in opt.param_groups:
        g["lr"] = base_lr * g["lr_scale"] * factor
    return base_lr * factor
