"""Hiera blocks run window-chunk by window-chunk (and their MLPs token-chunk by token-chunk) for
speed; this must equal the block computed on the whole map, as SAM 2 defines it."""

import pytest
import torch

from sam2cli.model import hiera
from sam2cli.model.hiera import MultiScaleBlock, pool2x, window_partition, window_unpartition


def textbook_block(blk: MultiScaleBlock, x: torch.Tensor) -> torch.Tensor:
    """norm1, attention in zero-padded windows of the whole map, residual, then the MLP residual."""
    n = blk.norm1(x)
    shortcut = x if blk.dim == blk.dim_out else blk.proj(n)
    if blk.q_pool:
        shortcut = pool2x(shortcut)
    ws = blk.window_size
    windows, padded = window_partition(n, ws)
    out = blk.attn(windows)
    if blk.q_pool:
        ws //= 2
        padded = tuple(s + (-s) % ws for s in shortcut.shape[1:3])
    x = shortcut + window_unpartition(out, ws, padded, shortcut.shape[1:3])
    return x + blk.mlp(blk.norm2(x))


@pytest.mark.parametrize("dim_out, q_pool, ws, side", [
    (16, False, 4, 16),   # whole windows: chunked path
    (32, True, 4, 16),    # stage transition with whole windows
    (16, False, 6, 16),   # padded windows: the general path
    (32, True, 6, 16),
])
def test_windowed_block_in_chunks_equals_the_whole_map(dim_out, q_pool, ws, side, monkeypatch):
    monkeypatch.setattr(hiera, "BLOCK_TOKENS", 40)  # 2 windows of 16 tokens per chunk, 16 windows
    monkeypatch.setattr(hiera, "MLP_ROWS", 7)
    torch.manual_seed(0)
    blk = MultiScaleBlock(16, dim_out, num_heads=2, window_size=ws, q_pool=q_pool).double().eval()
    with torch.no_grad():
        for p in blk.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(2, side, side, 16, dtype=torch.float64)
    with torch.no_grad():
        got, want = blk(x), textbook_block(blk, x)
    assert got.shape == want.shape == (2, side // (2 if q_pool else 1), side // (2 if q_pool else 1), dim_out)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
