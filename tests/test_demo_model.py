"""The bundled demo model (weights/sam2_demo.pt, issue 8) segments real things: the README's sample
image, and generated scenes from a seed never used in training, through the same API users call.
The thresholds sit a little below what the shipped model measures (the figures print with -s):

    python -m pytest tests/test_demo_model.py -s
"""

from pathlib import Path

import numpy as np
import pytest

from sam2cli import SAM
from sam2cli.engine.everything import generate_masks
from sam2cli.engine.metrics import iou
from sam2cli.io.weights import bundled_weights_dir, resolve_weights
from sam2cli.train.scenes import item_rng, make_image, make_video

UNSEEN_SEED = 987_654  # training used seed 0
# the targets (measured on the shipped model at its 384 px: see the README's Training section)
SAMPLE_IOU = 0.95          # measured 0.978-0.983
CLICK_MIOU, BOX_MIOU = 0.85, 0.90  # measured 0.874, 0.903 (box: at the edge, see the README)
EVERYTHING_RECALL = 0.80   # measured 0.904
EVERYTHING_PARAMS = dict(pred_iou_thresh=0.5, stability_score_thresh=0.6)
TRACK_VIDEOS = 3           # unseen videos, each with a 4-frame full occlusion of the clicked object
TRACK_J, TRACK_J_AFTER = 0.80, 0.78  # mean measured 0.891 (0.93, 0.87, 0.87), after 0.866


def interior_point(mask: np.ndarray):
    import cv2
    d = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(np.argmax(d), d.shape)
    return [float(x), float(y)]


def tight_box(mask: np.ndarray):
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


@pytest.fixture(scope="module")
def model():
    path = resolve_weights("sam2_demo.pt", download=False)
    assert path.parent == bundled_weights_dir() or path.is_file()
    return SAM("sam2_demo.pt", device="cpu")


SAMPLE = Path(__file__).resolve().parents[1] / "scripts" / "samples" / "shapes.jpg"


def sample_truth():
    """The sample's three shapes, from their flat colours: red disc, blue square, yellow triangle."""
    import cv2
    bgr = cv2.imread(str(SAMPLE)).astype(int)
    b, g, r = bgr[..., 0], bgr[..., 1], bgr[..., 2]
    return {"disc": (r > 150) & (g < 100) & (b < 100), "square": (b > 150) & (r < 100),
            "triangle": (r > 150) & (g > 150) & (b < 120)}


def test_readme_sample_click_and_box(model):
    """The README's first command: one click on the disc gives the disc, and so on for each shape."""
    for name, truth in sample_truth().items():
        click = model(str(SAMPLE), points=[interior_point(truth)], labels=[1])[0].masks.data[0]
        box = model(str(SAMPLE), bboxes=tight_box(truth))[0].masks.data[0]
        print(f"demo on the README sample, {name}: click IoU {iou(click, truth):.3f}, box IoU {iou(box, truth):.3f}")
        assert iou(click, truth) >= SAMPLE_IOU and iou(box, truth) >= SAMPLE_IOU


def scene_images(n: int, seed: int = UNSEEN_SEED) -> list:
    """The first n 128-px scene images of a seed (also used by scripts/eval_demo.py)."""
    return [make_image(item_rng(seed, 0, i), 128) for i in range(n)]


@pytest.fixture(scope="module")
def scenes():
    return scene_images(30)


def click_and_box_ious(model, scenes):
    """Each object of each scene prompted by one interior click, then by its tight box -> (click
    IoUs, box IoUs). Also used by scripts/eval_demo.py."""
    clicks, boxes = [], []
    for image, masks, _ in scenes:
        pts = [interior_point(m) for m in masks]
        pred = model(image, points=pts, labels=[1] * len(pts))[0].masks.data
        clicks += [iou(p, g) for p, g in zip(pred, masks)]
        pred = model(image, bboxes=[tight_box(m) for m in masks])[0].masks.data
        boxes += [iou(p, g) for p, g in zip(pred, masks)]
    return clicks, boxes


def test_one_click_and_box(model, scenes):
    clicks, boxes = click_and_box_ious(model, scenes)
    print(f"demo: one-click mIoU {np.mean(clicks):.3f}, box mIoU {np.mean(boxes):.3f} over {len(clicks)} objects")
    assert np.mean(clicks) >= CLICK_MIOU and np.mean(boxes) >= BOX_MIOU


def test_segment_everything_finds_the_objects(model, scenes):
    found = total = 0
    for image, masks, _ in scenes[:12]:
        model.predictor.set_image(image)
        # the demo's small masks are soft: SAM's default thresholds (0.8, 0.95) keep 1.2 masks an image
        pred, _ = generate_masks(model.predictor, image, image_is_set=True, **EVERYTHING_PARAMS)
        for g in masks:
            total += 1
            found += any(iou(p, g) >= 0.75 for p in pred)
    print(f"demo: segment-everything recall {found / total:.3f} ({found}/{total}) at IoU 0.75")
    assert found / total >= EVERYTHING_RECALL


def track_one_click(video: int, tmp_path: Path, seed: int = UNSEEN_SEED, model: str = "sam2_demo.pt", imgsz=None):
    """Click object 0 on frame 0 of unseen video `video` (hidden behind a bar on frames 12-15),
    track 30 frames -> (J on visible frames, hidden frames predicted empty, J on frames 16-29).
    Also used by scripts/eval_demo.py, on other seeds and checkpoints."""
    import cv2
    from sam2cli.engine.video_predictor import SAM2VideoPredictor
    frames, masks, _ = make_video(item_rng(seed, 1, video), 128, n_frames=30, n_objects=(2, 3),
                                  occlude=(0, 12, 4))
    folder = tmp_path / str(video)
    folder.mkdir()
    for t, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{t}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    p = SAM2VideoPredictor(overrides=dict(model=model, device="cpu", imgsz=imgsz))
    state = p.init_state(str(folder))
    p.add_new_points_or_box(state, 0, 1, points=[interior_point(masks[0, 0])], labels=[1])
    pred = {f: (l[0, 0] > 0).numpy() for f, _, l in p.propagate_in_video(state)}
    visible = [t for t in range(30) if masks[t, 0].any()]
    j = np.mean([iou(pred[t], masks[t, 0]) for t in visible])
    after = np.mean([iou(pred[t], masks[t, 0]) for t in range(16, 30)])
    return j, [not pred[t].any() for t in range(12, 16)], after


def test_tracking_through_an_occlusion(tmp_path):
    runs = [track_one_click(v, tmp_path) for v in range(TRACK_VIDEOS)]
    for v, (j, hidden, after) in enumerate(runs):
        print(f"demo: video {v}: tracking J {j:.3f}; hidden frames predicted empty: {hidden}; "
              f"J after the occlusion {after:.3f}")
    assert np.mean([j for j, _, _ in runs]) >= TRACK_J
    assert all(all(h) for _, h, _ in runs), "the object must be reported absent while it is hidden"
    assert np.mean([a for _, _, a in runs]) >= TRACK_J_AFTER, "the object must be picked up again"
