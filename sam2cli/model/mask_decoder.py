"""Mask decoder: a two-way transformer over [obj-score, IoU, 4 mask] tokens + prompt tokens.

Outputs at 1024: mask logits (B, 4, 256, 256), IoU predictions (B, 4), the mask tokens
(B, 4, C) and object-score logits (B, 1). Mask 0 is the single-mask output, 1..3 the multimask ones.
"""

from typing import List, NamedTuple

import torch
from torch import nn

from .common import MLP, LayerNorm2d
from .transformer import TwoWayTransformer


class DecoderOutput(NamedTuple):
    masks: torch.Tensor        # (B, M, 4h, 4w) logits, M = 1 or 3
    iou: torch.Tensor          # (B, M)
    tokens: torch.Tensor       # (B, M', C) mask tokens for object pointers
    obj_score: torch.Tensor    # (B, 1) logits: > 0 means the object is present


class MaskDecoder(nn.Module):
    def __init__(self, dim: int = 256, num_multimask: int = 3, stability_delta: float = 0.05,
                 stability_thresh: float = 0.98, num_heads: int = 8, mlp_dim: int = 2048, iou_hidden_dim: int = 256):
        super().__init__()
        self.num_mask_tokens = num_multimask + 1
        self.transformer = TwoWayTransformer(depth=2, dim=dim, num_heads=num_heads, mlp_dim=mlp_dim)
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.obj_score_token = nn.Embedding(1, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.conv_s0 = nn.Conv2d(dim, dim // 8, kernel_size=1)  # applied once per image to the
        self.conv_s1 = nn.Conv2d(dim, dim // 4, kernel_size=1)  # stride-4 and stride-8 features
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(dim, iou_hidden_dim, self.num_mask_tokens, 3, sigmoid_output=True)
        self.pred_obj_score_head = MLP(dim, dim, 1, 3)
        self.stability_delta = stability_delta
        self.stability_thresh = stability_thresh

    def forward(self, image: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor,
                dense: torch.Tensor, high_res: List[torch.Tensor], multimask: bool) -> DecoderOutput:
        """image (1 or B, C, h, w); sparse (B, P, C); dense (B, C, h, w); high_res = [s0, s1].

        An image of batch 1 is shared by all B prompts (broadcast, not copied).
        """
        b = sparse.shape[0]
        out_tokens = torch.cat([self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight])
        tokens = torch.cat([out_tokens[None].expand(b, -1, -1), sparse], dim=1)
        src = image + dense                                        # (B, C, h, w)
        pos = image_pe.expand(b, -1, -1, -1)
        hs, src = self.transformer(src, pos, tokens)
        _, c, h, w = image.shape
        src = src.transpose(1, 2).reshape(b, c, h, w)

        up1, ln, act1, up2, act2 = self.output_upscaling
        feat_s0, feat_s1 = high_res
        up = act1(ln(up1(src) + feat_s1))
        up = act2(up2(up) + feat_s0)                               # (B, C/8, 4h, 4w)

        mask_tokens = hs[:, 2: 2 + self.num_mask_tokens]           # (B, 4, C)
        hyper = torch.stack([mlp(mask_tokens[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], 1)
        bb, cc, hh, ww = up.shape
        masks = (hyper @ up.reshape(bb, cc, hh * ww)).reshape(bb, -1, hh, ww)
        iou = self.iou_prediction_head(hs[:, 1])
        obj_score = self.pred_obj_score_head(hs[:, 0])

        if multimask:
            return DecoderOutput(masks[:, 1:], iou[:, 1:], mask_tokens[:, 1:], obj_score)
        if not self.training:
            masks_1, iou_1 = self.pick_stable(masks, iou)
        else:
            masks_1, iou_1 = masks[:, :1], iou[:, :1]
        return DecoderOutput(masks_1, iou_1, mask_tokens[:, :1], obj_score)

    def pick_stable(self, masks: torch.Tensor, iou: torch.Tensor):
        """Keep the single-mask output where it is stable, else the best multimask output."""
        single = masks[:, :1]
        logits = single.flatten(-2)
        inter = (logits > self.stability_delta).sum(-1).float()
        union = (logits > -self.stability_delta).sum(-1).float()
        stability = torch.where(union > 0, inter / union, torch.ones_like(inter))  # (B, 1)
        stable = stability >= self.stability_thresh
        best = iou[:, 1:].argmax(-1)
        idx = torch.arange(masks.shape[0], device=masks.device)
        best_mask = masks[idx, best + 1][:, None]
        best_iou = iou[idx, best + 1][:, None]
        return (torch.where(stable[..., None, None], single, best_mask),
                torch.where(stable, iou[:, :1], best_iou))
