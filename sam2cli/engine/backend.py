"""What the engine needs of a model: the `Backend` protocol.

Two backends implement it: `SAM2Model` (PyTorch, sam2cli/model/sam2.py) and `OnnxSAM2` (an
export folder on ONNX Runtime, engine/onnx_backend.py). The predictors, the tracker, the heads
(engine/heads.py) and the benchmark read only these members, so either one runs everywhere.

Shapes are for 1024 input: C = d_model = 256, m = mem_dim = 64, h = w = 64 (the embedding grid),
S = image_size. The per-frame steps, in the order the tracker runs them:

    feats = backend.encode_image(x)                          # (B, 3, S, S) -> ImageFeatures
    pix = backend.condition_on_memory(feats, memories, ptrs, ptr_tpos_max)   # (B, C, h, w)
    out = backend.decode(pix, feats.high_res, coords, labels, mask_input, multimask)
    memory = backend.encode_memory(feats.top, high_res_logits, out.obj_score, from_points)
"""

from typing import Optional, Protocol, Sequence, Tuple, runtime_checkable

import torch

from sam2cli.model.config import ModelConfig
from sam2cli.model.sam2 import Decoded, ImageFeatures, Memory


@runtime_checkable
class Backend(Protocol):
    """A SAM 2 model as the engine sees it.

    kind: "pytorch" or "onnxruntime" (the benchmark's `backend` column).
    cfg: the running model's config (its image_size follows set_image_size).
    no_mem_embed (1, 1, C): added to the image features of a frame with no memory (image mode).
    no_obj_ptr (1, C): the object pointer of an absent object.
    """

    kind: str
    cfg: ModelConfig
    no_mem_embed: torch.Tensor
    no_obj_ptr: torch.Tensor

    @property
    def image_size(self) -> int:
        """Side S of the (square) model input."""

    @property
    def mask_input_size(self) -> int:
        """Side 4h of the low-resolution mask logits (256 at 1024): decode's masks, mask prompts."""

    @property
    def device(self) -> torch.device:
        """Where the engine puts the tensors it passes in (and gets them back)."""

    @property
    def num_params(self) -> int:
        """Parameters of the network (an export: of the model it was exported from)."""

    def set_image_size(self, size: int) -> None:
        """Run at another input size (an export refuses a size it was not exported at)."""

    def mask_downsample(self, mask: torch.Tensor) -> torch.Tensor:
        """A (B, 1, S, S) mask -> (B, 1, 4h, 4w) mask-prompt logits (the learned 4x4 stride-4 conv)."""

    def encode_image(self, x: torch.Tensor) -> ImageFeatures:
        """Normalised (B, 3, S, S) images -> features (the decoder's high-res projections applied)."""

    def decode(self, image: torch.Tensor, high_res: Sequence[torch.Tensor],
               coords: Optional[torch.Tensor] = None, labels: Optional[torch.Tensor] = None,
               mask_input: Optional[torch.Tensor] = None, multimask: bool = False) -> Decoded:
        """Prompt encoder + mask decoder. image (1 or B, C, h, w); coords (B, P, 2) in input pixels,
        labels (B, P); mask_input (B, 1, 4h, 4w) logits. -> Decoded: masks (B, M, 4h, 4w), iou
        (B, M), obj_score (B, 1), obj_ptr (B, M, C) with M = 3 (multimask) or 1 (the single-mask
        output, or the best multimask one where it is unstable, at inference)."""

    def encode_memory(self, pix_feat: torch.Tensor, high_res_logits: torch.Tensor,
                      obj_score: torch.Tensor, from_points: bool) -> Memory:
        """Frame features (B, C, h, w) + its mask logits (B, 1, S, S) -> a memory (B, m, h, w)."""

    def condition_on_memory(self, feats: ImageFeatures, memories: Sequence[Tuple[int, Memory]],
                            ptrs: Sequence[Tuple[int, torch.Tensor]], ptr_tpos_max: int) -> torch.Tensor:
        """The frame's top features fused with (frames ago, Memory) and (distance, (B, C) pointer)
        pairs -> (B, C, h, w); with neither, top + no_mem_embed."""
