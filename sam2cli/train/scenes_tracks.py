"""Generated videos with classes and ground truth for `sam2 annotate` on videos: the proof kit.

* :func:`make_track_video` -- shapes of several classes (:data:`~sam2cli.train.scenes_draw.KINDS`,
  the class id is the index) that enter, leave, wander and cross each other (a fixed depth order,
  so crossings occlude); the truth is every object's visible mask on every frame.
* :func:`noisy_detections` -- what a detector would say, from the truth: jittered boxes, missed
  objects, false boxes, a confidence each.
* :func:`write_track_videos` -- frame folders (or mp4s), per-frame YOLO detection files
  ``det_labels/<video>/<frame>.txt`` (every frame: a run reads only its detection frames) and the
  truth (``truth/<video>.npz``).
* :func:`score_video` -- identity (per object, the share of its labelled frames that carry its
  majority track id), coverage (labelled / visible frames) and mask IoU.

``python -m sam2cli.train.scenes_tracks`` (:func:`main`) measures `sam2 annotate` on such videos
against the per-image annotate on the same frames and detections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np

from .scenes_draw import KINDS, _MIN_SIZE, _background, _fill, _finish, _new_object, _pick_colors, _raster

MIN_AREA = 40  # visible pixels an object needs to be detected (and scored)
MODES = ("cross", "enter", "leave", "stay")


@dataclass
class TrackScene:
    frames: list          # T x (H, W, 3) uint8 RGB
    masks: np.ndarray     # (T, N, H, W) bool visible parts (disjoint)
    classes: np.ndarray   # (N,) class ids (KINDS indices)


def _path(rng, mode: str, T: int, H: int, W: int, R: float, cross: Optional[tuple] = None) -> np.ndarray:
    """(T, 2) centres: a straight move from p0 to p1 over frames t0..t1, plus a slow wobble."""
    def inside() -> np.ndarray:
        return np.array([rng.uniform(R, W - R), rng.uniform(R, H - R)])

    def outside() -> np.ndarray:
        edge = int(rng.integers(4))
        t = rng.uniform(0.2, 0.8)
        p = [(t * W, -1.6 * R), (W + 1.6 * R, t * H), (t * W, H + 1.6 * R), (-1.6 * R, t * H)][edge]
        return np.array(p)

    if cross is not None:  # a pair meeting in the middle of the clip: left->right and right->left
        y, sign = cross
        p0, p1 = np.array([-1.6 * R if sign > 0 else W + 1.6 * R, y]), np.array([W + 1.6 * R if sign > 0 else -1.6 * R, y])
        t0, t1 = 0.0, float(T - 1)
    elif mode == "cross":
        p0 = outside()
        p1 = np.array([W, H]) - p0 + rng.normal(0, 0.1 * min(H, W), 2)
        t0 = rng.uniform(0, T / 3)
        t1 = t0 + rng.uniform(0.5, 0.8) * T
    elif mode == "enter":
        p1, p0 = inside(), outside()
        t0 = rng.uniform(0, T / 2)
        t1 = t0 + rng.uniform(0.2, 0.4) * T
    elif mode == "leave":
        p0 = inside()
        p1 = outside()
        t0 = rng.uniform(T / 4, T / 2)
        t1 = t0 + rng.uniform(0.2, 0.4) * T
    else:
        p0, p1 = inside(), inside()
        t0, t1 = 0.0, float(T - 1)
    s = np.clip((np.arange(T) - t0) / max(t1 - t0, 1.0), 0.0, 1.0)
    s = s * s * (3 - 2 * s)  # ease in and out
    wob = rng.uniform(0, 0.04 * min(H, W)) * np.sin(np.arange(T)[:, None] * rng.uniform(0.05, 0.2, 2) + rng.uniform(0, 6.3, 2))
    return p0[None] + (p1 - p0)[None] * s[:, None] + wob


def make_track_video(rng: np.random.Generator, size: tuple = (144, 192), n_frames: int = 40,
                     n_objects: int = 4) -> TrackScene:
    """A clip of ``n_objects`` shapes (>= 2: objects 0 and 1 cross each other mid-clip, the
    others enter, leave, cross the frame or stay, at random)."""
    H, W = (int(v) for v in size)
    T, n, side = int(n_frames), max(2, int(n_objects)), min(H, W)
    bg = _background(rng, H, W, side)
    ref = bg.reshape(-1, 3)[rng.integers(0, H * W, 800)]
    objs, R, paths = [], [], []
    y = rng.uniform(0.3, 0.7) * H
    for i in range(n):
        kind = int(rng.integers(len(KINDS)))
        r = max(rng.uniform(0.09, 0.16), _MIN_SIZE.get(KINDS[kind], 0.0)) * side
        o = _new_object(rng, kind, r * 1.35)
        _pick_colors(rng, o, ref, [c for p in objs for c in (p["c1"], p["c2"])], q=10.0)
        objs.append(o)
        R.append(r)
        cross = (y + (i - 0.5) * 0.25 * r, 1 if i == 0 else -1) if i < 2 else None
        paths.append(_path(rng, str(rng.choice(MODES)), T, H, W, r, cross))
    omega = rng.uniform(-0.04, 0.04, n)
    omega[[o["kind"] == "rectangle" for o in objs]] = 0.0
    blur, noise = (rng.uniform(0.3, 0.7) if rng.random() < 0.5 else 0.0), rng.uniform(0.5, 3.0)
    frames, masks = [], np.zeros((T, n, H, W), bool)
    for t in range(T):
        canvas = bg.copy()
        label = np.full((H, W), -1, np.int32)
        for i, o in enumerate(objs):
            got = _raster(o, paths[i][t, 0], paths[i][t, 1], R[i], o["angle"] + omega[i] * t, H, W)
            if got is None:
                continue
            (y0, y1, x0, x1), m, u, v = got
            if m.any():
                canvas[y0:y1, x0:x1][m] = _fill(o, u, v)[m]
                label[y0:y1, x0:x1][m] = i
        masks[t] = label[None] == np.arange(n)[:, None, None]
        frames.append(_finish(rng, canvas, blur, noise))
    return TrackScene(frames, masks, np.array([o["cls"] for o in objs], np.int64))


def box_of(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


def noisy_detections(scene: TrackScene, rng: np.random.Generator, jitter: float = 0.05, p_miss: float = 0.1,
                     p_false: float = 0.2) -> list:
    """Per frame ``(boxes (K, 4) xyxy, classes (K,), conf (K,))``: each object with >= MIN_AREA
    visible pixels, missed with ``p_miss``, its box sides moved by N(0, jitter x its size);
    with ``p_false`` one false box of a random class and size; true conf 0.6-0.95, false 0.3-0.6."""
    T, n, H, W = scene.masks.shape
    out = []
    for t in range(T):
        boxes, cls, conf = [], [], []
        for i in range(n):
            m = scene.masks[t, i]
            if m.sum() < MIN_AREA or rng.random() < p_miss:
                continue
            b = box_of(m)
            wh = np.tile(b[2:] - b[:2], 2)
            boxes.append(np.clip(b + rng.normal(0, jitter, 4) * wh, 0, [W, H, W, H]))
            cls.append(int(scene.classes[i]))
            conf.append(rng.uniform(0.6, 0.95))
        if rng.random() < p_false:
            s = rng.uniform(0.1, 0.3, 2) * min(H, W)
            x, y = rng.uniform(0, W - s[0]), rng.uniform(0, H - s[1])
            boxes.append(np.array([x, y, x + s[0], y + s[1]]))
            cls.append(int(rng.integers(len(KINDS))))
            conf.append(rng.uniform(0.3, 0.6))
        out.append((np.array(boxes, np.float64).reshape(-1, 4), np.array(cls, np.int64), np.array(conf)))
    return out


def write_track_videos(root: Union[str, Path], n_videos: int = 3, seed: int = 0, size: tuple = (144, 192),
                       n_frames: int = 40, n_objects: int = 4, mp4: bool = False, **noise) -> list[str]:
    """``root/videos/<name>/00000.jpg ...`` (``<name>.mp4`` with mp4=True), the detections of every
    frame in ``root/det_labels/<name>/<frame>.txt`` (YOLO ``class cx cy w h conf``, normalised;
    ``classes.txt`` names the KINDS) and ``root/truth/<name>.npz``; returns the names."""
    root = Path(root)
    names = []
    for k in range(n_videos):
        rng = np.random.default_rng([seed, k])
        scene = make_track_video(rng, size, n_frames, n_objects)
        dets = noisy_detections(scene, rng, **noise)
        name = f"clip{k}"
        names.append(name)
        if mp4:
            from sam2cli.io.video_writer import VideoWriter
            (root / "videos").mkdir(parents=True, exist_ok=True)
            with VideoWriter(root / "videos" / f"{name}.mp4", 25.0, size[1], size[0]) as vw:
                for f in scene.frames:
                    vw.write(f)
        else:
            (root / "videos" / name).mkdir(parents=True, exist_ok=True)
            for t, f in enumerate(scene.frames):
                cv2.imwrite(str(root / "videos" / name / f"{t:05d}.jpg"), f[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        (root / "det_labels" / name).mkdir(parents=True, exist_ok=True)
        H, W = size
        for t, (b, c, s) in enumerate(dets):
            rows = [f"{ci} {(x1 + x2) / 2 / W:.6f} {(y1 + y2) / 2 / H:.6f} {(x2 - x1) / W:.6f} {(y2 - y1) / H:.6f} {si:.4f}"
                    for (x1, y1, x2, y2), ci, si in zip(b, c, s)]
            (root / "det_labels" / name / f"{t:05d}.txt").write_text("".join(r + "\n" for r in rows))
        (root / "truth").mkdir(parents=True, exist_ok=True)
        np.savez_compressed(root / "truth" / f"{name}.npz", masks=np.packbits(scene.masks, axis=-1),
                            shape=np.array(scene.masks.shape), classes=scene.classes)
    (root / "det_labels" / "classes.txt").write_text("".join(k + "\n" for k in KINDS))
    return names


def load_truth(path: Union[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """(masks (T, N, H, W) bool, classes (N,)) written by :func:`write_track_videos`."""
    z = np.load(path)
    shape = tuple(int(v) for v in z["shape"])
    return np.unpackbits(z["masks"], axis=-1, count=shape[-1]).astype(bool).reshape(shape), z["classes"]


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 0.0


def assign(gt: dict, pred: dict, min_iou: float = 0.5) -> dict:
    """One frame: {gt id: (pred id, IoU)} paired one to one, highest IoU first, IoU >= min_iou."""
    pairs = sorted(((-_mask_iou(g, p), gi, pi) for gi, g in gt.items() for pi, p in pred.items()))
    out, used = {}, set()
    for neg, gi, pi in pairs:
        if -neg >= min_iou and gi not in out and pi not in used:
            out[gi] = (pi, -neg)
            used.add(pi)
    return out


def score_video(truth: np.ndarray, pred: dict, frames: Optional[list] = None) -> dict:
    """Scores of one video: ``truth`` (T, N, H, W); ``pred`` {frame: {track id: (H, W) mask}};
    over ``frames`` (default: those of ``pred``), objects with >= MIN_AREA visible pixels.
    Returns {"identity": [per object], "coverage": [per object], "ious": [per (frame, object)]}
    (an object without a paired mask on a frame counts IoU 0)."""
    frames = sorted(pred) if frames is None else frames
    labelled: dict = {}
    visible: dict = {}
    ious = []
    for t in frames:
        gt = {i: truth[t, i] for i in range(truth.shape[1]) if truth[t, i].sum() >= MIN_AREA}
        got = assign(gt, pred.get(t, {}))
        for i in gt:
            visible[i] = visible.get(i, 0) + 1
            if i in got:
                labelled.setdefault(i, []).append(got[i][0])
            ious.append(got[i][1] if i in got else 0.0)
    identity = [max(np.unique(v, return_counts=True)[1]) / len(v) for v in labelled.values()]
    coverage = [len(labelled.get(i, [])) / v for i, v in visible.items()]
    return {"identity": identity, "coverage": coverage, "ious": ious}


def summarize(scores: list) -> dict:
    """Means over videos' :func:`score_video` results (identity and coverage per object)."""
    cat = {k: [x for s in scores for x in s[k]] for k in ("identity", "coverage", "ious")}
    return {"identity": float(np.mean(cat["identity"])) if cat["identity"] else math.nan,
            "identity_min": float(np.min(cat["identity"])) if cat["identity"] else math.nan,
            "coverage": float(np.mean(cat["coverage"])) if cat["coverage"] else math.nan,
            "iou": float(np.mean(cat["ious"])) if cat["ious"] else math.nan, "objects": len(cat["identity"])}


