"""Model configuration as plain data: one dataclass per model, built from cfg/models/*.yaml."""

from dataclasses import dataclass, fields
from typing import Any, Dict, List, Tuple


@dataclass(frozen=True)
class TrunkConfig:
    embed_dim: int
    num_heads: int
    stages: Tuple[int, ...]
    global_att_blocks: Tuple[int, ...]
    window_spec: Tuple[int, ...]
    window_pos_embed_bkg_spatial_size: Tuple[int, int]

    @property
    def channel_list(self) -> List[int]:
        """Trunk output channels, lowest resolution first (the FPN neck's order)."""
        return [self.embed_dim * 2 ** i for i in range(len(self.stages))][::-1]


@dataclass(frozen=True)
class ModelConfig:
    name: str
    version: str
    trunk: TrunkConfig
    aliases: Tuple[str, ...] = ()
    image_size: int = 1024
    backbone_stride: int = 16
    d_model: int = 256
    mem_dim: int = 64
    num_maskmem: int = 7
    max_obj_ptrs: int = 16
    memory_attention_layers: int = 4
    memory_attention_ffn: int = 2048
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    iou_head_hidden_dim: int = 256
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    binarize_mask_from_pts_for_mem_enc: bool = True
    multimask_min_pt_num: int = 0
    multimask_max_pt_num: int = 1
    multimask_output_for_tracking: bool = True
    only_obj_ptrs_in_the_past: bool = True
    stability_delta: float = 0.05
    stability_thresh: float = 0.98
    fpn_top_down_levels: Tuple[int, ...] = (2, 3)
    add_tpos_enc_to_obj_ptrs: bool = True
    proj_tpos_enc_in_obj_ptrs: bool = True
    use_signed_tpos_enc_to_obj_ptrs: bool = True
    no_obj_embed_spatial: bool = True

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ModelConfig":
        """Build from a merged yaml dict; unknown keys raise KeyError (typos must not pass silently)."""
        d = dict(d)
        d.pop("inherit", None)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise KeyError(f"unknown model config keys: {', '.join(unknown)}")
        trunk = d.pop("trunk")
        d["trunk"] = TrunkConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in trunk.items()})
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        d["version"] = str(d["version"])
        return cls(**d)

    def with_image_size(self, image_size: int) -> "ModelConfig":
        from dataclasses import replace
        return replace(self, image_size=int(image_size))
