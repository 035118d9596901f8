"""Hiera blocks run window-chunk by window-chunk (and their MLPs token-chunk by token-chunk) for
speed; this must equal the plain block on the whole map, as SAM 2 defines it (fast=False)."""

import pytest
import torch

from sam2cli.model import hiera
from sam2cli.model.common import plain_math
from sam2cli.model.hiera import MultiScaleBlock


@pytest.mark.parametrize("dim_out, q_pool, ws, side", [
    (16, False, 4, 16),   # whole windows: chunked path
    (32, True, 4, 16),    # stage transition with whole windows
    (16, False, 6, 16),   # padded windows: the general path
    (32, True, 6, 16),
    (16, False, 0, 16),   # global attention
])
def test_windowed_block_in_chunks_equals_the_whole_map(dim_out, q_pool, ws, side, monkeypatch):
    monkeypatch.setattr(hiera, "BLOCK_TOKENS", 40)  # 2 windows of 16 tokens per chunk, 16 windows
    monkeypatch.setattr(hiera, "MLP_ROWS", 7)
    torch.manual_seed(0)
    blk = MultiScaleBlock(dim=16, dim_out=dim_out, num_heads=2, window_size=ws, q_pool=q_pool).double().eval()
    with torch.no_grad():
        for p in blk.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(2, side, side, 16, dtype=torch.float64)
    with torch.no_grad():
        got = blk(x)
        with plain_math(blk):
            want = blk(x)
    assert blk.fast  # restored
    assert got.shape == want.shape == (2, side // (2 if q_pool else 1), side // (2 if q_pool else 1), dim_out)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
