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
        return self.attend(self.q_proj(q), self.k_proj(k), self.v_proj(v))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Projected q (Bq, Nq, inner) and k, v (Bk, Nk, inner) -> (B, Nq, dim). The batches are
        equal, or one of them is 1 and is shared by the other's items (one image, many prompts)."""
        bq, nq = q.shape[:2]
        if k.shape[0] == 1 and bq > 1:  # many prompts' tokens against one image: one attention
            return self.attend(q.reshape(1, bq * nq, -1), k, v).reshape(bq, nq, -1)
        q = q.expand(k.shape[0], -1, -1) if bq < k.shape[0] else q
        return self.merge(F.scaled_dot_product_attention(self.heads(q), self.heads(k), self.heads(v)))


class TokenImageAttention(Attention):
    """The decoder's cross-attentions between a few prompt tokens and many image tokens.

    With T tokens and h heads, h*T < inner, each head's projection of the image tokens is folded
    into the token side (exact up to rounding): the image tokens are multiplied by (h*T, C) matrices
    made from the tokens instead of by the (inner, C) projections. This halves the work on the
    image tokens, lets the softmax run along the long axis, and skips the head transposes.
    More tokens than that, or fast=False, use plain attention.
    """
    fast: bool = True

    def _head_weights(self, proj: nn.Linear) -> torch.Tensor:
        return proj.weight.view(self.num_heads, -1, proj.in_features)     # (h, d, C)

    def _fold(self, tokens: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Projected tokens (B, T, inner), scaled by 1/sqrt(d), times each head's (d, C) weights of
        the image-side projection -> (B, h*T, C): a matrix to multiply the raw image tokens by."""
        b, t, _ = tokens.shape
        x = tokens.view(b, t, self.num_heads, -1)
        x = x * x.shape[-1] ** -0.5
        return torch.einsum("bthd,hdc->bhtc", x, weights).reshape(b, self.num_heads * t, -1)

    def _folds(self, t: int) -> bool:
        return self.fast and self.num_heads * t < self.q_proj.out_features

    def tokens_to_image(self, tokens: torch.Tensor, image_k: torch.Tensor, image_v: torch.Tensor) -> torch.Tensor:
        """tokens (B, T, C) attend to image tokens (1 or B, N, C) -> (B, T, C)."""
        b, t, _ = tokens.shape
        if not self._folds(t):  # plain: softmax(q k^T / sqrt(d)) v per head, as Attention computes it
            return self(tokens, image_k, image_v)
        h = self.num_heads
        a = self._fold(self.q_proj(tokens), self._head_weights(self.k_proj))
        scores = a @ _shared(image_k).transpose(-1, -2)                   # (B, h*T, N); k's bias is
        mixed = scores.softmax(-1) @ _shared(image_v)                     # constant along N: no effect
        out = torch.einsum("bhtc,hdc->bthd", mixed.view(b, h, t, -1), self._head_weights(self.v_proj))
        return self.out_proj(out.reshape(b, t, -1) + self.v_proj.bias)   # attention rows sum to 1

    def image_to_tokens(self, image_q: torch.Tensor, tokens_k: torch.Tensor, tokens_v: torch.Tensor) -> torch.Tensor:
        """image tokens (1 or B, N, C) attend to tokens (B, T, C) -> (B, N, C)."""
        b, t, _ = tokens_k.shape
        if not self._folds(t):  # plain
            return self(image_q, tokens_k, tokens_v)
        h = self.num_heads
        q_weights = torch.cat([self._head_weights(self.q_proj), self.q_proj.bias.view(h, -1, 1)], -1)
        folded = self._fold(self.k_proj(tokens_k), q_weights)            # q's bias as a last column
        a, bias = folded[..., :-1], folded[..., -1:]
        scores = a @ _shared(image_q).transpose(-1, -2) + bias            # (B, h*T, N)
        attn = scores.view(b, h, t, -1).softmax(dim=2).view(b, h * t, -1)
        v = self.v_proj(tokens_v).view(b, t, h, -1)
        out_w = self.out_proj.weight.view(-1, h, v.shape[-1])             # (C, h, d)
        mixed = torch.einsum("bthd,chd->bhtc", v, out_w).reshape(b, h * t, -1)  # values through out_proj
        return attn.transpose(1, 2) @ mixed + self.out_proj.bias          # (B, N, C)


def _shared(x: torch.Tensor) -> torch.Tensor:
    """(1, N, C) -> (N, C), so that a matmul folds the other side's batch into its rows."""
    return x[0] if x.shape[0] == 1 else x


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
        self.cross_attn_token_to_image = TokenImageAttention(dim, num_heads, downsample_rate=2)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_dim, dim, 2, act=nn.ReLU)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = TokenImageAttention(dim, num_heads, downsample_rate=2)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries, keys, query_pe, key_pe) -> Tuple[torch.Tensor, torch.Tensor]:
        """queries, query_pe (B, T, C); keys (1 or B, N, C); key_pe (1, N, C)."""
        if self.skip_first_layer_pe:  # first layer: no PE and no residual
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)
        k = keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image.tokens_to_image(queries + query_pe, k, keys))
        queries = self.norm3(queries + self.mlp(queries))
        attn = self.cross_attn_image_to_token.image_to_tokens(k, queries + query_pe, queries)
        return queries, self.norm4(keys + attn)


class TwoWayTransformer(nn.Module):
    def __init__(self, depth: int = 2, dim: int = 256, num_heads: int = 8, mlp_dim: int = 2048):
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(dim, num_heads, mlp_dim, skip_first_layer_pe=(i == 0)) for i in range(depth)
        )
        self.final_attn_token_to_image = TokenImageAttention(dim, num_heads, downsample_rate=2)
        self.norm_final_attn = nn.LayerNorm(dim)

    def forward(self, keys: torch.Tensor, key_pe: torch.Tensor, tokens: torch.Tensor):
        """keys (1 or B, N, C) image tokens, key_pe (1, N, C); tokens (B, T, C)
        -> tokens (B, T, C), image tokens (B, N, C)."""
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        attn = self.final_attn_token_to_image.tokens_to_image(queries + tokens, keys + key_pe, keys)
        return self.norm_final_attn(queries + attn), keys
