"""SAM 2 / SAM 2.1: the whole model, with the official parameter names.

This module holds the network and the per-frame steps the predictors compose:
encode an image, decode prompts, encode a memory, condition a frame on memories.
Which memories to use (the tracking policy) lives in the engine, not here.
"""

from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import nn

from .common import MLP, sine_encoding_1d
from .config import ModelConfig
from .hiera import Hiera
from .image_encoder import FpnNeck, ImageEncoder
from .mask_decoder import MaskDecoder
from .memory import MemoryAttention, MemoryEncoder
from .prompt_encoder import PromptEncoder

NO_OBJ_LOGIT = -1024.0     # mask logits of an object judged absent, or with nothing on a frame
MASK_LOGIT = 10.0          # a binary mask taken as logits: +10 inside, -10 outside
PREV_MASK_CLAMP = 32.0     # a previous mask fed back as a dense prompt is clamped to +-32


def mask_to_logits(mask: torch.Tensor) -> torch.Tensor:
    """A binary mask (or presence flag) as logits: +MASK_LOGIT where set, -MASK_LOGIT elsewhere."""
    return mask.float() * (2 * MASK_LOGIT) - MASK_LOGIT


class ImageFeatures(NamedTuple):
    """Per-image features; at 1024: s0 (B,32,256,256), s1 (B,64,128,128), top (B,256,64,64)."""
    s0: torch.Tensor
    s1: torch.Tensor
    top: torch.Tensor
    top_pos: torch.Tensor

    @property
    def high_res(self) -> List[torch.Tensor]:
        return [self.s0, self.s1]

    def select(self, idx) -> "ImageFeatures":
        return ImageFeatures(*(t[idx] for t in self))


class Decoded(NamedTuple):
    """A decode: prompt encoder + mask decoder + object pointers, M = 1 or 3 candidates."""
    masks: torch.Tensor        # (B, M, 4h, 4w) low-res mask logits
    iou: torch.Tensor          # (B, M) predicted IoU
    obj_score: torch.Tensor    # (B, 1) object-presence logit: > 0 means present
    obj_ptr: torch.Tensor      # (B, M, C) each candidate's object pointer (no_obj_ptr if absent)


class Memory(NamedTuple):
    """A stored memory of one frame: features/pos (B, mem_dim, h, w)."""
    features: torch.Tensor
    pos: torch.Tensor


