"""Attention layers: the two-way transformer of the mask decoder and RoPE attention for memory."""

import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP, apply_rope, rope_table


class Attention(nn.Module):
    """Multi-head attention with optional channel downsampling of q/k/v (SAM style)."""

    def __init__(self, dim: int, num_heads: int, downsample_rate: int = 1, kv_in_dim: int = None):
        super().__init__()
        inner = dim // downsample_rate
        kv_in_dim = kv_in_dim or dim
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, inner)
        self.k_proj = nn.Linear(kv_in_dim, inner)
        self.v_proj = nn.Linear(kv_in_dim, inner)
        self.out_proj = nn.Linear(inner, dim)

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape  # -> (B, heads, N, c/heads)
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def merge(self, x: torch.Tensor) -> torch.Tensor:
        b, h, n, d = x.shape
        return self.out_proj(x.transpose(1, 2).reshape(b, n, h * d))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = self.heads(self.q_proj(q)), self.heads(self.k_proj(k)), self.heads(self.v_proj(v))
        return self.merge(F.scaled_dot_product_attention(q, k, v))


class RoPEAttention(Attention):
    """Attention with 2-D axial rotary encodings on q and k.

    Queries form a square grid. Keys are `repeat` copies of that grid (several memory frames)
    followed by `num_k_exclude_rope` tokens (object pointers) that are not rotated.
    """

    def __init__(self, dim: int, num_heads: int, kv_in_dim: int = None, theta: float = 10000.0):
        super().__init__(dim, num_heads, 1, kv_in_dim)
        self.theta = theta
        self._tables: dict = {}

    def table(self, n: int, head_dim: int, device) -> torch.Tensor:
        key = (n, str(device))
        if key not in self._tables:
            side = int(math.isqrt(n))
            self._tables[key] = rope_table(head_dim, side, side, self.theta).to(device)
        return self._tables[key]

    def forward(self, q, k, v, num_k_exclude_rope: int = 0) -> torch.Tensor:
        q, k, v = self.heads(self.q_proj(q)), self.heads(self.k_proj(k)), self.heads(self.v_proj(v))
        table = self.table(q.shape[2], q.shape[3], q.device)
        q = apply_rope(q, table)
        n_rope = k.shape[2] - num_k_exclude_rope
        if n_rope > 0:
            k = torch.cat([apply_rope(k[:, :, :n_rope], table), k[:, :, n_rope:]], dim=2)
        return self.merge(F.scaled_dot_product_attention(q, k, v))


class TwoWayAttentionBlock(nn.Module):
    """Tokens self-attend, tokens attend to the image, MLP on tokens, image attends to tokens."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, skip_first_layer_pe: bool):
        super().__init__()
        self.self_attn = Attention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, num_heads, downsample_rate=2)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_dim, dim, 2, act=nn.ReLU)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, num_heads, downsample_rate=2)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries, keys, query_pe, key_pe) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.skip_first_layer_pe:  # first layer: no PE and no residual
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))
        queries = self.norm3(queries + self.mlp(queries))
        q = queries + query_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(self, depth: int = 2, dim: int = 256, num_heads: int = 8, mlp_dim: int = 2048):
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(dim, num_heads, mlp_dim, skip_first_layer_pe=(i == 0)) for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(dim, num_heads, downsample_rate=2)
        self.norm_final_attn = nn.LayerNorm(dim)

    def forward(self, image: torch.Tensor, image_pe: torch.Tensor, tokens: torch.Tensor):
        """image, image_pe (B, C, h, w); tokens (B, T, C) -> tokens (B, T, C), image (B, h*w, C)."""
        keys = image.flatten(2).transpose(1, 2)
        key_pe = image_pe.flatten(2).transpose(1, 2)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        attn = self.final_attn_token_to_image(queries + tokens, keys + key_pe, keys)
        return self.norm_final_attn(queries + attn), keys
