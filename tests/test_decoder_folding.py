"""The decoder's fast forms equal the plain computations they replace.

Segment-everything decodes ~1000 prompts against one image, so the mask decoder folds the
cross-attention projections into the token side, upscales per image token without materialising
the (B, 32, 256, 256) features, and shares the image across prompts. These tests pin each of
those rewrites to the plain form kept beside it in the model (`plain_math`: convolutions,
per-prompt copies of the image, plain attention); the reference parity tests then cover the
whole decoder.
"""

import pytest
import torch
import torch.nn.functional as F

from sam2cli.model import mask_decoder as md
from sam2cli.model.mask_decoder import MaskDecoder, skip_tokens
from sam2cli.model.common import plain_math
from sam2cli.model.transformer import TokenImageAttention


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.5 if p.dim() == 1 else p.shape[-1] ** -0.5))


def _plain(attn: TokenImageAttention, fn, *args):
    """The same call with the module's plain form: textbook multi-head attention."""
    with plain_math(attn):
        return fn(*args)


@pytest.mark.parametrize("tokens", [7, 20])  # 2 heads x 20 tokens > 32: the unfolded branch
@pytest.mark.parametrize("shared", [True, False])
def test_token_image_attention_equals_plain_attention(tokens, shared):
    attn = TokenImageAttention(64, num_heads=2, downsample_rate=2).double()  # inner 32
    _randomise(attn)
    b, n = 3, 50
    image = torch.randn(1 if shared else b, n, 64, dtype=torch.float64)
    image_pe = torch.randn(1, n, 64, dtype=torch.float64)
    tok = torch.randn(b, tokens, 64, dtype=torch.float64)
    assert attn._folds(tokens) == (tokens == 7)
    torch.testing.assert_close(attn.tokens_to_image(tok, image + image_pe, image),
                               _plain(attn, attn.tokens_to_image, tok, image + image_pe, image), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(attn.image_to_tokens(image + image_pe, tok + 1, tok),
                               _plain(attn, attn.image_to_tokens, image + image_pe, tok + 1, tok), rtol=1e-9, atol=1e-9)
    assert attn.fast


@pytest.mark.parametrize("shared_skips", [True, False])
def test_per_token_upscaling_equals_transposed_convolutions(shared_skips, monkeypatch):
    monkeypatch.setattr(md, "PIXEL_CHUNK", 7)  # chunks that do not divide the grid
    dec = MaskDecoder(dim=32, num_heads=2, mlp_dim=64, iou_hidden_dim=32).double()
    _randomise(dec)
    b, h, w = 2, 5, 6
    src = torch.randn(b, h * w, 32, dtype=torch.float64)
    hyper = torch.randn(b, 4, 4, dtype=torch.float64)
    nb = 1 if shared_skips else b
    high_res = [torch.randn(nb, 4, 4 * h, 4 * w, dtype=torch.float64),
                torch.randn(nb, 8, 2 * h, 2 * w, dtype=torch.float64)]
    got = dec.upscale(src, hyper, skip_tokens(high_res, h, w), h, w)
    want = dec.upscale_plain(src, hyper, high_res, h, w)  # SAM's transposed convolutions
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("multimask", [True, False])
def test_the_whole_decoder_equals_its_plain_form(multimask):
    """Every fast form at once (shared image, prompt chunks, folded attention, per-token upscaling)
    against the decoder run with plain_math: all prompts in one pass, plain attention, convolutions."""
    dec = MaskDecoder(dim=32, num_heads=2, mlp_dim=64, iou_hidden_dim=32).double().eval()
    _randomise(dec)
    b, h, w = 5, 4, 6
    image, pe = (torch.randn(1, 32, h, w, dtype=torch.float64) for _ in range(2))
    sparse = torch.randn(b, 2, 32, dtype=torch.float64)
    dense = torch.randn(1, 32, 1, 1, dtype=torch.float64).expand(1, -1, h, w)
    high_res = [torch.randn(1, 4, 4 * h, 4 * w, dtype=torch.float64),
                torch.randn(1, 8, 2 * h, 2 * w, dtype=torch.float64)]
    with torch.no_grad():
        fast = dec(image, pe, sparse, dense, high_res, multimask)
        with plain_math(dec):
            plain = dec(image, pe, sparse, dense, high_res, multimask)
    for field in fast._fields:
        torch.testing.assert_close(getattr(fast, field), getattr(plain, field), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("multimask", [True, False])
def test_prompts_sharing_one_image_decode_as_if_each_had_its_copy(multimask, monkeypatch):
    monkeypatch.setattr(md, "PROMPT_CHUNK", 3)  # 7 prompts: chunks of 3, 3 and 1
    dec = MaskDecoder(dim=32, num_heads=2, mlp_dim=64, iou_hidden_dim=32).double().eval()
    _randomise(dec)
    b, h, w = 7, 4, 4
    image = torch.randn(1, 32, h, w, dtype=torch.float64)
    pe = torch.randn(1, 32, h, w, dtype=torch.float64)
    sparse = torch.randn(b, 1, 32, dtype=torch.float64)
    assert dec.transformer.final_attn_token_to_image._folds(6 + 1)  # 6 output tokens + 1 prompt
    dense = torch.randn(1, 32, 1, 1, dtype=torch.float64).expand(1, -1, h, w)
    high_res = [torch.randn(1, 4, 4 * h, 4 * w, dtype=torch.float64),
                torch.randn(1, 8, 2 * h, 2 * w, dtype=torch.float64)]
    with torch.no_grad():
        shared = dec(image, pe, sparse, dense, high_res, multimask)
        copies = [dec(image, pe, sparse[i:i + 1], dense, high_res, multimask) for i in range(b)]
        expanded = dec(image.expand(b, -1, -1, -1), pe, sparse, dense.expand(b, -1, -1, -1),
                       [x.expand(b, -1, -1, -1) for x in high_res], multimask)
    for field in shared._fields:
        one_by_one = torch.cat([getattr(c, field) for c in copies])
        torch.testing.assert_close(getattr(shared, field), one_by_one, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(getattr(expanded, field), one_by_one, rtol=1e-9, atol=1e-9)
    assert F.mse_loss(shared.masks[0], shared.masks[1]) > 0  # the prompts do differ
