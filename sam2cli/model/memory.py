"""Memory modules: the encoder that turns (frame features, mask) into a memory, and the
attention that conditions the current frame on the memory bank.

At 1024: memory features (B, 64, 64, 64); the bank is a sequence of 64*64 tokens per frame plus
4 tokens (of 64 channels) per object pointer.
"""

import math
from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from .common import LayerNorm2d, SinePositionEncoding2d
from .transformer import RoPEAttention


class MaskDownSampler(nn.Module):
    """(B, 1, H, W) mask -> (B, 256, H/16, W/16): four stride-2 conv+LN+GELU stages, then a 1x1 conv."""

    def __init__(self, embed_dim: int = 256, total_stride: int = 16):
        super().__init__()
        self.encoder = nn.Sequential()
        ch = 1
        for _ in range(int(math.log2(total_stride))):
            self.encoder.append(nn.Conv2d(ch, ch * 4, kernel_size=3, stride=2, padding=1))
            self.encoder.append(LayerNorm2d(ch * 4))
            self.encoder.append(nn.GELU())
            ch *= 4
        self.encoder.append(nn.Conv2d(ch, embed_dim, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class CXBlock(nn.Module):
    """ConvNeXt block: depthwise 7x7 conv, LayerNorm, MLP x4, layer scale, residual."""

    def __init__(self, dim: int = 256):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = LayerNorm2d(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(y)))
        return x + y.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    def __init__(self, dim: int = 256, num_layers: int = 2):
        super().__init__()
        self.layers = nn.ModuleList(CXBlock(dim) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    def __init__(self, *, in_dim: int = 256, out_dim: int = 64):
        super().__init__()
        self.mask_downsampler = MaskDownSampler(in_dim)
        self.pix_feat_proj = nn.Conv2d(in_dim, in_dim, kernel_size=1)
        self.fuser = Fuser(in_dim)
        self.out_proj = nn.Conv2d(in_dim, out_dim, kernel_size=1)
        self.position_encoding = SinePositionEncoding2d(out_dim)

    def forward(self, pix_feat: torch.Tensor, mask: torch.Tensor) -> Dict[str, torch.Tensor]:
        """pix_feat (B, 256, h, w), mask (B, 1, 16h, 16w) already scaled -> features, pos (B, 64, h, w)."""
        x = self.pix_feat_proj(pix_feat) + self.mask_downsampler(mask)
        x = self.out_proj(self.fuser(x))
        return {"features": x, "pos": self.position_encoding(x)}


class MemoryAttentionLayer(nn.Module):
    """Pre-norm: self-attention (RoPE), cross-attention to memory (RoPE on spatial keys), FFN."""

    def __init__(self, *, d_model: int = 256, kv_dim: int = 64, dim_feedforward: int = 2048):
        super().__init__()
        self.self_attn = RoPEAttention(d_model, 1)
        self.cross_attn_image = RoPEAttention(d_model, 1, kv_in_dim=kv_dim)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)

    def forward(self, x, memory, memory_pos, num_k_exclude_rope: int = 0) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.self_attn(y, y, y)
        y = self.norm2(x)
        x = x + self.cross_attn_image(y, memory + memory_pos, memory, num_k_exclude_rope)
        y = self.norm3(x)
        return x + self.linear2(F.relu(self.linear1(y)))


class MemoryAttention(nn.Module):
    def __init__(self, *, d_model: int = 256, kv_dim: int = 64, num_layers: int = 4, dim_feedforward: int = 2048):
        super().__init__()
        self.layers = nn.ModuleList(MemoryAttentionLayer(d_model=d_model, kv_dim=kv_dim, dim_feedforward=dim_feedforward)
                                    for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, curr: torch.Tensor, curr_pos: torch.Tensor, memory: torch.Tensor,
                memory_pos: torch.Tensor, num_obj_ptr_tokens: int = 0) -> torch.Tensor:
        """Batch-first: curr, curr_pos (B, HW, 256); memory, memory_pos (B, M, 64) -> (B, HW, 256).

        The last `num_obj_ptr_tokens` memory tokens are object pointers (no RoPE).
        """
        x = curr + 0.1 * curr_pos
        for layer in self.layers:
            x = layer(x, memory, memory_pos, num_obj_ptr_tokens)
        return self.norm(x)
