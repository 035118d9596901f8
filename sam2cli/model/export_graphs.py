"""The four graphs of an ONNX export, as nn.Modules over a SAM2Model's own submodules.

Each wrapper fixes one graph's inputs and outputs (shapes for 1024 input, C = d_model = 256,
m = mem_dim = 64, h = w = 64). What the tracker decides (which memories, which candidate mask)
stays in host code; the graphs hold only tensor math:

- ImageEncoderGraph:  image (1, 3, S, S) -> s0 (1, C/8, 4h, 4w), s1 (1, C/4, 2h, 2w),
                      top (1, C, h, w), top_pos (1, C, h, w)  [conv_s0/conv_s1 applied]
- DecoderGraph:       prompts for N objects of P points -> all 4 candidate masks and their
                      IoU scores, the object score and the object pointer of every candidate
- MemoryEncoderGraph: frame features + mask logits -> one memory (features, pos)
- MemoryAttentionGraph: frame features + F memory frames + P object pointers -> conditioned
                      features, with RoPE as cos/sin rotations (no complex numbers)

The PyTorch path is not changed by these wrappers; parity is checked by tests/test_export_onnx.py.
"""

from contextlib import contextmanager
from typing import Iterator, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .common import rope_table, sine_encoding_1d
from .hiera import MultiScaleBlock
from .mask_decoder import skip_tokens
from .sam2 import SAM2Model
from .transformer import RoPEAttention

Tensor = torch.Tensor


@contextmanager
def unchunked(model: SAM2Model) -> Iterator[SAM2Model]:
    """Hiera blocks as single ops (no cache-sized chunks) while a graph is traced."""
    blocks = [m for m in model.modules() if isinstance(m, MultiScaleBlock)]
    try:
        for b in blocks:
            b.fast = False
        yield model
    finally:
        for b in blocks:
            b.fast = True


class ImageEncoderGraph(nn.Module):
    def __init__(self, model: SAM2Model):
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """image (1, 3, S, S), normalised -> s0, s1, top, top_pos."""
        f = self.model.encode_image(image)
        return f.s0, f.s1, f.top, f.top_pos


class DecoderGraph(nn.Module):
    """Prompt encoder + mask decoder for N objects sharing one image.

    Inputs: image (1, C, h, w) (the top features, memory-conditioned or + no_mem_embed);
    s0 (1, C/8, 4h, 4w); s1 (1, C/4, 2h, 2w); coords (N, P, 2) in input pixels and labels (N, P)
    int32, with the padding point (-1) already appended by the host (P may be 0: no points);
    mask_input (M, 1, 4h, 4w) logits, M = N or 1; has_mask (1,) float, 1 to use mask_input.
    Outputs: masks (N, 4, 4h, 4w) logits of all candidates (0: single-mask, 1..3: multimask);
    iou (N, 4); obj_score (N, 1); obj_ptr (N, 4, C) for each candidate (no_obj_ptr if absent).
    """

    def __init__(self, model: SAM2Model):
        super().__init__()
        self.model = model

    def embed_points(self, coords: Tensor, labels: Tensor) -> Tensor:
        """(N, P, 2), (N, P) -> (N, P, C); PromptEncoder.embed_points without its own padding."""
        pe = self.model.sam_prompt_encoder
        emb = pe.pe_layer.encode((coords + 0.5) / pe.image_size)
        labels = labels[..., None]
        emb = torch.where(labels == -1, pe.not_a_point_embed.weight, emb)
        for k in range(4):
            emb = torch.where(labels == k, emb + pe.point_embeddings[k].weight, emb)
        return emb

    def forward(self, image, s0, s1, coords, labels, mask_input, has_mask):
        m, pe, dec = self.model, self.model.sam_prompt_encoder, self.model.sam_mask_decoder
        n = coords.shape[0]
        h, w = image.shape[-2:]
        sparse = self.embed_points(coords, labels)                                    # (N, P, C)
        no_mask = pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = torch.where(has_mask > 0, pe.mask_downscaling(mask_input), no_mask)   # (M, C, h, w)
        out_tokens = torch.cat([dec.obj_score_token.weight, dec.iou_token.weight, dec.mask_tokens.weight])
        tokens = torch.cat([out_tokens[None].expand(n, -1, -1), sparse], dim=1)      # (N, 6 + P, C)
        keys = (image + dense).flatten(2).transpose(1, 2).expand(n, -1, -1)           # (N, h*w, C)
        key_pe = pe.dense_pe().flatten(2).transpose(1, 2)                              # (1, h*w, C)
        hs, src = dec.transformer(keys, key_pe, tokens)
        mask_tokens = hs[:, 2: 2 + dec.num_mask_tokens]                               # (N, 4, C)
        hyper = torch.stack([mlp(mask_tokens[:, k]) for k, mlp in enumerate(dec.output_hypernetworks_mlps)], 1)
        masks = dec.upscale(src, hyper, skip_tokens([s0, s1], h, w), h, w)            # (N, 4, 4h, 4w)
        iou = dec.iou_prediction_head(hs[:, 1])                                       # (N, 4)
        obj_score = dec.pred_obj_score_head(hs[:, 0])                                 # (N, 1)
        present = (obj_score > 0).float()[..., None]                                  # (N, 1, 1)
        ptr = present * m.obj_ptr_proj(mask_tokens) + (1 - present) * m.no_obj_ptr    # (N, 4, C)
        return masks, iou, obj_score, ptr