# ----------------------------------------------------------------------------- the measurement

def vis_predictions(path: Union[str, Path]) -> dict:
    """{video name: {frame number: {track id: (H, W) mask}}} from a YouTube-VIS file of `sam2 annotate`."""
    import json
    from sam2cli.io.coco_rle import rle_to_mask
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    videos = {v["id"]: v for v in data["videos"]}
    out: dict = {}
    for v in videos.values():
        out[v["file_names"][0].rsplit("/", 1)[0] if v["file_names"] else str(v["id"])] = {}
    for a in data["annotations"]:
        v = videos[a["video_id"]]
        per = out[v["file_names"][0].rsplit("/", 1)[0]]
        for name, rle in zip(v["file_names"], a["segmentations"]):
            t = int(Path(name).stem)
            per.setdefault(t, {})
            if rle is not None:
                per[t][a["track_id"]] = rle_to_mask(rle)
    return out


def main(argv: Optional[list] = None) -> dict:
    """Generate videos, annotate them as videos and frame by frame as images (same detections),
    print and return identity, coverage, mask IoU and fps."""
    import argparse
    import io
    import json
    import time

    import torch
    from rich.console import Console

    from sam2cli.engine.annotate.detectors import LabelsDetector
    from sam2cli.engine.annotate.image import annotate_image
    from sam2cli.engine.annotate.job import run_annotate
    from sam2cli.engine.image_predictor import ImagePredictor
    from sam2cli.engine.loader import load_model
    from sam2cli.engine.options import AnnotateOptions, DetectorOptions, VideoAnnotateOptions
    from sam2cli.io.coco_rle import rle_to_mask
    from sam2cli.io.image import load_image

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--out", default="runs/scenes_tracks")
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--objects", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="weights/sam2_demo.pt")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    v0 = VideoAnnotateOptions()
    ap.add_argument("--det-stride", type=int, default=v0.det_stride)
    ap.add_argument("--new-iou", type=float, default=v0.new_iou)
    ap.add_argument("--reprompt-iou", type=float, default=v0.reprompt_iou)
    ap.add_argument("--max-lost", type=int, default=v0.max_lost)
    ap.add_argument("--sam-imgsz", type=int, default=None)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    root = Path(a.out)
    names = write_track_videos(root, a.videos, a.seed, n_frames=a.frames, n_objects=a.objects)
    video = VideoAnnotateOptions(det_stride=a.det_stride, new_iou=a.new_iou, reprompt_iou=a.reprompt_iou,
                                 max_lost=a.max_lost, save=False)
    opts = AnnotateOptions(data=str(root / "videos"), sam_model=a.model, device=a.device, save_json=True,
                           output_dir=str(root / "ds"), overwrite=True, sam_imgsz=a.sam_imgsz, video=video,
                           detector=DetectorOptions(det_model=None, det_labels=str(root / "det_labels")))
    t0 = time.perf_counter()
    rc = run_annotate(opts, Console(file=io.StringIO()))
    video_s = time.perf_counter() - t0
    preds = vis_predictions(root / "ds" / "annotations.json")
    det = LabelsDetector(root / "det_labels")
    net, _ = load_model(a.model, a.device, a.sam_imgsz)
    predictor = ImagePredictor(net, half=opts.half)
    stride = opts.video.det_stride
    per_video, per_image, video_all = [], [], []
    t0 = time.perf_counter()
    n_frames = 0
    for name in names:
        truth, _ = load_truth(root / "truth" / f"{name}.npz")
        img_pred = {}
        for t in range(len(truth)):
            rgb = load_image(root / "videos" / name / f"{t:05d}.jpg")
            _, recs, _ = annotate_image(det, predictor, rgb, Path(name) / f"{t:05d}.jpg", save_json=True)
            img_pred[t] = {k: rle_to_mask(r["segmentation"]) for k, r in enumerate(recs)}
            n_frames += 1
        det_frames = list(range(0, len(truth), stride))
        per_image.append(score_video(truth, img_pred, det_frames))
        per_video.append(score_video(truth, preds.get(name, {}), det_frames))
        video_all.append(score_video(truth, preds.get(name, {})))
    image_s = time.perf_counter() - t0
    total = sum(len(load_truth(root / "truth" / f"{n}.npz")[0]) for n in names)
    res = {"rc": rc, "video": summarize(video_all), "video_iou_det_frames": summarize(per_video)["iou"],
           "image_iou_det_frames": summarize(per_image)["iou"], "video_fps": total / video_s,
           "image_fps": n_frames / image_s, "frames": total, "det_stride": stride}
    print(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
