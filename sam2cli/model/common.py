"""Small building blocks shared by the SAM 2 modules: MLP, LayerNorm2d and position encodings,
and the switch between the plain and the fast forms of the model's math."""

import contextlib
import math
from typing import Iterator

import torch
from torch import nn


def set_fast(model: nn.Module, fast: bool) -> None:
    """Run every module that has a plain and a fast form (Hiera blocks, the decoder's token-image
    attention and its upscaling) in one of them. Both compute the same function; the plain one is
    the textbook form a reader can check against the paper, the fast one is what runs by default."""
    for m in model.modules():
        if hasattr(type(m), "fast"):
            m.fast = fast


@contextlib.contextmanager
def plain_math(model: nn.Module) -> Iterator[nn.Module]:
    """`with plain_math(model):` runs the textbook forms, then restores the fast ones."""
    set_fast(model, False)
    try:
        yield model
    finally:
        set_fast(model, True)


class MLP(nn.Module):
    """`num_layers` Linear layers with an activation between them (official name: `layers.N`)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int,
                 act: type = nn.ReLU, sigmoid_output: bool = False):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.act = act()
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.act(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a (B, C, H, W) tensor."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


def _sine_freqs(num_feats: int, temperature: float, device) -> torch.Tensor:
    """Denominators temperature^(2*floor(i/2)/num_feats) of the transformer sine encoding."""
    i = torch.arange(num_feats, dtype=torch.float32, device=device)
    return temperature ** (2 * (i // 2) / num_feats)


class SinePositionEncoding2d(nn.Module):
    """DETR-style normalised 2-D sine encoding of a feature map: (B, C, H, W) -> (B, dim, H, W).

    Channels are [y features, x features]; within each half, sin and cos alternate.
    Parameter-free; results are cached per (H, W, device, dtype), so half precision does not
    convert a (256, 256, 256) grid on every image.
    """

    def __init__(self, dim: int, temperature: float = 10000.0):
        super().__init__()
        self.half = dim // 2
        self.temperature = temperature
        self.scale = 2 * math.pi
        self._cache: dict = {}

    @torch.no_grad()
    def grid(self, h: int, w: int, device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        key = (h, w, str(device), dtype)
        if key not in self._cache and dtype != torch.float32:
            self._cache[key] = self.grid(h, w, device).to(dtype)
        if key not in self._cache:
            eps = 1e-6
            y = torch.arange(1, h + 1, dtype=torch.float32, device=device) / (h + eps) * self.scale
            x = torch.arange(1, w + 1, dtype=torch.float32, device=device) / (w + eps) * self.scale
            freqs = _sine_freqs(self.half, self.temperature, device)
            py, px = y[:, None] / freqs, x[:, None] / freqs        # (H, half), (W, half)
            py = torch.stack((py[:, 0::2].sin(), py[:, 1::2].cos()), dim=2).flatten(1)
            px = torch.stack((px[:, 0::2].sin(), px[:, 1::2].cos()), dim=2).flatten(1)
            pos = torch.cat((py[:, None, :].expand(h, w, -1), px[None, :, :].expand(h, w, -1)), dim=2)
            self._cache[key] = pos.permute(2, 0, 1).contiguous()  # (dim, H, W)
        return self._cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = self.grid(x.shape[-2], x.shape[-1], x.device, x.dtype)
        return pos[None].expand(x.shape[0], -1, -1, -1)


def sine_encoding_1d(pos: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """1-D sine encoding of (N,) positions -> (N, dim): [sin(p/f) | cos(p/f)]."""
    freqs = _sine_freqs(dim // 2, temperature, pos.device)
    angles = pos[:, None].float() / freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def rope_table(head_dim: int, w: int, h: int, theta: float = 10000.0) -> torch.Tensor:
    """Axial 2-D rotary table for a w x h grid (row-major): (h*w, head_dim//2) complex.

    The first head_dim//4 complex pairs rotate with x, the rest with y.
    """
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 4)[: head_dim // 4].float() / head_dim))
    idx = torch.arange(w * h, dtype=torch.float32)
    tx, ty = idx % w, torch.div(idx, w, rounding_mode="floor")
    ang = torch.cat([torch.outer(tx, freqs), torch.outer(ty, freqs)], dim=-1)
    return torch.polar(torch.ones_like(ang), ang)


def apply_rope(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotate (B, heads, N, D) by a (M, D//2) complex table; N must be a multiple of M."""
    b, nh, n, d = x.shape
    xc = torch.view_as_complex(x.float().reshape(b, nh, n // table.shape[0], table.shape[0], d // 2, 2))
    out = torch.view_as_real(xc * table).reshape(b, nh, n, d)
    return out.type_as(x)