class MemoryEncoderGraph(nn.Module):
    """pix_feat (1, C, h, w); mask_logits (1, 1, S, S); obj_score (1, 1); binarize (1,) float
    (1: a clicked frame's mask is thresholded, 0: sigmoid) -> features (1, m, h, w), pos (1, m, h, w)."""

    def __init__(self, model: SAM2Model):
        super().__init__()
        self.model = model

    def forward(self, pix_feat, mask_logits, obj_score, binarize):
        cfg = self.model.cfg
        mask = torch.where(binarize > 0, (mask_logits > 0).float(), torch.sigmoid(mask_logits))
        mask = mask * cfg.sigmoid_scale_for_mem_enc + cfg.sigmoid_bias_for_mem_enc
        out = self.model.memory_encoder(pix_feat, mask)
        spatial = self.model.no_obj_embed_spatial                                     # (1, m); 2.0: none,
        if spatial is None:  # so add zeros: obj_score stays an input (an unused one would be dropped)
            spatial = torch.zeros(1, self.model.cfg.mem_dim)
        absent = (obj_score <= 0).float()[..., None, None]                            # (1, 1, 1, 1)
        return out["features"] + absent * spatial[..., None, None], out["pos"]


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """RoPE on (..., n, d) in the split layout (the first d/2 channels are the first element of
    each rotated pair, the last d/2 the second) with (n, d/2) cos/sin tables: each pair (a, b)
    becomes (a cos - b sin, a sin + b cos). Slices only, so zero-sized inputs are fine."""
    half = cos.shape[-1]
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class RealRoPE(nn.Module):
    """A RoPEAttention's math with cos/sin tables: memory-frame keys are rotated, pointer keys not.

    RoPE rotates channel pairs (2i, 2i+1) of each head. q and k are projected with their output
    channels reordered to (0, 2, 4, ..., 1, 3, 5, ...) per head: the same reordering of q and k
    leaves every q.k product as it was, and turns the rotation into slices (no complex numbers,
    no pair reshapes).
    """

    def __init__(self, attn: RoPEAttention, n: int):
        super().__init__()
        self.attn = attn
        nh = attn.num_heads
        d = attn.q_proj.out_features // nh
        side = int(n ** 0.5)
        table = rope_table(d, side, side, attn.theta)                 # (n, d/2) complex
        self.register_buffer("cos", table.real.contiguous(), persistent=False)
        self.register_buffer("sin", table.imag.contiguous(), persistent=False)
        order = torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)])
        order = torch.cat([h * d + order for h in range(nh)])
        for name, proj in (("q", attn.q_proj), ("k", attn.k_proj)):
            self.register_buffer(f"{name}_weight", proj.weight.detach()[order].clone(), persistent=False)
            self.register_buffer(f"{name}_bias", proj.bias.detach()[order].clone(), persistent=False)

    def forward(self, q: Tensor, k_grid: Tensor, k_rest: Optional[Tensor], v: Tensor) -> Tensor:
        """q (B, n, C); k_grid (B, K*n, Ck) rotated; k_rest (B, R, Ck) not; v (B, K*n + R, Ck).
        Reshapes name every size (no -1): K and R may be 0."""
        a = self.attn
        n, nh = self.cos.shape[0], a.num_heads
        d = a.q_proj.out_features // nh

        def heads(x: Tensor) -> Tensor:                              # (B, N, nh*d) -> (B, nh, N, d)
            return x.reshape(x.shape[0], x.shape[1], nh, d).transpose(1, 2)
        q = rotate(heads(F.linear(q, self.q_weight, self.q_bias)), self.cos, self.sin)     # (B, nh, n, d)
        b = q.shape[0]
        k = heads(F.linear(k_grid, self.k_weight, self.k_bias))                             # (B, nh, K*n, d)
        k_copies = k.shape[2] // n
        k = rotate(k.reshape(b, nh, k_copies, n, d), self.cos, self.sin).reshape(b, nh, k_copies * n, d)
        if k_rest is not None:
            k = torch.cat([k, heads(F.linear(k_rest, self.k_weight, self.k_bias))], dim=2)
        out = F.scaled_dot_product_attention(q, k, heads(a.v_proj(v)))   # (B, nh, n, d)
        return a.out_proj(out.transpose(1, 2).reshape(b, n, nh * d))


