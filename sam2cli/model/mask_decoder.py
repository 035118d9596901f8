"""Mask decoder: a two-way transformer over [obj-score, IoU, 4 mask] tokens + prompt tokens.

Outputs at 1024: mask logits (B, 4, 256, 256), IoU predictions (B, 4), the mask tokens
(B, 4, C) and object-score logits (B, 1). Mask 0 is the single-mask output, 1..3 the multimask ones.
"""

from typing import List, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP, LayerNorm2d
from .transformer import TwoWayTransformer

PROMPT_CHUNK = 4     # prompts decoded together at inference: their image tokens stay in cache
PIXEL_CHUNK = 1024   # image tokens upscaled together


class DecoderOutput(NamedTuple):
    masks: torch.Tensor        # (B, M, 4h, 4w) logits, M = 1 or 3
    iou: torch.Tensor          # (B, M)
    tokens: torch.Tensor       # (B, M', C) mask tokens for object pointers
    obj_score: torch.Tensor    # (B, 1) logits: > 0 means the object is present


class MaskDecoder(nn.Module):
    """Prompt tokens + image features -> mask logits, IoU predictions, object score.

    fast (default): the image is shared by all prompts (decoded PROMPT_CHUNK at a time) and the
    upscaling runs per image token (`upscale`); plain: SAM's transposed convolutions on the whole
    map (`upscale_plain`). The token-image attentions have their own fast and plain forms.
    """
    fast: bool = True

    def __init__(self, *, dim: int = 256, num_multimask: int = 3, stability_delta: float = 0.05,
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
        """image (1 or B, C, h, w); sparse (B, P, C); dense (1 or B, C, h, w); high_res = [s0, s1],
        each of batch 1 or B. What has batch 1 is shared by all B prompts (broadcast, not copied)."""
        b = sparse.shape[0]
        h, w = image.shape[-2:]
        out_tokens = torch.cat([self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight])
        tokens = torch.cat([out_tokens[None].expand(b, -1, -1), sparse], dim=1)
        keys = (image + dense).flatten(2).transpose(1, 2).contiguous()      # (1 or B, h*w, C)
        key_pe = image_pe.flatten(2).transpose(1, 2).contiguous()           # (1, h*w, C)
        skips = skip_tokens(high_res, h, w) if self.fast else high_res
        step = b if (self.training or not self.fast) else PROMPT_CHUNK
        parts = []
        for i in range(0, b, step):
            def part(t):
                return t if t.shape[0] == 1 else t[i:i + step]
            hs, src = self.transformer(part(keys), key_pe, tokens[i:i + step])
            mask_tokens = hs[:, 2: 2 + self.num_mask_tokens]               # (b, 4, C)
            hyper = torch.stack([mlp(mask_tokens[:, k]) for k, mlp in enumerate(self.output_hypernetworks_mlps)], 1)
            upscale = self.upscale if self.fast else self.upscale_plain
            masks = upscale(src, hyper, [part(t) for t in skips], h, w)
            parts.append((masks, self.iou_prediction_head(hs[:, 1]), mask_tokens, self.pred_obj_score_head(hs[:, 0])))
        masks, iou, mask_tokens, obj_score = (torch.cat(x) if len(parts) > 1 else x[0] for x in zip(*parts))

        if multimask:
            return DecoderOutput(masks[:, 1:], iou[:, 1:], mask_tokens[:, 1:], obj_score)
        if not self.training:
            masks_1, iou_1 = self.pick_stable(masks, iou)
        else:
            masks_1, iou_1 = masks[:, :1], iou[:, :1]
        return DecoderOutput(masks_1, iou_1, mask_tokens[:, :1], obj_score)

    def project_high_res(self, f0: torch.Tensor, f1: torch.Tensor) -> List[torch.Tensor]:
        """The decoder's 1x1 projections of the stride-4 and stride-8 backbone features,
        (B, C, 4h, 4w), (B, C, 2h, 2w) -> [s0 (B, C/8, 4h, 4w), s1 (B, C/4, 2h, 2w)]."""
        return [self.conv_s0(f0), self.conv_s1(f1)]

    def upscale_plain(self, src: torch.Tensor, hyper: torch.Tensor, high_res: List[torch.Tensor], h: int, w: int):
        """SAM's upscaling as written: image tokens src (B, h*w, C) -> a (B, C, h, w) map -> two 2x2
        transposed convolutions with the high-res skips s1, s0 added -> dot with the hypernetwork
        weights hyper (B, M, C/8) at every pixel -> logits (B, M, 4h, 4w)."""
        up1, ln, act1, up2, act2 = self.output_upscaling
        s0, s1 = high_res
        b, _, c = src.shape
        x = src.transpose(1, 2).reshape(b, c, h, w)
        x = act1(ln(up1(x) + s1))                                           # (B, C/4, 2h, 2w)
        x = act2(up2(x) + s0)                                               # (B, C/8, 4h, 4w)
        return (hyper @ x.flatten(2)).view(b, -1, 4 * h, 4 * w)

    def upscale(self, src: torch.Tensor, hyper: torch.Tensor, skips: List[torch.Tensor], h: int, w: int):
        """Image tokens src (B, h*w, C) and hypernetwork weights (B, M, C/8) -> logits (B, M, 4h, 4w).

        Both transposed convolutions are 2x2 with stride 2, so each token only feeds its own 4x4
        output block: the upscaling (conv, + s1, LayerNorm, GELU, conv, + s0, GELU, dot with the
        mask weights) is done per token, as matmuls over chunks of tokens. The (B, C/8, 4h, 4w)
        features are never materialised; only the M logits per output pixel are.
        """
        up1, ln, act1, up2, act2 = self.output_upscaling
        s1, s0 = skips
        c4, c8 = up1.out_channels, up2.out_channels
        w1 = up1.weight.permute(0, 2, 3, 1).reshape(up1.in_channels, 4 * c4)  # (C, (i, j, c4))
        w2 = up2.weight.permute(0, 2, 3, 1).reshape(c4, 4 * c8)               # (c4, (k, l, c8))
        b1, b2 = up1.bias.repeat(4), up2.bias.repeat(4)
        b, n, c = src.shape
        outs = []
        for i in range(0, n, PIXEL_CHUNK):
            x = src[:, i:i + PIXEL_CHUNK]
            p = x.shape[1]
            x = torch.addmm(b1, x.reshape(b * p, c), w1).view(b, p, 4, c4) + s1[:, i:i + p]
            x = act1(F.layer_norm(x, (c4,), ln.weight, ln.bias, ln.eps))
            x = torch.addmm(b2, x.reshape(b * p * 4, c4), w2).view(b, p, 16, c8) + s0[:, i:i + p]
            outs.append(act2(x).view(b, p * 16, c8) @ hyper.transpose(1, 2))  # (b, p*16, M)
        m = hyper.shape[1]
        logits = torch.cat(outs, 1).view(b, h, w, 2, 2, 2, 2, m)             # (b, y, x, i, j, k, l, M)
        return logits.permute(0, 7, 1, 3, 5, 2, 4, 6).reshape(b, m, 4 * h, 4 * w)

    def pick_stable(self, masks: torch.Tensor, iou: torch.Tensor):
        """Keep the single-mask output where it is stable, else the best multimask output."""
        return pick_stable(masks, iou, self.stability_delta, self.stability_thresh)


def pick_stable(masks: torch.Tensor, iou: torch.Tensor, delta: float, thresh: float):
    """All 4 outputs (B, 4, H, W), (B, 4) -> the single-mask output (B, 1, H, W), (B, 1) where its
    stability score is >= thresh, else the multimask output with the best predicted IoU."""
    single = masks[:, :1]
    logits = single.flatten(-2)
    inter = (logits > delta).sum(-1).float()
    union = (logits > -delta).sum(-1).float()
    stability = torch.where(union > 0, inter / union, torch.ones_like(inter))  # (B, 1)
    stable = stability >= thresh
    best = iou[:, 1:].argmax(-1)
    idx = torch.arange(masks.shape[0], device=masks.device)
    best_mask = masks[idx, best + 1][:, None]
    best_iou = iou[idx, best + 1][:, None]
    return (torch.where(stable[..., None, None], single, best_mask),
            torch.where(stable, iou[:, :1], best_iou))


def skip_tokens(high_res: List[torch.Tensor], h: int, w: int) -> List[torch.Tensor]:
    """[s0 (B, C/8, 4h, 4w), s1 (B, C/4, 2h, 2w)] -> per image token of the (h, w) grid, its
    sub-pixels in the order MaskDecoder.upscale makes them: [s1 (B, h*w, 4, C/4), s0 (B, h*w, 16, C/8)].
    Output pixel (4y + 2i + k, 4x + 2j + l) is sub-pixel (i, j) of the first upscaling, (k, l) of the second."""
    s0, s1 = high_res
    (b0, c0), (b1, c1) = s0.shape[:2], s1.shape[:2]
    s1 = s1.reshape(b1, c1, h, 2, w, 2).permute(0, 2, 4, 3, 5, 1).reshape(b1, h * w, 4, c1)
    s0 = s0.reshape(b0, c0, h, 2, 2, w, 2, 2).permute(0, 2, 5, 3, 6, 4, 7, 1).reshape(b0, h * w, 16, c0)
    return [s1, s0]
