"""Image encoder = Hiera trunk + FPN neck.

Output at 1024 (d_model=256): backbone_fpn = [(B,256,256,256), (B,256,128,128), (B,256,64,64)]
(strides 4, 8, 16), one sine position encoding per level; the stride-32 level is dropped ("scalp").
"""

from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .common import SinePositionEncoding2d
from .hiera import Hiera


class FpnNeck(nn.Module):
    """1x1 lateral convs to d_model; top-down (nearest 2x upsample + sum) only into `top_down_levels`."""

    def __init__(self, *, d_model: int, backbone_channel_list: Sequence[int], top_down_levels=(2, 3)):
        super().__init__()
        self.position_encoding = SinePositionEncoding2d(d_model)
        self.convs = nn.ModuleList()
        for ch in backbone_channel_list:  # lowest resolution first, as in the checkpoints
            conv = nn.Sequential()
            conv.add_module("conv", nn.Conv2d(ch, d_model, kernel_size=1))
            self.convs.append(conv)
        self.top_down_levels = set(top_down_levels)

    def forward(self, xs: List[torch.Tensor]) -> List[torch.Tensor]:
        n = len(xs) - 1
        out: List[torch.Tensor] = [None] * len(xs)  # type: ignore[list-item]
        prev = None
        for i in range(n, -1, -1):  # from the lowest resolution up
            # the 1x1 conv as a matmul on the trunk's channels-last layout (no layout conversion);
            # the result is a channels-last (B, d_model, H, W) view
            conv = self.convs[n - i].conv
            lateral = F.linear(xs[i].permute(0, 2, 3, 1), conv.weight.flatten(1), conv.bias).permute(0, 3, 1, 2)
            if i in self.top_down_levels and prev is not None:
                prev = lateral + F.interpolate(prev.float(), scale_factor=2.0, mode="nearest").to(lateral.dtype)
            else:
                prev = lateral
            out[i] = prev
        return out


class ImageEncoder(nn.Module):
    def __init__(self, *, trunk: Hiera, neck: FpnNeck, scalp: int = 1):
        super().__init__()
        self.trunk = trunk
        self.neck = neck
        self.scalp = scalp

    def forward(self, x: torch.Tensor) -> Dict[str, List[torch.Tensor]]:
        feats = self.neck(self.trunk(x))
        if self.scalp:
            feats = feats[: -self.scalp]
        pos = [self.neck.position_encoding(f) for f in feats]
        return {"backbone_fpn": feats, "vision_pos_enc": pos}
