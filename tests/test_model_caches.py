"""Inference caches in the model (position embeddings) give what recomputing gives, and follow
the weights: loading new weights, or training, must never see a stale embedding."""

import torch

from sam2cli.model.common import SinePositionEncoding2d
from sam2cli.model.hiera import Hiera


def small_hiera():
    return Hiera(embed_dim=8, num_heads=1, stages=[1, 1], global_att_blocks=[1], window_spec=[4, 2],
                 window_pos_embed_bkg_spatial_size=[4, 4])


def test_hiera_pos_embedding_cache_follows_the_weights():
    torch.manual_seed(0)
    h = small_hiera()
    torch.nn.init.normal_(h.pos_embed)
    with torch.no_grad():
        first = h.pos_embedding(16, 16).clone()
        assert torch.equal(first, h._pos_embedding(16, 16))
        assert h.pos_embedding(16, 16) is h.pos_embedding(16, 16)  # kept
        other = small_hiera()
        torch.nn.init.normal_(other.pos_embed)
        h.load_state_dict(other.state_dict())  # in place: new weights
        assert torch.equal(h.pos_embedding(16, 16), h._pos_embedding(16, 16))
        assert not torch.equal(h.pos_embedding(16, 16), first)
        assert h.pos_embedding(8, 8).shape == (1, 8, 8, 8)  # another size
    with torch.inference_mode():
        assert torch.equal(h.pos_embedding(16, 16), h._pos_embedding(16, 16))
    # with gradients (training) it is recomputed, so the gradient reaches pos_embed
    h.pos_embedding(16, 16).sum().backward()
    assert h.pos_embed.grad is not None and h.pos_embed.grad.abs().sum() > 0


def test_sine_encoding_in_half_precision_is_the_cast_of_fp32():
    enc = SinePositionEncoding2d(16)
    x = torch.zeros(2, 3, 6, 5)
    full = enc(x)
    half = enc(x.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16 and half.shape == (2, 16, 6, 5)
    assert torch.equal(half, full.to(torch.bfloat16))
    assert enc(x.to(torch.bfloat16)).data_ptr() == half.data_ptr()  # cached, not converted again
