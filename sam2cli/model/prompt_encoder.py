"""Prompt encoder: points (clicks, box corners) -> sparse tokens, a mask -> a dense embedding.

Point labels: 1 foreground, 0 background, 2/3 box top-left/bottom-right, -1 padding.
"""

import math
from typing import Optional, Tuple

import torch
from torch import nn

from .common import LayerNorm2d


class RandomFourierEncoding(nn.Module):
    """Positional encoding of [0,1]^2 coordinates with a fixed random Gaussian projection."""

    def __init__(self, num_feats: int):
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_feats))

    def encode(self, coords01: torch.Tensor) -> torch.Tensor:
        """(..., 2) in [0,1] -> (..., 2*num_feats)."""
        proj = (2 * coords01 - 1) @ self.positional_encoding_gaussian_matrix * (2 * math.pi)
        return torch.cat([proj.sin(), proj.cos()], dim=-1)

    def grid(self, h: int, w: int) -> torch.Tensor:
        """Encoding of every cell centre of an h x w grid: (C, h, w)."""
        dev = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(h, device=dev, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=dev, dtype=torch.float32) + 0.5) / w
        xy = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)], dim=-1)
        return self.encode(xy).permute(2, 0, 1)


class PromptEncoder(nn.Module):
    def __init__(self, *, embed_dim: int, image_size: int, backbone_stride: int = 16, mask_in_chans: int = 16):
        super().__init__()
        self.embed_dim = embed_dim
        self.image_size = image_size
        self.backbone_stride = backbone_stride
        self.pe_layer = RandomFourierEncoding(embed_dim // 2)
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    @property
    def embed_size(self) -> int:
        """Side of the image embedding grid (64 at 1024)."""
        return self.image_size // self.backbone_stride

    @property
    def mask_input_size(self) -> int:
        """Side of the low-resolution mask logits (256 at 1024)."""
        return 4 * self.embed_size

    def dense_pe(self) -> torch.Tensor:
        """(1, C, h, w) positional encoding of the image embedding grid."""
        return self.pe_layer.grid(self.embed_size, self.embed_size)[None]

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """coords (B, P, 2) in input-image pixels, labels (B, P) -> (B, P+1, C) with a padding token."""
        b = coords.shape[0]
        coords = torch.cat([coords + 0.5, coords.new_zeros(b, 1, 2)], dim=1)
        labels = torch.cat([labels, -labels.new_ones(b, 1)], dim=1)
        emb = self.pe_layer.encode(coords / self.image_size)
        emb = torch.where((labels == -1)[..., None], self.not_a_point_embed.weight.expand_as(emb), emb)
        for k in range(4):
            emb = torch.where((labels == k)[..., None], emb + self.point_embeddings[k].weight, emb)
        return emb

    def forward(self, points: Optional[Tuple[torch.Tensor, torch.Tensor]], masks: Optional[torch.Tensor],
                batch_size: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
        """-> sparse (B, P+1 or 0, C) and dense (B, C, h, w) embeddings; without masks dense has
        batch 1, shared by the B prompts."""
        if points is not None:
            sparse = self.embed_points(*points)
            batch_size = sparse.shape[0]
        else:
            if masks is not None:
                batch_size = masks.shape[0]
            sparse = self.no_mask_embed.weight.new_empty(batch_size, 0, self.embed_dim)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            s = self.embed_size
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, s, s)  # shared
        return sparse, dense
