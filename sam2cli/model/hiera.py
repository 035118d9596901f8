"""Hiera trunk: a hierarchical ViT with windowed attention and query pooling between stages.

Shapes (tiny at 1024): patch embed -> (B, 256, 256, 96); stages halve H, W and double C:
(B,256,256,96) -> (B,128,128,192) -> (B,64,64,384) -> (B,32,32,768).
"""

from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP

MLP_ROWS = 2048      # tokens per chunk in the blocks' MLPs
BLOCK_TOKENS = 2048  # tokens per chunk of windows run through a windowed block


def window_partition(x: torch.Tensor, ws: int):
    """(B, H, W, C) -> (B*nW, ws, ws, C), zero-padding H and W up to multiples of ws."""
    b, h, w, c = x.shape
    ph, pw = (-h) % ws, (-w) % ws
    if ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph))
    hp, wp = h + ph, w + pw
    x = x.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws, ws, c), (hp, wp)


def window_unpartition(x: torch.Tensor, ws: int, padded_hw, hw) -> torch.Tensor:
    """Inverse of window_partition, cropping the padding away."""
    (hp, wp), (h, w) = padded_hw, hw
    b = x.shape[0] // ((hp // ws) * (wp // ws))
    x = x.reshape(b, hp // ws, wp // ws, ws, ws, -1).permute(0, 1, 3, 2, 4, 5)
    x = x.reshape(b, hp, wp, -1)
    return x[:, :h, :w, :] if (hp > h or wp > w) else x


def pool2x(x: torch.Tensor) -> torch.Tensor:
    """2x2 max pool on a channels-last (B, H, W, C) map."""
    return F.max_pool2d(x.permute(0, 3, 1, 2), 2, 2).permute(0, 2, 3, 1)


class PatchEmbed(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a channels-last conv: its (B, H/4, W/4, C) view is contiguous, as every block wants
        return self.proj(x.contiguous(memory_format=torch.channels_last)).permute(0, 2, 3, 1)


class MultiScaleAttention(nn.Module):
    """Multi-head self-attention; with q_pool, queries are 2x2 max-pooled (stage transition)."""

    def __init__(self, dim: int, dim_out: int, num_heads: int, q_pool: bool):
        super().__init__()
        self.num_heads = num_heads
        self.q_pool = q_pool
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1)
        q, k, v = qkv.unbind(2)  # (B, HW, heads, d)
        if self.q_pool:
            q = pool2x(q.reshape(b, h, w, -1))
            h, w = q.shape[1:3]
            q = q.reshape(b, h * w, self.num_heads, -1)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(out.transpose(1, 2).reshape(b, h, w, -1))


class MultiScaleBlock(nn.Module):
    """norm1 -> (windowed) attention -> residual -> norm2 -> MLP -> residual, on (B, H, W, C) maps.

    fast (default): a block with whole windows is window-local, so it runs on cache-sized chunks
    of windows, and the MLP on chunks of tokens. plain: the block on the whole map, as SAM 2 defines
    it; graph export uses it too (one op per layer, shape-independent).
    """
    fast: bool = True

    def __init__(self, *, dim: int, dim_out: int, num_heads: int, window_size: int, q_pool: bool):
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.window_size = window_size
        self.q_pool = q_pool
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_pool)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, 4 * dim_out, dim_out, 2, act=nn.GELU)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H', W', C'), halved by q_pool."""
        ws = self.window_size
        h, w = x.shape[1:3]
        if self.fast and ws and h % ws == 0 and w % ws == 0 and (ws % 2 == 0 or not self.q_pool):
            # Whole windows, so the block is window-local: run it on cache-sized chunks of windows.
            windows, _ = window_partition(x, ws)
            chunk = max(1, BLOCK_TOKENS // (ws * ws))
            out = torch.cat([self.local(c) for c in windows.split(chunk)])
            hw = (h // 2, w // 2) if self.q_pool else (h, w)
            return window_unpartition(out, out.shape[1], hw, hw)
        # plain: attention in windows of the whole map (zero-padded after norm1), or global (ws 0)
        n = self.norm1(x)
        shortcut = self.shortcut(x, n)
        return self.mlp_residual(shortcut + self.windowed_attention(n, shortcut.shape[1:3]))

    def windowed_attention(self, normed: torch.Tensor, out_hw) -> torch.Tensor:
        """Attention within zero-padded windows of the normed (B, H, W, C) map -> (B, *out_hw, C')."""
        ws = self.window_size
        if ws == 0:
            return self.attn(normed)
        windows, padded = window_partition(normed, ws)
        out = self.attn(windows)
        if self.q_pool:  # the windows shrank with the queries
            ws //= 2
            padded = tuple(s + (-s) % ws for s in out_hw)
        return window_unpartition(out, ws, padded, out_hw)

    def local(self, x: torch.Tensor) -> torch.Tensor:
        """The block on (N, h, w, C) maps that each attend within themselves (windows or images)."""
        n = self.norm1(x)
        return self.mlp_residual(self.shortcut(x, n) + self.attn(n))

    def shortcut(self, x: torch.Tensor, normed: torch.Tensor) -> torch.Tensor:
        """The residual path: x itself, or at a stage transition norm1(x) projected and pooled."""
        if self.dim == self.dim_out:
            return x
        out = self.proj(normed)
        return pool2x(out) if self.q_pool else out

    def mlp_residual(self, x: torch.Tensor) -> torch.Tensor:
        """x + mlp(norm2(x)); fast: over chunks of tokens so that the 4x wider hidden layer stays
        in cache (the MLP is per token, so this is exact; about 2x faster at 1024 in stage 1)."""
        if not self.fast:  # plain
            return x + self.mlp(self.norm2(x))
        flat = x.reshape(-1, x.shape[-1])
        return torch.cat([t + self.mlp(self.norm2(t)) for t in flat.split(MLP_ROWS)]).view(x.shape)


class Hiera(nn.Module):
    def __init__(self, *, embed_dim: int, num_heads: int, stages: Sequence[int],
                 global_att_blocks: Sequence[int], window_spec: Sequence[int],
                 window_pos_embed_bkg_spatial_size: Sequence[int]):
        super().__init__()
        self.stage_ends = [sum(stages[: i + 1]) - 1 for i in range(len(stages))]
        stage_starts = {end + 1 for end in self.stage_ends[:-1]}  # blocks that pool and widen
        self.patch_embed = PatchEmbed(embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, *window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, embed_dim, window_spec[0], window_spec[0]))
        self.blocks = nn.ModuleList()
        dim, heads, stage = embed_dim, num_heads, 0
        for i in range(sum(stages)):
            # The first block of a stage still uses the previous stage's window size.
            window = 0 if i in global_att_blocks else window_spec[stage]
            dim_out = dim
            if i in stage_starts:
                dim_out, heads, stage = dim * 2, heads * 2, stage + 1
            self.blocks.append(MultiScaleBlock(dim=dim, dim_out=dim_out, num_heads=heads, window_size=window,
                                               q_pool=i in stage_starts))
            dim = dim_out
        self.channel_list = [self.blocks[i].dim_out for i in self.stage_ends[::-1]]
        self._pos_key, self._pos_cached = None, None

    def pos_embedding(self, h: int, w: int) -> torch.Tensor:
        """(1, h, w, C); without gradients it is kept until the size or the weights change (the
        bicubic resize costs as much as a transformer block at stage 1)."""
        if torch.is_grad_enabled() or self.pos_embed.is_inference():  # (inference tensors have no version)
            return self._pos_embedding(h, w)
        key = (h, w, *((p.data_ptr(), p._version, p.dtype) for p in (self.pos_embed, self.pos_embed_window)))
        if self._pos_key != key:
            self._pos_cached, self._pos_key = self._pos_embedding(h, w), key
        return self._pos_cached

    def _pos_embedding(self, h: int, w: int) -> torch.Tensor:
        """Background embedding resized (bicubic) to h x w, plus the tiled window embedding."""
        pos = F.interpolate(self.pos_embed, size=(h, w), mode="bicubic")
        win = self.pos_embed_window
        pos = pos + win.tile(1, 1, h // win.shape[2], w // win.shape[3])
        return pos.permute(0, 2, 3, 1).contiguous()  # channels-last like x: a fast add

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """(B, 3, H, W) -> one (B, C_i, H_i, W_i) map per stage, highest resolution first."""
        x = self.patch_embed(x)
        x = x + self.pos_embedding(*x.shape[1:3])
        outs = []
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i in self.stage_ends:
                outs.append(x.permute(0, 3, 1, 2))
        return outs
