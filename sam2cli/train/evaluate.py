"""Validation: mIoU from one click (the object's most interior point) and from its box on images;
J (region IoU), F (boundary) and J&F on videos, prompted by one click on the first frame."""

from typing import Dict

import numpy as np
import torch

from sam2cli.engine.tracker import ObjectTrack, Tracker
from .batches import clip_item, image_item
from .metrics import boundary_f, iou
from .prompts_sim import click_from_errors, noisy_box_points


@torch.inference_mode()
def evaluate(model, dataset, video: bool, max_samples: int = 200, max_objects: int = 3) -> Dict[str, float]:
    was_training = model.training
    model.eval()
    dev, size = model.no_obj_ptr.device, model.image_size
    scores: Dict[str, list] = {}
    for i in range(min(len(dataset), max_samples)):
        gen = torch.Generator().manual_seed(i)
        if video:
            frames, masks = clip_item(dataset[i], size, gen, aug=False)
            for k in range(masks.shape[1]):
                j, f = track_one(model, frames.to(dev), masks[:, k].to(dev))
                scores.setdefault("J", []).append(j)
                scores.setdefault("F", []).append(f)
            continue
        image, masks = image_item(dataset[i], size, gen, max_objects, aug=False)
        if not len(masks):
            continue
        feats = model.encode_image(image[None].to(dev))
        top = feats.top + model.no_mem_embed.reshape(1, -1, 1, 1)
        gt = masks[:, None].to(dev)
        click = click_from_errors(gt.cpu(), None, method="center", p_from_gt=0.0)
        box = noisy_box_points(gt.cpu(), noise=0.0)
        for name, (pts, lab) in (("miou_click", click), ("miou_box", box)):
            out = model.decode(top, feats.high_res, pts.to(dev), lab.to(dev), None, multimask=False)
            pred = torch.nn.functional.interpolate(out.masks.float(), size=(size, size), mode="bilinear",
                                                   align_corners=False)[:, 0] > 0
            scores.setdefault(name, []).extend(iou(p, g) for p, g in zip(pred.cpu().numpy(), masks.numpy()))
    model.train(was_training)
    out = {k: float(np.mean(v)) for k, v in scores.items()}
    if video:
        out["JF"] = (out.get("J", 0.0) + out.get("F", 0.0)) / 2
    return out


def track_one(model, frames: torch.Tensor, gt: torch.Tensor):
    """Click on frame 0, track through the clip as at inference -> mean J, mean F."""
    size = model.image_size
    tracker, obj = Tracker(model), ObjectTrack(1)
    feats0 = model.encode_image(frames[:1])
    pts, lab = click_from_errors(gt[:1, None].cpu(), None, method="center", p_from_gt=0.0)
    out = tracker.run(feats0, obj, 0, True, (pts.to(frames.device), lab.to(frames.device)), encode_memory=False)
    obj.pending[0] = (out, True)
    tracker.encode_pending(obj, 0, feats0)
    js, fs = [], []
    for t in range(frames.shape[0]):
        if t > 0:
            obj.recent[t] = tracker.run(model.encode_image(frames[t:t + 1]), obj, t, False, num_frames=len(frames))
        logits = obj.output(t).logits
        pred = (torch.nn.functional.interpolate(logits.float(), size=(size, size), mode="bilinear",
                                                align_corners=False)[0, 0] > 0).cpu().numpy()
        g = gt[t].cpu().numpy()
        js.append(iou(pred, g))
        fs.append(boundary_f(pred, g))
    return float(np.mean(js)), float(np.mean(fs))
