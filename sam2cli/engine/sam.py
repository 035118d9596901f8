"""`SAM`: the Python API for images, with Ultralytics-style prompts.

    model = SAM("sam2.1_b.pt")
    results = model("img.jpg", bboxes=[100, 100, 200, 200])
    results = model("img.jpg", points=[[[400, 370], [900, 370]]], labels=[[1, 0]])
"""

import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from sam2cli.io.image import load_image
from .device import cpu_capability, cpu_has_fast_bf16, precision_name
from .image_predictor import ImagePredictor
from .loader import count_params, load_model
from sam2cli.core.prompts import normalize_prompts
from sam2cli.core.results import Results


def _image_key(source: Any, image: np.ndarray) -> tuple:
    """Identity of an image for the embedding cache: path+mtime+size, or a hash of the pixels."""
    if isinstance(source, (str, Path)):
        st = os.stat(source)
        return ("path", str(Path(source).resolve()), st.st_mtime_ns, st.st_size)
    return ("pixels", image.shape, hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest())


class SAM:
    """A SAM 2 / 2.1 image segmenter.

    model: checkpoint path or name (Meta's `sam2.1_hiera_tiny.pt` or Ultralytics' `sam2.1_t.pt`).
    device: None for the best available (cuda, mps, cpu), or 'cpu', 'cuda:0', '0', 'mps'.
    half: bf16 autocast (fp16 on GPUs without bf16). imgsz: input side (default: the model's, 1024).
    """

    def __init__(self, model: str = "sam2.1_b.pt", device=None, half: bool = False, imgsz: Optional[int] = None):
        self.model, self.ckpt_path = load_model(model, device, imgsz)
        self.half = half
        self.predictor = ImagePredictor(self.model, half=half)
        self._cached_key: Optional[tuple] = None

    @property
    def device(self):
        return self.predictor.device

    def info(self, verbose: bool = True) -> Dict[str, Any]:
        """Model summary (printed to stderr when verbose) as a dict."""
        cfg = self.model.cfg
        info = {
            "model": cfg.name, "version": cfg.version, "file": str(self.ckpt_path),
            "file_mb": round(self.ckpt_path.stat().st_size / 1e6, 1),
            "params_m": round(count_params(self.model) / 1e6, 2), "imgsz": self.model.image_size,
            "device": str(self.device), "half": self.half, "precision": precision_name(self.device, self.half),
        }
        if self.device.type == "cpu":
            info["cpu"] = cpu_capability() + (", native bf16" if cpu_has_fast_bf16() else ", no native bf16")
        if verbose:
            where = f"{info['device']} ({info['cpu']})" if "cpu" in info else info["device"]
            print(f"SAM {cfg.version} {cfg.name}: {info['params_m']}M parameters, {info['file_mb']} MB, "
                  f"imgsz {info['imgsz']}, {where}, {info['precision']}", file=sys.stderr)
        return info

    def __call__(self, source: Any, points=None, labels=None, bboxes=None, masks=None,
                 multimask_output: bool = False, **everything_kwargs) -> List[Results]:
        """Segment one image (path, RGB ndarray or PIL image) or a list of them.

        With prompts: one mask per object (3 candidates each with multimask_output=True).
        Without prompts: segment everything (keyword arguments as SAM2AutomaticMaskGenerator).
        """
        sources = source if isinstance(source, (list, tuple)) else [source]
        return [self._predict_one(s, points, labels, bboxes, masks, multimask_output, everything_kwargs)
                for s in sources]

    predict = __call__

    def _predict_one(self, source, points, labels, bboxes, masks, multimask_output, everything_kwargs) -> Results:
        image = load_image(source)
        path = str(source) if isinstance(source, (str, Path)) else None
        return self.predict_image(image, _image_key(source, image), path, None, points, labels, bboxes, masks,
                                  multimask_output, **everything_kwargs)

    def predict_image(self, image: np.ndarray, key: Optional[tuple] = None, path: Optional[str] = None,
                      frame: Optional[int] = None, points=None, labels=None, bboxes=None, masks=None,
                      multimask_output: bool = False, **everything_kwargs) -> Results:
        """Segment an RGB uint8 array (the engine's entry point; `key` identifies it for the cache)."""
        t0 = time.perf_counter()
        key = key or _image_key(None, image)
        if key != self._cached_key:
            self.predictor.set_image(image)
            self._cached_key = key
        t1 = time.perf_counter()
        objects = normalize_prompts(points, labels, bboxes, masks, image_hw=image.shape[:2])
        if not objects:
            from .everything import generate_masks
            out_masks, scores = generate_masks(self.predictor, image, image_is_set=True, **everything_kwargs)
            ids = np.arange(1, len(scores) + 1)
        else:
            m, s = self.predictor.predict_objects(objects, multimask_output)   # (N, M, H, W), (N, M)
            out_masks, scores = m.reshape(-1, *m.shape[2:]), s.reshape(-1)
            ids = np.repeat(np.arange(1, len(objects) + 1), m.shape[1])
        t2 = time.perf_counter()
        speed = {"embed": (t1 - t0) * 1e3, "decode": (t2 - t1) * 1e3}
        return Results.from_masks(image, out_masks, scores, path=path, frame=frame, obj_ids=ids, speed=speed)