class SAM2Model(nn.Module):
    """The PyTorch backend (engine/backend.py's protocol); the heads' host logic that turns a
    decode into a tracked frame's output lives in engine/heads.py."""
    kind = "pytorch"

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        t, d, m = cfg.trunk, cfg.d_model, cfg.mem_dim
        trunk = Hiera(embed_dim=t.embed_dim, num_heads=t.num_heads, stages=t.stages,
                      global_att_blocks=t.global_att_blocks, window_spec=t.window_spec,
                      window_pos_embed_bkg_spatial_size=t.window_pos_embed_bkg_spatial_size)
        neck = FpnNeck(d_model=d, backbone_channel_list=t.channel_list, top_down_levels=cfg.fpn_top_down_levels)
        self.image_encoder = ImageEncoder(trunk=trunk, neck=neck)
        self.memory_attention = MemoryAttention(d_model=d, kv_dim=m, num_layers=cfg.memory_attention_layers,
                                                dim_feedforward=cfg.memory_attention_ffn)
        self.memory_encoder = MemoryEncoder(in_dim=d, out_dim=m)
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(cfg.num_maskmem, 1, 1, m))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, d))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, d))
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, d))
        self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, m)) if cfg.no_obj_embed_spatial else None
        self.sam_prompt_encoder = PromptEncoder(embed_dim=d, image_size=cfg.image_size,
                                                backbone_stride=cfg.backbone_stride)
        self.sam_mask_decoder = MaskDecoder(dim=d, num_multimask=3, stability_delta=cfg.stability_delta,
                                            stability_thresh=cfg.stability_thresh, num_heads=cfg.decoder_heads,
                                            mlp_dim=cfg.decoder_mlp_dim, iou_hidden_dim=cfg.iou_head_hidden_dim)
        self.obj_ptr_proj = MLP(d, d, d, 3)
        self.obj_ptr_tpos_proj = nn.Linear(d, m) if cfg.proj_tpos_enc_in_obj_ptrs else nn.Identity()
        for p in (self.maskmem_tpos_enc, self.no_mem_embed, self.no_mem_pos_enc, self.no_obj_ptr,
                  self.no_obj_embed_spatial):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)

    # ------------------------------------------------------------------ sizes
    @property
    def image_size(self) -> int:
        return self.sam_prompt_encoder.image_size

    @property
    def mask_input_size(self) -> int:
        return self.sam_prompt_encoder.mask_input_size

    @property
    def device(self) -> torch.device:
        return self.no_obj_ptr.device

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def set_image_size(self, size: int) -> None:
        """Run at another input size (a multiple of 16*window size, e.g. 256, 512, 1024)."""
        self.sam_prompt_encoder.image_size = int(size)
        self.cfg = self.cfg.with_image_size(size)  # cfg stays the truth about the running model

    # ------------------------------------------------------------------ image
    def encode_image(self, x: torch.Tensor) -> ImageFeatures:
        """Normalised (B, 3, S, S) images -> features."""
        out = self.image_encoder(x)
        f0, f1, top = out["backbone_fpn"]
        # conv_s0/conv_s1 are the mask decoder's own layers; they depend on the image alone, so
        # they run once here and every prompt (and tracked frame) reuses their output.
        s0, s1 = self.sam_mask_decoder.project_high_res(f0, f1)
        return ImageFeatures(s0, s1, top, out["vision_pos_enc"][-1])

    def decode(self, image: torch.Tensor, high_res: Sequence[torch.Tensor],
               coords: Optional[torch.Tensor] = None, labels: Optional[torch.Tensor] = None,
               mask_input: Optional[torch.Tensor] = None, multimask: bool = False) -> Decoded:
        """Prompt encoder + mask decoder + object pointers. coords (B, P, 2) in input pixels,
        labels (B, P), mask_input (B, 1, 4h, 4w) logits. An image of batch 1 serves all B prompts."""
        points = (coords, labels) if coords is not None else None
        batch = coords.shape[0] if coords is not None else (mask_input.shape[0] if mask_input is not None else 1)
        sparse, dense = self.sam_prompt_encoder(points, mask_input, batch)
        out = self.sam_mask_decoder(image, self.sam_prompt_encoder.dense_pe(), sparse, dense,
                                    list(high_res), multimask)
        present = (out.obj_score > 0).float()[..., None]                     # (B, 1, 1)
        ptr = present * self.obj_ptr_proj(out.tokens) + (1 - present) * self.no_obj_ptr
        return Decoded(out.masks, out.iou, out.obj_score, ptr)

    # ------------------------------------------------------------------ video steps
    def encode_memory(self, pix_feat: torch.Tensor, high_res_logits: torch.Tensor,
                      obj_score: torch.Tensor, from_points: bool) -> Memory:
        """Frame features (B, C, h, w) + its mask logits (B, 1, S, S) -> a memory."""
        if from_points and self.cfg.binarize_mask_from_pts_for_mem_enc and not self.training:
            mask = (high_res_logits > 0).float()
        else:
            mask = torch.sigmoid(high_res_logits)
        mask = mask * self.cfg.sigmoid_scale_for_mem_enc + self.cfg.sigmoid_bias_for_mem_enc
        out = self.memory_encoder(pix_feat, mask)
        feats = out["features"]
        if self.no_obj_embed_spatial is not None:
            absent = (obj_score <= 0).float()[..., None, None]               # (B, 1, 1, 1)
            feats = feats + absent * self.no_obj_embed_spatial[..., None, None]
        return Memory(feats, out["pos"])

    def condition_on_memory(self, feats: ImageFeatures, memories: Sequence[Tuple[int, Memory]],
                            ptrs: Sequence[Tuple[int, torch.Tensor]], ptr_tpos_max: int) -> torch.Tensor:
        """Fuse the frame's top features with its memory bank -> (B, C, h, w).

        memories: (frames_ago, Memory); frames_ago 0 marks a conditioning (prompted) frame, 1..6 a
        recent frame that many frames back. Reference order: conditioning frames, then oldest first.
        ptrs: (signed frame distance, (B, C) pointer).
        ptr_tpos_max: the distance that maps to 1.0 in the pointer's temporal encoding.
        With no memory at all (the first prompted frame), the learned no-memory embedding is added.
        """
        top, top_pos = feats.top, feats.top_pos
        b, c, h, w = top.shape
        if not memories and not ptrs:
            return top + self.no_mem_embed.reshape(1, c, 1, 1)
        mem, mem_pos = [], []
        n_mem = self.cfg.num_maskmem
        for ago, memory in memories:
            tpos = self.maskmem_tpos_enc[n_mem - 1 if ago == 0 else ago - 1].reshape(1, 1, -1)
            mem.append(memory.features.flatten(2).transpose(1, 2))          # (B, hw, 64)
            mem_pos.append(memory.pos.flatten(2).transpose(1, 2) + tpos)
        n_ptr_tokens = 0
        if ptrs:
            m = self.cfg.mem_dim
            dists = torch.tensor([float(d) for d, _ in ptrs], device=top.device)
            ptr = torch.stack([p for _, p in ptrs], dim=1)                  # (B, P, C)
            if self.cfg.add_tpos_enc_to_obj_ptrs:
                dim = c if self.cfg.proj_tpos_enc_in_obj_ptrs else m
                tpos = self.obj_ptr_tpos_proj(sine_encoding_1d(dists / ptr_tpos_max, dim))  # (P, 64)
            else:
                tpos = ptr.new_zeros(len(ptrs), m)
            split = c // m                                                   # 4 tokens per pointer
            mem.append(ptr.reshape(b, len(ptrs) * split, m))
            mem_pos.append(tpos.repeat_interleave(split, dim=0)[None].expand(b, -1, -1))
            n_ptr_tokens = len(ptrs) * split
        curr = top.flatten(2).transpose(1, 2)                                # (B, hw, C)
        curr_pos = top_pos.flatten(2).transpose(1, 2)
        out = self.memory_attention(curr, curr_pos, torch.cat(mem, 1), torch.cat(mem_pos, 1), n_ptr_tokens)
        return out.transpose(1, 2).reshape(b, c, h, w)
