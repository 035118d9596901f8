"""Quality of a demo-model checkpoint on generated scenes: the protocol of tests/test_demo_model.py
(one click at an interior point, a tight box, a first-frame click tracked through a 4-frame full
occlusion) on as many images and videos as asked, from any seed.

    python scripts/eval_demo.py --model weights/sam2_demo.pt --seed 123 --images 100 --videos 10

Training used seed 0 and the tests use 987654; any other seed gives scenes never seen before.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_demo_model import click_and_box_ious, scene_images, track_one_click  # noqa: E402

from sam2cli import SAM  # noqa: E402


def image_scores(model: SAM, seed: int, n: int) -> tuple:
    clicks, boxes = click_and_box_ious(model, scene_images(n, seed))
    return float(np.mean(clicks)), float(np.mean(boxes)), len(clicks)


def video_scores(ckpt: str, imgsz, seed: int, n: int) -> list:
    """-> (J over visible frames, J after the occlusion, hidden frames predicted empty) per video."""
    rows = []
    for v in range(n):
        with tempfile.TemporaryDirectory() as tmp:
            j, hidden, after = track_one_click(v, Path(tmp), seed, ckpt, imgsz)
        rows.append((float(j), float(after), sum(hidden)))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="sam2_demo.pt")
    p.add_argument("--imgsz", type=int, default=None, help="input size (default: the model's own)")
    p.add_argument("--seed", type=int, default=987_654)
    p.add_argument("--images", type=int, default=30)
    p.add_argument("--videos", type=int, default=0)
    a = p.parse_args()
    if a.images:
        click, box, n = image_scores(SAM(a.model, device="cpu", imgsz=a.imgsz), a.seed, a.images)
        print(f"seed {a.seed}: one-click mIoU {click:.3f}, box mIoU {box:.3f} over {n} objects in {a.images} images")
    if a.videos:
        rows = video_scores(a.model, a.imgsz, a.seed, a.videos)
        for v, (j, after, hidden) in enumerate(rows):
            print(f"video {v}: J {j:.3f}, J after the occlusion {after:.3f}, hidden frames empty {hidden}/4")
        print(f"seed {a.seed}: mean J {np.mean([r[0] for r in rows]):.3f} over {len(rows)} videos, "
              f"after {np.mean([r[1] for r in rows]):.3f}, hidden frames empty {sum(r[2] for r in rows)}/{4 * len(rows)}")


if __name__ == "__main__":
    main()
