"""Load SAM 2 checkpoints: Meta's `{"model": state_dict}`, Ultralytics' files, or a bare state dict.

The variant is detected from the tensors (trunk width, blocks per stage, 2.0 vs 2.1 keys), never
from the file name, and every failure is one line naming the file and the problem. A checkpoint
written by `sam2 train` also holds `imgsz`, the input size it was trained at, beside `model`
(Meta's loader reads only `model`); the model built from it runs at that size.
"""

import zipfile
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

import torch

from sam2cli.errors import CheckpointError
from .config import ModelConfig
from .sam2 import SAM2Model

TRUNK = "image_encoder.trunk."


def read_state_dict(path: Path) -> Dict[str, torch.Tensor]:
    """torch.load(weights_only=True) and unwrap; a non-checkpoint gives CheckpointError."""
    return read_checkpoint(path)[0]


def read_checkpoint(path: Path) -> Tuple[Dict[str, torch.Tensor], Optional[int]]:
    """(state dict, trained input size or None): torch.load(weights_only=True) and unwrap."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); download it again.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights only" in reason.lower() or "weights_only" in reason.lower():
            raise CheckpointError(f"checkpoint {path} holds Python objects, not only tensors; refusing to "
                                  "unpickle it (weights_only=True). Re-save it as {{'model': state_dict}}.") from e
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({reason[:120]}); download it again.") from e
    except Exception as e:  # pickle errors and friends from a foreign file
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {str(e)[:120]}") from e
    imgsz = None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        size = obj.get("imgsz")
        imgsz = int(size) if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} is not a SAM 2 checkpoint: expected a state dict or "
                              "{'model': state_dict} of tensors.")
    return obj, imgsz


def signature(sd: Dict[str, torch.Tensor]) -> Tuple[int, Tuple[int, ...], str, Tuple[int, ...]]:
    """(trunk embed_dim, blocks per stage, version, window pos-embed size) read off the tensors."""
    embed_dim = sd[TRUNK + "patch_embed.proj.weight"].shape[0]
    blocks = sorted({int(k[len(TRUNK) + 7:].split(".")[0]) for k in sd if k.startswith(TRUNK + "blocks.")})
    starts = [i for i in blocks if f"{TRUNK}blocks.{i}.proj.weight" in sd]  # blocks that widen
    bounds = [0] + starts + [len(blocks)]
    stages = tuple(b - a for a, b in zip(bounds[:-1], bounds[1:]))
    version = "2.1" if "obj_ptr_tpos_proj.weight" in sd else "2.0"
    bkg = tuple(sd[TRUNK + "pos_embed"].shape[-2:])
    return embed_dim, stages, version, bkg


def config_signature(cfg: ModelConfig):
    t = cfg.trunk
    return t.embed_dim, tuple(t.stages), cfg.version, tuple(t.window_pos_embed_bkg_spatial_size)


def detect_config(sd: Dict[str, torch.Tensor], configs: Iterable[ModelConfig], path: Path) -> ModelConfig:
    if TRUNK + "patch_embed.proj.weight" not in sd or "sam_mask_decoder.iou_token.weight" not in sd:
        some = ", ".join(list(sd)[:3])
        raise CheckpointError(f"{path} is not a SAM 2 checkpoint (no image_encoder.trunk / sam_mask_decoder "
                              f"tensors; it has {len(sd)} tensors such as {some}).")
    sig = signature(sd)
    for cfg in configs:
        if config_signature(cfg) == sig:
            return cfg
    raise CheckpointError(f"{path} is an unknown SAM 2 variant (trunk width {sig[0]}, stages {list(sig[1])}, "
                          f"SAM {sig[2]}); add a model config to cfg/models/ for it.")


def load_into(model: SAM2Model, sd: Dict[str, torch.Tensor], path: Path) -> SAM2Model:
    """Strict load with a readable one-line summary of any mismatch."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [k for k in own if k in sd and own[k].shape != sd[k].shape]
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
        raise CheckpointError(f"{path} does not match {model.cfg.name}: " + "; ".join(parts) + ".")
    model.load_state_dict(sd, strict=True)  # copies and casts fp16 -> the model's dtype
    return model


def build_model(cfg: ModelConfig, path: Optional[Path] = None, configs: Iterable[ModelConfig] = ()) -> SAM2Model:
    """Build `cfg` (or the variant detected in `path` when cfg is None) and load `path` into it.
    A detected variant runs at the size the checkpoint was trained at, when it says."""
    sd, imgsz = read_checkpoint(path) if path is not None else (None, None)
    detected = cfg is None
    if detected:
        cfg = detect_config(sd, configs, path)
    model = SAM2Model(cfg)
    if sd is not None:
        load_into(model, sd, path)
    if detected and imgsz and imgsz != model.image_size:
        model.set_image_size(imgsz)
    return model.eval()
