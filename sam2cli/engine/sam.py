"""`SAM`: the Python API for images, with Ultralytics-style prompts.

    model = SAM("sam2.1_b.pt")
    results = model("img.jpg", bboxes=[100, 100, 200, 200])
    results = model("img.jpg", points=[[[400, 370], [900, 370]]], labels=[[1, 0]])
"""

import difflib
import hashlib
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

from sam2cli.errors import UsageError
from sam2cli.io.image import load_image
from .device import cpu_description, precision_name
from .everything import GENERATOR_PARAMS
from .image_predictor import ImagePredictor
from .loader import count_params, load_model, size_mb
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
            "file_mb": round(size_mb(self.ckpt_path), 1),
            "params_m": round(count_params(self.model) / 1e6, 2), "imgsz": self.model.image_size,
            "device": str(self.device), "half": self.half, "precision": precision_name(self.device, self.half),
        }
        if self.device.type == "cpu":
            info["cpu"] = cpu_description()
        if verbose:
            where = f"{info['device']} ({info['cpu']})" if "cpu" in info else info["device"]
            print(f"SAM {cfg.version} {cfg.name}: {info['params_m']}M parameters, {info['file_mb']} MB, "
                  f"imgsz {info['imgsz']}, {where}, {info['precision']}", file=sys.stderr)
        return info

    def __call__(self, source: Any, points=None, labels=None, bboxes=None, masks=None,
                 multimask_output: bool = False, half: Optional[bool] = None, imgsz: Optional[int] = None,
                 **everything_kwargs) -> List[Results]:
        """Segment one image (path, RGB ndarray or PIL image) or a list of them.

        With prompts: one mask per object (3 candidates each with multimask_output=True).
        Without prompts: segment everything (keyword arguments as SAM2AutomaticMaskGenerator).
        half / imgsz: this call only (as Ultralytics takes predict arguments); the model keeps its own.
        An unknown keyword, or a segment-everything one given with prompts, is a UsageError.
        """
        sources = source if isinstance(source, (list, tuple)) else [source]
        check_everything_kwargs(everything_kwargs, prompted=any(p is not None for p in (points, bboxes, masks)))
        with self._settings(half, imgsz):
            return [self._predict_one(s, points, labels, bboxes, masks, multimask_output, everything_kwargs)
                    for s in sources]

    predict = __call__

    @contextmanager
    def _settings(self, half: Optional[bool], imgsz: Optional[int]) -> Iterator[None]:
        """Run the block with another precision and/or input size, then restore the model's own."""
        if imgsz is not None and (isinstance(imgsz, bool) or not isinstance(imgsz, int) or imgsz <= 0 or imgsz % 16):
            raise UsageError(f"imgsz={imgsz!r} must be a positive multiple of 16, e.g. 1024")
        old_half, old_size = self.predictor.half, self.model.image_size
        if half is not None:
            self.predictor.half = bool(half)
        if imgsz is not None and imgsz != old_size:
            self.model.set_image_size(imgsz)
        try:
            yield
        finally:
            self.predictor.half = old_half
            if self.model.image_size != old_size:
                self.model.set_image_size(old_size)

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
        check_everything_kwargs(everything_kwargs, prompted=any(p is not None for p in (points, bboxes, masks)))
        key = (key or _image_key(None, image), self.predictor.half, self.model.image_size)  # the embedding's identity
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


CALL_KEYWORDS = ("source", "points", "labels", "bboxes", "masks", "multimask_output", "half", "imgsz")


def check_everything_kwargs(kwargs: Dict[str, Any], prompted: bool) -> None:
    """Keyword arguments beyond the named ones must be segment-everything parameters, and only
    without prompts; anything else is a UsageError naming the close matches, as the CLI does."""
    for key in kwargs:
        if key not in GENERATOR_PARAMS:
            close = difflib.get_close_matches(key, CALL_KEYWORDS + GENERATOR_PARAMS, n=3, cutoff=0.6)
            if close:
                names = [f"'{c}'" for c in close]
                hint = "did you mean " + (" or ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1
                                          else names[0]) + "?"
            else:
                hint = (f"SAM(...) takes {', '.join(CALL_KEYWORDS)} and the segment-everything parameters "
                        f"({', '.join(GENERATOR_PARAMS[:3])}, ...)")
            raise UsageError(f"unknown argument '{key}' for SAM(...); {hint}")
        if prompted:
            raise UsageError(f"{key} applies only without prompts (segment everything); drop it, or drop the "
                             "points/bboxes/masks")
