"""What `sam2 benchmark` times: our engine (on a PyTorch model or an ONNX export) and Meta's
reference, behind the same five calls (embed, decode, everything, track, params/encode)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import List

import numpy as np
import torch

from sam2cli.errors import UsageError
from sam2cli.model.sam2 import SAM2Model
from .timing import sync_device

INSTALL = "SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2==1.1.0"


class Ours:
    """sam2cli on a backend from `load_model`: a SAM2Model, or an export folder on ONNX Runtime."""

    def __init__(self, model, half: bool, multimask: bool, name: str = "sam2cli"):
        from ..image_predictor import ImagePredictor
        self.model, self.half, self.multimask, self.name = model, half, multimask, name
        self.image = ImagePredictor(model, half=half)

    def params(self) -> int:
        return self.model.num_params

    def encode(self, x):
        """The image encoder, for counting FLOPs: an export's graphs are not torch ops, so its
        architecture is counted on a PyTorch model of the same config (the same operations)."""
        if self.model.kind == SAM2Model.kind:
            return self.model.encode_image(x)
        torch.manual_seed(0)
        return SAM2Model(self.model.cfg).to(x.device).eval().encode_image(x)

    def embed(self, image):
        self.image.set_image(image)

    def decode(self, point):
        return self.image.predict(point_coords=np.array([point], np.float32), point_labels=np.array([1]),
                                  multimask_output=self.multimask)

    def everything(self, image, **params):
        from ..everything import generate
        return generate(self.image, image, **params)

    def track(self, clip: Path, points: List[List[float]]) -> List[float]:
        from ..video_predictor import SAM2VideoPredictor
        predictor = SAM2VideoPredictor(overrides=dict(half=self.half), model=self.model)
        state = predictor.init_state(str(clip))
        for k, p in enumerate(points):
            predictor.add_new_points_or_box(state, frame_idx=0, obj_id=k + 1, points=[p], labels=[1])
        return _frame_times(predictor.propagate_in_video(state), predictor.device)


class Reference:
    """Meta's `sam2` package, built from a checkpoint file at the same input size."""
    name = "reference"

    def __init__(self, cfg_name: str, ckpt: Path, imgsz: int, device: torch.device, half: bool, multimask: bool):
        from sam2.build_sam import build_sam2, build_sam2_video_predictor
        from sam2.sam2_image_predictor import SAM2ImagePredictor
        self.cfg, self.ckpt, self.device, self.half, self.multimask = _ref_config(cfg_name), ckpt, device, half, multimask
        self.extra = _size_overrides(imgsz)
        self.model = build_sam2(self.cfg, str(ckpt), device=str(device), hydra_overrides_extra=self.extra)
        self.feat_sizes = [(imgsz // 4,) * 2, (imgsz // 8,) * 2, (imgsz // 16,) * 2]
        self.image = self._sized(SAM2ImagePredictor(self.model))
        # built up front, so that the second model's weights are not counted as working memory
        self.video = build_sam2_video_predictor(self.cfg, str(ckpt), device=str(device), hydra_overrides_extra=self.extra)

    def _sized(self, predictor):
        predictor._bb_feat_sizes = list(self.feat_sizes)  # the reference predictor assumes 1024 input
        return predictor

    def _autocast(self):
        from ..device import autocast
        return autocast(self.device, self.half)

    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def encode(self, x):
        return self.model.forward_image(x)

    def embed(self, image):
        with self._autocast():
            self.image.set_image(image)

    def decode(self, point):
        with self._autocast():
            return self.image.predict(point_coords=np.array([point], np.float32), point_labels=np.array([1]),
                                      multimask_output=self.multimask)

    def everything(self, image, **params):
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
        with self._autocast():
            generator = SAM2AutomaticMaskGenerator(self.model, **params)
            self._sized(generator.predictor)
            return generator.generate(image)

    def track(self, clip: Path, points: List[List[float]]) -> List[float]:
        with self._autocast(), _fp32_memories(self.half):
            state = self.video.init_state(str(clip))
            for k, p in enumerate(points):
                self.video.add_new_points_or_box(state, frame_idx=0, obj_id=k + 1, points=[p], labels=[1])
            return _frame_times(self.video.propagate_in_video(state), self.device)


@contextlib.contextmanager
def _fp32_memories(active: bool):
    """Under bf16 autocast on CPU the reference trips over bf16 memory features in some paths:
    store them as fp32 (as scripts/bench_video.py does), for the duration of the run only."""
    if not active:
        yield
        return
    import sam2.sam2_video_predictor as vp
    original = vp.SAM2VideoPredictor._run_single_frame_inference

    def run(self, *args, **kw):
        out, masks = original(self, *args, **kw)
        if out.get("maskmem_features") is not None:
            out["maskmem_features"] = out["maskmem_features"].float()
        return out, masks
    vp.SAM2VideoPredictor._run_single_frame_inference = run
    try:
        yield
    finally:
        vp.SAM2VideoPredictor._run_single_frame_inference = original


def _frame_times(frames, device) -> List[float]:
    """Seconds between consecutive frames yielded by a propagation generator."""
    times, t = [], time.perf_counter()
    for _ in frames:
        sync_device(device)
        now = time.perf_counter()
        times.append(now - t)
        t = now
    return times


def _ref_config(name: str) -> str:
    family = "sam2.1" if name.startswith("sam2.1") else "sam2"
    if name not in {f"{f}_hiera_{s}" for f in ("sam2", "sam2.1") for s in ("t", "s", "b+", "l")}:
        raise UsageError(f"compare=reference: the reference has no config for model {name}; "
                         "compare one of the official variants (e.g. sam2.1_hiera_t)")
    return f"configs/{family}/{name}.yaml"


def _size_overrides(imgsz: int) -> List[str]:
    if imgsz == 1024:
        return []
    s = imgsz // 16
    return [f"++model.image_size={imgsz}",
            f"++model.memory_attention.layer.self_attention.feat_sizes=[{s},{s}]",
            f"++model.memory_attention.layer.cross_attention.feat_sizes=[{s},{s}]"]


def reference_available() -> bool:
    try:
        import sam2.build_sam  # noqa: F401
        import sam2.sam2_image_predictor  # noqa: F401
    except ImportError:
        return False
    return True

