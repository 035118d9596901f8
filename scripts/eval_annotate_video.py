"""`sam2 annotate` on videos against per-image annotate, on generated clips with ground truth
(issue 27): identity, mask IoU on the detection frames, and frames per second.

    python scripts/eval_annotate_video.py                       # 8 clips of 60 frames, det_stride=10
    python scripts/eval_annotate_video.py --videos 2 --frames 30 --seed 1 --out va.json

The clips (`train/scenes_tracks.write_track_videos`) have shapes of several classes that enter,
leave and cross, and noisy detections made from the truth (jittered boxes, 10% missed, some false
ones) on every frame. The video run reads them every `det_stride` frames. Per-image annotate runs
on the same detection frames with the same detections (`annotate_image`, the per-image path of
`sam2 annotate`), and, for the cost, on every frame with that frame's detections. Prints one JSON
object:

- identity: per ground-truth object, the share of its labelled frames that carry its majority
  track id (mean and min), on every frame;
- iou_video / iou_image: mean mask IoU with the truth on the detection frames, an object without
  a mask counting 0 (`scenes_tracks.score_video`); also the video's over every frame;
- fps_video (tracking every frame, detections every det_stride) and fps_image (every frame).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sam2cli.cli.app import main as cli  # noqa: E402
from sam2cli.engine.annotate.detectors import LabelsDetector  # noqa: E402
from sam2cli.engine.annotate.image import annotate_image  # noqa: E402
from sam2cli.engine.image_predictor import ImagePredictor  # noqa: E402
from sam2cli.engine.loader import load_model  # noqa: E402
from sam2cli.io.coco_rle import rle_to_mask  # noqa: E402
from sam2cli.io.image import load_image  # noqa: E402
from sam2cli.train.scenes_tracks import load_truth, score_video, summarize, vis_predictions, write_track_videos  # noqa: E402


def per_image(predictor, detector, root: Path, name: str, frames) -> tuple[dict, float]:
    """{frame: {k: mask}} of per-image annotate on `frames`, and its seconds."""
    out, t0 = {}, time.perf_counter()
    for t in frames:
        rel = Path(name) / f"{t:05d}.jpg"
        _, recs, _ = annotate_image(detector, predictor, load_image(root / "videos" / rel), rel, save_json=True)
        out[t] = {k: rle_to_mask(r["segmentation"]) for k, r in enumerate(recs)}
    return out, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "weights" / "sam2_demo.pt"))
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--objects", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--det-stride", type=int, default=10)
    ap.add_argument("--set", action="append", default=[], help="key=value: another sam2 annotate argument")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eval_annotate_video_") as tmp:
        root = Path(tmp) / "scenes"
        names = write_track_videos(root, n_videos=a.videos, seed=a.seed, size=(96, 128), n_frames=a.frames,
                                   n_objects=a.objects)
        t0 = time.perf_counter()
        rc = cli(["annotate", f"data={root / 'videos'}", f"det_labels={root / 'det_labels'}",
                  f"output_dir={Path(tmp) / 'ds'}", f"sam_model={a.model}", "save=False", "save_json=True",
                  f"det_stride={a.det_stride}", "device=cpu", *a.set])
        video_s = time.perf_counter() - t0
        if rc != 0:
            return rc
        preds = vis_predictions(Path(tmp) / "ds" / "annotations.json")
        predictor = ImagePredictor(load_model(a.model, "cpu")[0])
        detector = LabelsDetector(root / "det_labels")
        video, image, every, image_s = [], [], [], 0.0
        for name in names:
            truth, _ = load_truth(root / "truth" / f"{name}.npz")
            det_frames = sorted(set(range(0, a.frames, a.det_stride)) | {a.frames - 1})
            img, _ = per_image(predictor, detector, root, name, det_frames)
            _, seconds = per_image(predictor, detector, root, name, range(a.frames))
            image_s += seconds
            image.append(score_video(truth, img, det_frames))
            video.append(score_video(truth, preds[name], det_frames))
            every.append(score_video(truth, preds[name]))
    v, i, e = summarize(video), summarize(image), summarize(every)
    n = a.videos * a.frames
    res = {"videos": a.videos, "frames": a.frames, "det_stride": a.det_stride, "seed": a.seed, "sets": a.set,
           "identity": e["identity"], "identity_min": e["identity_min"], "objects": e["objects"],
           "iou_video": v["iou"], "iou_image": i["iou"], "iou_video_every_frame": e["iou"],
           "object_frames_scored": sum(len(s["ious"]) for s in video),
           "fps_video": n / video_s, "fps_image": n / image_s}
    print(json.dumps(res))
    if a.out:
        a.out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
