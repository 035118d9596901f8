"""Parity checks of scripts/gpu_check.py: sam2cli against Meta's reference on the same device, in
the same precision, on random-weight checkpoints in the official format (tests/reference.py
builds them, as the parity tests do).

Each check returns a dict of figures with `passed` (True/False, or None where a figure is only
reported); scripts/gpu_check.py records it, or the error, and goes on.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Dict, List

import cv2
import numpy as np
import torch

from sam2cli.engine.device import autocast, precision_name
from sam2cli.engine.image_predictor import ImagePredictor
from sam2cli.engine.loader import load_model

IMAGE_IOU, IMAGE_LOGITS, IMAGE_SCORES, IMAGE_IOU_HALF = 0.999, 1e-3, 2e-3, 0.98
EVERYTHING_IOU = 0.99
VIDEO_IOU = 0.995
OBJ_HEAD = "sam_mask_decoder.pred_obj_score_head."  # the object-score MLP, official key names
OBJ_LIFT = 20.0
QUICK_SIZE = 128  # --quick: 2.1 tiny at 128 px (8x8 tokens at the top of Hiera)


class Context:
    """What the checks share: device, sizes of this run, a scratch folder and the checkpoints
    built so far (each check asks for what it needs, so any one of them can run alone)."""

    def __init__(self, device: torch.device, quick: bool, tmp: Path, log=print):
        self.device, self.quick, self.tmp, self.log = device, quick, Path(tmp), log
        self.size = QUICK_SIZE if quick else 1024
        self._ckpts: Dict[tuple, Path] = {}
        self._models: Dict[tuple, object] = {}

    def ckpt(self, name: str, seed: int = 0, noise: float = 0.02, seen: bool = False) -> Path:
        """A random-weight official-format checkpoint; `seen` lifts the object-score head's last
        bias by OBJ_LIFT, so that the model sees the object (random heads often call every object
        absent, and then every tracked mask is the no-object logit: equal, and proving nothing)."""
        key = (name, seed, noise, seen)
        if key not in self._ckpts:
            path = self.tmp / f"{name}_s{seed}_n{noise}{'_seen' if seen else ''}.pt"
            if seen:
                sd = torch.load(self.ckpt(name, seed, noise), map_location="cpu", weights_only=True)
                last = max(k for k in sd["model"] if k.startswith(OBJ_HEAD) and k.endswith(".bias"))
                sd["model"][last] += OBJ_LIFT
                torch.save(sd, path)
                self._ckpts[key] = path
            else:
                self.log(f"building a random-weight {name} checkpoint (official format)")
                self._ckpts[key] = _random_checkpoint()(name, path, seed=seed, noise=noise)
        return self._ckpts[key]

    def nontrivial_ckpt(self, name: str, probe, noise: float = 0.02) -> Path:
        """The first of seeds 0-3, as built and then with the object seen, on which
        probe(context, our model) is True: random weights can make every mask empty (or full),
        and equal empty masks would prove nothing. Raises when none is."""
        key = ("nontrivial", name, probe.__name__, noise)
        if key not in self._ckpts:
            for seen in (False, True):
                for seed in range(4):
                    ck = self.ckpt(name, seed=seed, noise=noise, seen=seen)
                    with torch.inference_mode():
                        if probe(self, self.ours(ck)):
                            self._ckpts[key] = ck
                            return ck
                    self.log(f"{ck.name}: trivial masks in {probe.__name__}, trying the next checkpoint")
            raise AssertionError(f"no random {name} checkpoint gives a non-trivial mask in {probe.__name__}")
        return self._ckpts[key]

    def ours(self, ckpt: Path):
        """Our model from the checkpoint (the one loader, `sam2cli.engine.loader.load_model`)."""
        if ("ours", ckpt) not in self._models:
            self._models["ours", ckpt] = load_model(ckpt, self.device, self.size)[0]
        return self._models["ours", ckpt]

    def reference_model(self, name: str, ckpt: Path):
        """The reference SAM2Base from the same checkpoint (tests/reference.py's build_reference)."""
        if ("reference", ckpt) not in self._models:
            from reference import build_reference
            self._models["reference", ckpt] = build_reference(name, ckpt, image_size=self.size).to(self.device).eval()
        return self._models["reference", ckpt]

    def release(self) -> None:
        """Drop the cached models (before the timings, which build their own)."""
        self._models.clear()


def _random_checkpoint():
    """The tests' builder of random-weight official-format checkpoints: tests/checkpoints.py,
    or tests/reference.py where that one is older."""
    try:
        from checkpoints import random_checkpoint
        return random_checkpoint
    except ImportError:
        from reference import make_random_checkpoint
        return make_random_checkpoint


@contextlib.contextmanager
def strict_fp32(device: torch.device, half: bool):
    """fp32 parity means fp32: no TF32 in matmuls or convolutions (both sides), restored after."""
    if device.type != "cuda" or half:
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@contextlib.contextmanager
def reference_patched():
    """The reference's hole filling needs its CUDA extension (built out of the wheel): it gets
    our connected components, so both fill holes the same way. Its memories are stored in bf16:
    handed back as fp32 holding the bf16-rounded values, as tests/test_parity_video.py does."""
    import sam2.sam2_video_predictor as vp
    import sam2.utils.misc as misc
    from sam2cli.engine.postprocess import connected_components
    cls = vp.SAM2VideoPredictor
    saved = [(misc, "get_connected_components", misc.get_connected_components),
             (cls, "_run_single_frame_inference", cls._run_single_frame_inference),
             (cls, "_run_memory_encoder", cls._run_memory_encoder)]
    run_frame, run_mem = cls._run_single_frame_inference, cls._run_memory_encoder

    def frame(self, *a, **k):
        out, masks = run_frame(self, *a, **k)
        if out["maskmem_features"] is not None:
            out["maskmem_features"] = out["maskmem_features"].float()
        return out, masks

    def mem(self, *a, **k):
        feats, pos = run_mem(self, *a, **k)
        return feats.float(), pos

    misc.get_connected_components = connected_components
    cls._run_single_frame_inference, cls._run_memory_encoder = frame, mem
    try:
        yield
    finally:
        for owner, attr, value in saved:
            setattr(owner, attr, value)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def sample_image() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = (rng.random((480, 640, 3)) * 255).astype(np.uint8)
    img[100:300, 200:400] = [200, 30, 30]
    return img


def image_cases(size: int) -> Dict[str, dict]:
    s = size // 4  # the low-res mask side
    return {
        "click": dict(point_coords=np.array([[300, 200]]), point_labels=np.array([1])),
        "clicks +/-": dict(point_coords=np.array([[300, 200], [100, 50], [500, 400]]), point_labels=np.array([1, 0, 1])),
        "box": dict(box=np.array([180, 90, 420, 320])),
        "box + click": dict(box=np.array([180, 90, 420, 320]), point_coords=np.array([[300, 200]]),
                            point_labels=np.array([0])),
        "two objects": dict(point_coords=np.array([[[300, 200]], [[50, 60]]]), point_labels=np.array([[1], [1]])),
        "mask prompt": dict(mask_input=np.random.default_rng(1).normal(size=(1, s, s)).astype(np.float32) * 5),
    }


def _sized(predictor, size: int):
    """The reference predictors assume 1024 input in their feature sizes."""
    predictor._bb_feat_sizes = [(size // 4,) * 2, (size // 8,) * 2, (size // 16,) * 2]
    return predictor


def one_click(ctx: Context, model) -> bool:
    p = ImagePredictor(model)
    p.set_image(sample_image())
    m = p.predict(point_coords=np.array([[300, 200]]), point_labels=np.array([1]), multimask_output=False)[0]
    return 0.0 < float(m.mean()) < 1.0


def image_parity(ctx: Context, name: str, half: bool) -> dict:
    """set_image + predict over clicks, boxes, several objects and a mask prompt, single and
    multimask: worst logit difference and worst mask IoU against the reference predictor."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor
    dev, ckpt = ctx.device, ctx.nontrivial_ckpt(name, one_click)
    image = sample_image()
    with strict_fp32(dev, half):
        ours = ImagePredictor(ctx.ours(ckpt), half=half)
        ref = _sized(SAM2ImagePredictor(ctx.reference_model(name, ckpt)), ctx.size)
        ours.set_image(image)
        with torch.inference_mode(), autocast(dev, half):
            ref.set_image(image)
        worst_logits, worst_scores, worst_iou, ious, fg = 0.0, 0.0, 1.0, [], []
        for multimask in (False, True):
            for case, kw in image_cases(ctx.size).items():
                m1, s1, l1 = ours.predict(multimask_output=multimask, **kw)
                with torch.inference_mode(), autocast(dev, half):
                    m2, s2, l2 = ref.predict(multimask_output=multimask, **kw)
                if m1.shape != m2.shape:
                    raise AssertionError(f"{case}: mask shapes differ, {m1.shape} against {m2.shape}")
                worst_logits = max(worst_logits, float(np.abs(l1.astype(np.float32) - l2.astype(np.float32)).max()))
                worst_scores = max(worst_scores, float(np.abs(s1.astype(np.float32) - s2.astype(np.float32)).max()))
                pairs = zip(m1.reshape(-1, *m1.shape[-2:]), m2.reshape(-1, *m2.shape[-2:]))
                case_ious = [mask_iou(a, b) for a, b in pairs]
                ious += case_ious
                worst_iou = min(worst_iou, min(case_ious))
                if case != "mask prompt":
                    fg.append(float(m1.mean()))
    nontrivial = any(0.0 < f < 1.0 for f in fg)  # empty or full masks everywhere would prove nothing
    iou_min = IMAGE_IOU_HALF if half else IMAGE_IOU
    exact = half or (worst_logits <= IMAGE_LOGITS and worst_scores <= IMAGE_SCORES)
    passed = nontrivial and worst_iou >= iou_min and exact
    return {"model": name, "imgsz": ctx.size, "precision": precision_name(dev, half), "ckpt": ckpt.name,
            "masks": len(ious),
            "min_iou": worst_iou, "mean_iou": float(np.mean(ious)), "max_logit_diff": worst_logits,
            "max_score_diff": worst_scores, "nontrivial": nontrivial, "threshold_iou": iou_min,
            "threshold_logits": None if half else IMAGE_LOGITS, "threshold_scores": None if half else IMAGE_SCORES,
            "passed": passed,
            "summary": f"min IoU {worst_iou:.5f} (>= {iou_min}), max |dlogit| {worst_logits:.2e}"
                       + ("" if half else f" (<= {IMAGE_LOGITS:g})") + f", max |dscore| {worst_scores:.1e}"
                       + ("" if half else f" (<= {IMAGE_SCORES:g})") + f", {len(ious)} masks"}


def shapes_image() -> np.ndarray:
    """Three flat shapes, on which random weights give localized masks (tests/test_everything.py)."""
    img = np.zeros((240, 320, 3), np.uint8)
    img[40:90, 40:100] = 255
    img[150:220, 200:300] = [0, 255, 0]
    img[120:200, 30:110] = [40, 40, 200]
    return img


def _match(a: List[np.ndarray], b: List[np.ndarray]) -> List[float]:
    """IoUs of the pairs taken greedily by the highest remaining mask IoU."""
    if not a or not b:
        return []
    ma = np.stack(a).reshape(len(a), -1).astype(np.float32)
    mb = np.stack(b).reshape(len(b), -1).astype(np.float32)
    inter = ma @ mb.T
    iou = inter / np.maximum(ma.sum(1)[:, None] + mb.sum(1)[None] - inter, 1)
    out = []
    for _ in range(min(len(a), len(b))):
        i, j = np.unravel_index(np.argmax(iou), iou.shape)
        out.append(float(iou[i, j]))
        iou[i, :], iou[:, j] = -1, -1
    return out


def everything_cases(quick: bool) -> Dict[str, dict]:
    base = dict(points_per_side=8 if quick else 16, pred_iou_thresh=0.05, stability_score_thresh=0.9)
    return {"grid": base, "grid without nms": dict(base, box_nms_thresh=1.0)}


def some_masks(ctx: Context, model) -> bool:
    from sam2cli.engine.everything import generate
    return len(generate(ImagePredictor(model), shapes_image(), **everything_cases(ctx.quick)["grid without nms"])) > 0


def everything_parity(ctx: Context, half: bool) -> dict:
    """Segment-everything (2.1 tiny) against SAM2AutomaticMaskGenerator, with and without box
    NMS: the same number of masks, each matched at IoU >= 0.99 in fp32 (bf16: reported)."""
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
    from sam2cli.engine.everything import generate
    name, dev = "sam2.1_hiera_t", ctx.device
    ckpt = ctx.nontrivial_ckpt(name, some_masks, noise=0.1)  # stronger noise: localized masks on flat shapes
    image = shapes_image()
    counts, ious = {}, []
    with strict_fp32(dev, half), reference_patched():
        for case, params in everything_cases(ctx.quick).items():
            with torch.inference_mode(), autocast(dev, half):
                gen = SAM2AutomaticMaskGenerator(ctx.reference_model(name, ckpt), **params)
                _sized(gen.predictor, ctx.size)
                ref = gen.generate(image)
            got = generate(ImagePredictor(ctx.ours(ckpt), half=half), image, **params)
            counts[case] = (len(got), len(ref))
            ious += _match([r["segmentation"] for r in got], [r["segmentation"] for r in ref])
    min_iou = min(ious) if ious else 0.0
    same_count = all(a == b for a, b in counts.values())
    passed = None if half else bool(same_count and ious and min_iou >= EVERYTHING_IOU)
    shown = ", ".join(f"{case} {a} masks against {b}" for case, (a, b) in counts.items())
    return {"model": name, "imgsz": ctx.size, "precision": precision_name(dev, half), "ckpt": ckpt.name,
            "points_per_side": everything_cases(ctx.quick)["grid"]["points_per_side"],
            "masks": sum(a for a, _ in counts.values()), "ref_masks": sum(b for _, b in counts.values()),
            "counts": {k: list(v) for k, v in counts.items()}, "min_iou": min_iou,
            "mean_iou": float(np.mean(ious)) if ious else 0.0, "threshold_iou": None if half else EVERYTHING_IOU,
            "passed": passed,
            "summary": f"{shown}; matched min IoU {min_iou:.4f}" + ("" if half else f" (>= {EVERYTHING_IOU}, same counts)")}


def moving_frame(i: int, hw=(240, 320)) -> np.ndarray:
    """RGB: a red disc moving right, a blue square moving down, on a noisy background."""
    h, w = hw
    rng = np.random.default_rng(i)
    img = np.clip(rng.normal(90, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    cv2.circle(img, (w * 3 // 16 + w * 3 // 80 * i, h // 2), h * 7 // 48, (230, 0, 0), -1)
    x0, y0 = w * 5 // 8, h // 12 + h // 24 * i
    cv2.rectangle(img, (x0, y0), (x0 + w * 7 // 32, y0 + h * 7 // 24), (20, 40, 230), -1)
    return img


def write_frames(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.jpg"), cv2.cvtColor(moving_frame(i), cv2.COLOR_RGB2BGR))
    return folder


def video_script(p, state, n: int, first_only: bool = False) -> list:
    """Objects added mid-video, a refinement click, then both directions from the middle."""
    out = [p.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=[[60, 120], [250, 200]], labels=[1, 0])]
    if first_only:
        return [(f, list(ids), torch.as_tensor(l).float().cpu()) for f, ids, l in out]
    out.append(p.add_new_points_or_box(state, frame_idx=3, obj_id=2, points=[[235, 85]], labels=[1]))
    out += list(p.propagate_in_video(state))
    out.append(p.add_new_points_or_box(state, frame_idx=n // 2 + 1, obj_id=1, points=[[130, 100]], labels=[0],
                                       clear_old_points=False))
    out += list(p.propagate_in_video(state))
    out += list(p.propagate_in_video(state, start_frame_idx=n // 2, reverse=True))
    return [(f, list(ids), torch.as_tensor(l).float().cpu()) for f, ids, l in out]


def first_prompt(ctx: Context, model) -> bool:
    from sam2cli.engine.video_predictor import SAM2VideoPredictor
    p = SAM2VideoPredictor(model=model)
    state = p.init_state(str(write_frames(ctx.tmp / "probe", 1)))
    return 0.0 < float((video_script(p, state, 1, first_only=True)[0][2] > 0).float().mean()) < 1.0


def video_parity(ctx: Context, half: bool) -> dict:
    """Tracking (2.1 tiny) through SAM2VideoPredictor against the reference's, frame by frame and
    object by object: mean mask IoU >= 0.995 in fp32; in bf16 the figures are reported."""
    from sam2.build_sam import build_sam2_video_predictor
    from reference import REF_CONFIGS, small_size_overrides
    from sam2cli.engine.video_predictor import SAM2VideoPredictor
    name, dev = "sam2.1_hiera_t", ctx.device
    n = 6 if ctx.quick else 16
    ckpt = ctx.nontrivial_ckpt(name, first_prompt)
    frames = write_frames(ctx.tmp / f"video_{n}", n)
    extra = small_size_overrides(ctx.size) if ctx.size != 1024 else []
    with strict_fp32(dev, half), reference_patched():
        ours = SAM2VideoPredictor(overrides=dict(half=half), model=ctx.ours(ckpt))
        a = video_script(ours, ours.init_state(str(frames)), n)
        ref = build_sam2_video_predictor(REF_CONFIGS[name], str(ckpt), device=str(dev), hydra_overrides_extra=extra)
        with torch.inference_mode(), autocast(dev, half):
            b = video_script(ref, ref.init_state(str(frames)), n)
    if [(f, ids) for f, ids, _ in a] != [(f, ids) for f, ids, _ in b]:
        raise AssertionError("the frames or objects yielded differ from the reference's")
    ious = [mask_iou(x[k, 0] > 0, y[k, 0] > 0) for (_, _, x), (_, _, y) in zip(a, b) for k in range(x.shape[0])]
    fg = float(np.mean([float((x > 0).float().mean()) for _, _, x in a]))
    mean = float(np.mean(ious))
    passed = None if half else bool(0.0 < fg < 1.0 and mean >= VIDEO_IOU)
    return {"model": name, "imgsz": ctx.size, "precision": precision_name(dev, half), "frames": n, "ckpt": ckpt.name,
            "frame_objects": len(ious), "mean_iou": mean, "min_iou": float(min(ious)), "foreground": fg,
            "threshold_mean_iou": None if half else VIDEO_IOU, "passed": passed,
            "summary": f"mean IoU {mean:.5f}" + ("" if half else f" (>= {VIDEO_IOU})")
                       + f", min {min(ious):.4f}, {len(ious)} frame-objects"}
