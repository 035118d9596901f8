"""Where `sam2 annotate` gets its boxes: a tiny detector interface and three sources.

A detector is any object with

    names: dict[int, str]                     # class id -> name (may grow while it runs)
    __call__(rgb, rel=None) -> (boxes, cls, conf)

``rgb`` is an (H, W, 3) uint8 RGB image, ``rel`` the image's path relative to the dataset
(only sources that need it, like existing labels, look at it). It returns boxes (N, 4)
float32 xyxy pixels, classes (N,) int64 and confidences (N,) float32; see :func:`as_detections`.
Adding a source means writing such a class and a branch in :func:`build_detector`;
the annotate engine itself does not change.

Sources, picked by :func:`build_detector` from the arguments:

* ``det_labels=DIR``: existing YOLO detection labels ``class cx cy w h`` (normalised),
  ``DIR/<image path relative to data>.txt``; a missing file means no boxes; names come from
  ``DIR/classes.txt`` (one per line) when present.
* torchvision detectors by name, COCO class ids: ``det_model=fasterrcnn_resnet50_fpn_v2``
  (weights from the torchvision cache, ``$TORCH_HOME/hub/checkpoints``), ``det_model=NAME:PATH``
  (a state dict file for that architecture), ``torchvision:NAME[:PATH]``, or a ``.pth/.pt`` file
  whose name starts with the model name (torchvision's own file names, e.g.
  ``fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth``). They keep their own input size.
* anything else (``yolo11x.pt``, ``yolo11n.yaml``, ...) goes to ``ultralytics``
  (the optional ``sam2cli[yolo]`` extra), run at ``imgsz``.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from sam2cli.errors import SAM2Error, UsageError
from ..options import DetectorOptions

DET_IMGSZ = 640  # the detector's input size unless imgsz= says

Detections = tuple[np.ndarray, np.ndarray, np.ndarray]
YOLO_HINT = 'pip install "sam2cli[yolo]"'


def as_detections(boxes: Any = None, cls: Any = None, conf: Any = None) -> Detections:
    """Normalise detector output to (N, 4) float32, (N,) int64, (N,) float32 numpy arrays."""
    b = np.asarray(boxes if boxes is not None else np.zeros((0, 4)), dtype=np.float32).reshape(-1, 4)
    n = len(b)
    c = np.zeros(n, np.int64) if cls is None else np.asarray(cls).reshape(n).astype(np.int64)
    s = np.ones(n, np.float32) if conf is None else np.asarray(conf, dtype=np.float32).reshape(n)
    return b, c, s


# ----------------------------------------------------------------------------- existing labels

class LabelsDetector:
    """Boxes read from YOLO detection label files (``class cx cy w h [conf]``, normalised)."""

    def __init__(self, labels_dir: Union[str, Path]):
        self.dir = Path(labels_dir).expanduser()
        if not self.dir.is_dir():
            raise UsageError(f"det_labels={labels_dir} is not a directory: give the folder of YOLO detection .txt labels")
        self.names: dict[int, str] = {}
        classes_txt = self.dir / "classes.txt"
        if classes_txt.is_file():
            lines = classes_txt.read_text(encoding="utf-8").splitlines()
            self.names = {i: s.strip() for i, s in enumerate(lines) if s.strip()}

    def label_path(self, rel: Union[str, Path]) -> Path:
        return self.dir / Path(rel).with_suffix(".txt")

    def __call__(self, rgb: np.ndarray, rel: Optional[Union[str, Path]] = None) -> Detections:
        if rel is None:
            raise ValueError("LabelsDetector needs the image's relative path (rel=)")
        path = self.label_path(rel)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return as_detections()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read label file {path} ({e}): fix or remove it")
        h, w = rgb.shape[:2]
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            parts = line.split()
            if parts:
                rows.append(_parse_label(parts, path, lineno))
        if not rows:
            return as_detections()
        a = np.array(rows, dtype=np.float64)
        cx, cy, bw, bh = a[:, 1] * w, a[:, 2] * h, a[:, 3] * w, a[:, 4] * h
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
        boxes = np.clip(boxes, 0, [w, h, w, h])
        for c in a[:, 0].astype(int):
            self.names.setdefault(int(c), str(int(c)))
        return as_detections(boxes, a[:, 0].astype(np.int64), a[:, 5])


def _parse_label(parts: Sequence[str], path: Path, lineno: int) -> list[float]:
    where = f"{path} line {lineno}"
    if len(parts) not in (5, 6):
        raise UsageError(f"{where} has {len(parts)} values: expected 'class cx cy w h' (YOLO detection label)")
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise UsageError(f"{where} is not numbers: expected 'class cx cy w h' (YOLO detection label)") from None
    if not all(math.isfinite(v) for v in vals) or vals[0] < 0 or not vals[0].is_integer():
        raise UsageError(f"{where}: the class must be a whole number >= 0 and the values finite")
    if not all(0.0 <= v <= 1.0 for v in vals[1:5]):
        raise UsageError(f"{where}: cx cy w h must be normalised to [0, 1]")
    return vals[:5] + [vals[5] if len(vals) == 6 else 1.0]


# ----------------------------------------------------------------------------- torchvision

def torchvision_models() -> list[str]:
    import torchvision
    return list(torchvision.models.list_models(module=torchvision.models.detection))


def parse_torchvision(det_model: str) -> Optional[tuple[str, Optional[str]]]:
    """(model name, weights path or None) when ``det_model`` names a torchvision detector, else None."""
    spec = str(det_model).strip()
    explicit = spec.startswith("torchvision:")
    if explicit:
        spec = spec[len("torchvision:"):]
    names = torchvision_models()
    name, sep, path = spec.partition(":")
    if name in names:
        return name, (path if sep else None)
    p = Path(spec)
    if p.suffix in (".pt", ".pth"):
        match = [n for n in names if p.name.startswith(n + "_") or p.name.startswith(n + "-") or p.stem == n]
        if match:
            return max(match, key=len), spec
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.8)
    if explicit or (close and not p.suffix):
        hint = f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(names)}"
        raise UsageError(f"det_model={det_model}: {name} is not a torchvision detection model{hint}")
    return None


class TorchvisionDetector:
    """A torchvision detection model (COCO class ids, its own input size).

    ``weights``: a state-dict path, ``"cache"`` (torchvision's file in the torch hub cache)
    or ``None`` for random initialisation (tests).
    """

    def __init__(self, name: str, weights: Optional[str] = "cache", conf: float = 0.25, iou: float = 0.45,
                 max_det: int = 300, device: Any = None):
        import torchvision
        from ..device import select_device

        wenum = torchvision.models.get_model_weights(name).DEFAULT
        cats = wenum.meta["categories"]
        self.names = {i: c for i, c in enumerate(cats) if c not in ("__background__", "N/A")}
        if name.startswith(("fasterrcnn", "maskrcnn", "keypointrcnn")):
            kw = dict(box_score_thresh=conf, box_nms_thresh=iou, box_detections_per_img=max_det)
        else:  # retinanet, fcos, ssd, ssdlite
            kw = dict(score_thresh=conf, nms_thresh=iou, detections_per_img=max_det)
        model = torchvision.models.get_model(name, weights=None, weights_backbone=None, num_classes=len(cats), **kw)
        if weights is not None:
            model.load_state_dict(_tv_state_dict(name, weights, wenum))
        self.device = select_device(device)
        self.model = model.to(self.device).eval()

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray, rel: Any = None) -> Detections:
        x = torch.from_numpy(np.require(rgb, requirements=["C", "W"])).to(self.device).permute(2, 0, 1).float() / 255.0
        out = self.model([x])[0]
        return as_detections(out["boxes"].float().cpu().numpy(), out["labels"].cpu().numpy(),
                             out["scores"].float().cpu().numpy())


def _tv_state_dict(name: str, weights: str, wenum: Any) -> dict:
    if weights == "cache":
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(wenum.url).name
        if not path.is_file():
            raise SAM2Error(f"the weights of {name} are not in the torchvision cache: download {wenum.url} "
                            f"to {path}, or give det_model={name}:PATH")
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise SAM2Error(f"det_model weights {path} not found: give the path of a {name} state dict (.pth)")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise SAM2Error(f"cannot read {path} as a {name} state dict ({type(e).__name__}: {e})") from None
    if isinstance(sd, dict) and isinstance(sd.get("model"), dict):
        sd = sd["model"]
    return sd


# ----------------------------------------------------------------------------- ultralytics YOLO

class YoloDetector:
    """An Ultralytics YOLO model (``yolo11x.pt`` and the like), through the optional package."""

    def __init__(self, det_model: str, conf: float = 0.25, iou: float = 0.45, imgsz: int = 640, max_det: int = 300,
                 classes: Optional[list[int]] = None, device: Any = None, half: bool = False):
        try:
            from ultralytics import YOLO
        except ImportError:
            raise UsageError(f"det_model={det_model} needs the ultralytics package: {YOLO_HINT}") from None
        try:
            self.model = YOLO(det_model)
        except Exception as e:
            raise SAM2Error(f"cannot load det_model={det_model} with ultralytics ({type(e).__name__}: {e})") from None
        self.names = {int(k): str(v) for k, v in dict(self.model.names).items()}
        self.kw = dict(conf=conf, iou=iou, imgsz=imgsz, max_det=max_det, classes=classes, half=half, verbose=False)
        if device not in (None, ""):
            self.kw["device"] = device

    def __call__(self, rgb: np.ndarray, rel: Any = None) -> Detections:
        r = self.model.predict(np.ascontiguousarray(rgb[..., ::-1]), **self.kw)[0]  # ultralytics wants BGR
        b = r.boxes
        return as_detections(b.xyxy.cpu().numpy(), b.cls.cpu().numpy(), b.conf.cpu().numpy())


# ----------------------------------------------------------------------------- factory

def build_detector(opts: DetectorOptions) -> Any:
    """The detector the options ask for: det_labels, a torchvision name, or an ultralytics model."""
    if opts.det_labels:
        return LabelsDetector(opts.det_labels)
    det_model = str(opts.det_model or "").strip()
    if not det_model:
        raise UsageError("det_model= is required (e.g. det_model=yolo11x.pt), or give det_labels=DIR")
    common = dict(conf=opts.conf, iou=opts.iou, max_det=opts.max_det, device=opts.device or None)
    tv = parse_torchvision(det_model)
    if tv is not None:
        name, path = tv
        return TorchvisionDetector(name, weights=path or "cache", **common)
    return YoloDetector(det_model, imgsz=opts.imgsz or DET_IMGSZ, classes=opts.classes, half=opts.half, **common)
