"""Per-epoch validation of `sam2 train`, with `sam2 val`'s protocols and metrics (one
implementation: sam2cli/engine/val/image.py, engine/val/vos.py and engine/metrics.py) on data read
by `sam2 val`'s readers (sam2cli/io/datasets), so the two never disagree.

Images: mIoU from one click at each object's interior point (``miou_click``), from its tight box
(``miou_box``) and from both (``miou_box_click``), at the image's own resolution. Videos (clips of
the val split): each object prompted with its mask on the clip's first frame and tracked; J, F and
J&F are DAVIS' (first and last frame not scored), averaged over objects.
"""

from typing import Dict

import numpy as np
import torch

from sam2cli.engine.image_predictor import ImagePredictor
from sam2cli.engine.val.image import prompt_ious
from sam2cli.engine.val.vos import global_stats, score_clip


@torch.inference_mode()
def evaluate(model, dataset, video: bool, max_samples: int = 200, max_objects: int = 3) -> Dict[str, float]:
    was_training = model.training
    model.eval()
    try:
        return _video_scores(model, dataset, max_samples) if video else \
            _image_scores(model, dataset, max_samples, max_objects)
    finally:
        model.train(was_training)


def _image_scores(model, dataset, max_samples: int, max_objects: int) -> Dict[str, float]:
    predictor = ImagePredictor(model)
    scores: Dict[str, list] = {}
    for i in range(min(len(dataset), max_samples)):
        sample = dataset[i]
        masks = sample.masks[sample.masks.reshape(len(sample.masks), -1).any(1)][:max_objects]
        for name, ious in prompt_ious(predictor, sample.image, masks).items():
            scores.setdefault(f"miou_{name}", []).extend(ious)
    return {k: float(np.mean(v)) for k, v in scores.items() if v}


def _video_scores(model, dataset, max_samples: int) -> Dict[str, float]:
    objects = []
    for i in range(min(len(dataset), max_samples)):
        clip = dataset[i]
        objects += score_clip(model, clip.frames, clip.masks, clip.obj_ids, name=f"{clip.video}@{i}")
    if not objects:
        return {"J": 0.0, "F": 0.0, "JF": 0.0}
    g = global_stats(objects)
    return {"J": g["J-Mean"], "F": g["F-Mean"], "JF": g["J&F-Mean"]}