class MemoryAttentionGraph(nn.Module):
    """Inputs: top, top_pos (1, C, h, w); mem (1, F, m, h, w) and mem_pos (1, F, m, h, w) of F
    memory frames; mem_tpos (F,) int64 index into maskmem_tpos_enc (num_maskmem-1 for a conditioning
    frame, ago-1 for a frame `ago` frames back); ptrs (1, P, C) object pointers; ptr_pos (P,) their
    signed distance / the pointer window. Output: the conditioned features (1, C, h, w).
    SAM2Model.condition_on_memory is the PyTorch twin."""

    def __init__(self, model: SAM2Model):
        super().__init__()
        self.model = model
        n = model.sam_prompt_encoder.embed_size ** 2
        layers = model.memory_attention.layers
        self.self_attn = nn.ModuleList(RealRoPE(layer.self_attn, n) for layer in layers)
        self.cross_attn = nn.ModuleList(RealRoPE(layer.cross_attn_image, n) for layer in layers)

    def pointer_tokens(self, ptrs: Tensor, ptr_pos: Tensor) -> Tuple[Tensor, Tensor]:
        """(1, P, C), (P,) -> tokens and their position encodings (1, P*C/m, m)."""
        cfg, m = self.model.cfg, self.model.cfg.mem_dim
        b, p, c = ptrs.shape
        if cfg.add_tpos_enc_to_obj_ptrs:
            dim = c if cfg.proj_tpos_enc_in_obj_ptrs else m
            tpos = self.model.obj_ptr_tpos_proj(sine_encoding_1d(ptr_pos, dim))    # (P, m)
        else:
            tpos = torch.zeros_like(ptr_pos)[:, None].expand(-1, m)
        split = c // m                                                           # 4 tokens per pointer
        tokens = ptrs.reshape(b, p * split, m)
        pos = tpos[:, None, :].expand(p, split, m).reshape(1, p * split, m).expand(b, -1, -1)
        return tokens, pos

    def forward(self, top, top_pos, mem, mem_pos, mem_tpos, ptrs, ptr_pos):
        model, ma = self.model, self.model.memory_attention
        b, c, h, w = top.shape
        f, m = mem.shape[1], mem.shape[2]
        tpos = model.maskmem_tpos_enc[:, 0, 0][mem_tpos][None, :, None, :]         # (1, F, 1, m)
        # explicit sizes, no -1: F may be 0 (only object pointers)
        mem = mem.reshape(b, f, m, h * w).transpose(2, 3).reshape(b, f * h * w, m)   # (1, F*hw, m)
        mem_pos = (mem_pos.reshape(b, f, m, h * w).transpose(2, 3) + tpos).reshape(b, f * h * w, m)
        ptr, ptr_pos = self.pointer_tokens(ptrs, ptr_pos)                          # (1, 4P, m)
        values = torch.cat([mem, ptr], dim=1)
        x = top.flatten(2).transpose(1, 2) + 0.1 * top_pos.flatten(2).transpose(1, 2)  # (1, hw, C)
        for layer, self_attn, cross_attn in zip(ma.layers, self.self_attn, self.cross_attn):
            y = layer.norm1(x)
            x = x + self_attn(y, y, None, y)
            y = layer.norm2(x)
            x = x + cross_attn(y, mem + mem_pos, ptr + ptr_pos, values)
            y = layer.norm3(x)
            x = x + layer.linear2(F.relu(layer.linear1(y)))
        return ma.norm(x).transpose(1, 2).reshape(b, c, h, w)
