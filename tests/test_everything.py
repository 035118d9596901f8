"""Segment-everything: the pieces by hand, and parity with the reference SAM2AutomaticMaskGenerator.

Parity runs the tiny SAM 2.1 variant at image_size 256 on a random-weight checkpoint (the
reference predictor's hard-coded 1024 feature sizes are patched on its instance) and a
synthetic image of three flat shapes, on which random weights give localized masks.
"""

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from sam2cli.engine.everything import (MaskGenerator, crop_boxes, fill_holes_and_sprinkles, generate,
                                       generate_masks, inclusive_boxes, layer_point_grids, mask_runs, near_crop_edge,
                                       paste_mask, point_grid, remove_small_regions, stability_score,
                                       uncompressed_rle)

SIZE = 256


# ---------------------------------------------------------------------------- pieces
def test_point_grid():
    np.testing.assert_allclose(point_grid(2), [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]])
    assert [len(g) for g in layer_point_grids(4, 2, 2)] == [16, 4, 1]
    assert [len(g) for g in layer_point_grids(5, 1, 1)] == [25, 25]


def test_crop_boxes():
    boxes, layers = crop_boxes((100, 200), 1, 0.5)
    # overlap = int(0.5 * 100 * 2 / 2) = 50; crop w = ceil((50 + 200) / 2) = 125, h = ceil((50 + 100) / 2) = 75
    assert boxes == [[0, 0, 200, 100], [0, 0, 125, 75], [0, 25, 125, 100], [75, 0, 200, 75], [75, 25, 200, 100]]
    assert layers == [0, 1, 1, 1, 1]
    boxes, layers = crop_boxes((100, 200), 2, 512 / 1500)
    assert len(boxes) == 1 + 4 + 16 and layers.count(2) == 16
    assert all(0 <= x0 < x1 <= 200 and 0 <= y0 < y1 <= 100 for x0, y0, x1, y1 in boxes)


def test_stability_score():
    logits = torch.tensor([[[2.0, 0.5], [-0.5, -2.0]], [[-5.0, -5.0], [-5.0, -5.0]]])
    s = stability_score(logits, 0.0, 1.0)
    assert s[0].item() == pytest.approx(1 / 3)  # > 1: one pixel; > -1: three pixels
    assert torch.isnan(s[1])  # empty at both thresholds, never passes a threshold
    assert stability_score(logits[:1], 0.4, 0.2).item() == pytest.approx(1 / 2)  # > 0.6: 1, > 0.2: 2


def test_fill_holes_and_sprinkles():
    x = torch.full((1, 10, 10), -5.0)
    x[0, 1:7, 1:7] = 5.0
    x[0, 3, 3] = -1.0  # a one-pixel hole
    x[0, 9, 9] = 2.0  # a one-pixel sprinkle
    y = fill_holes_and_sprinkles(x, 0.0, 2)
    assert y[0, 3, 3] == 10.0 and y[0, 9, 9] == -10.0
    changed = torch.zeros(10, 10, dtype=torch.bool)
    changed[3, 3] = changed[9, 9] = True
    assert torch.equal(y[0][~changed], x[0][~changed])
    assert torch.equal(fill_holes_and_sprinkles(x, 0.0, 0), x)


def test_remove_small_regions():
    m = np.zeros((12, 12), bool)
    m[1:8, 1:8] = True
    m[4, 4] = False  # hole of 1
    m[10, 10] = True  # island of 1
    filled, changed = remove_small_regions(m, 2, "holes")
    assert changed and filled[4, 4] and filled[10, 10] and filled.sum() == m.sum() + 1
    cleaned, changed = remove_small_regions(m, 2, "islands")
    assert changed and not cleaned[10, 10] and cleaned.sum() == m.sum() - 1
    same, changed = remove_small_regions(m, 1, "islands")
    assert not changed and same is m
    tiny = np.zeros((6, 6), bool)
    tiny[0, 0] = True
    tiny[3:5, 3:5] = True  # both below 10: the largest is kept
    kept, _ = remove_small_regions(tiny, 10, "islands")
    assert kept.sum() == 4 and kept[3:5, 3:5].all()


def test_inclusive_boxes_and_crop_edge():
    m = np.zeros((2, 10, 10), bool)
    m[0, 2:5, 3:7] = True
    assert inclusive_boxes(m).tolist() == [[3, 2, 6, 4], [0, 0, 0, 0]]
    boxes = np.array([[10, 10, 95, 50], [10, 10, 50, 50], [0, 0, 199, 99]])
    # crop [0, 0, 100, 100] of a 100 x 200 image: x2 = 95 is near the crop's right edge only
    assert near_crop_edge(boxes, [0, 0, 100, 100], (100, 200)).tolist() == [True, False, False]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_uncompressed_rle_matches_pycocotools():
    m = np.zeros((5, 7), bool)
    m[0, 0] = True
    m[2:4, 3:6] = True
    rle = uncompressed_rle(m)
    assert rle["counts"][0] == 0 and sum(rle["counts"]) == 35
    coco = mask_utils.frPyObjects(rle, 5, 7)
    assert np.array_equal(mask_utils.decode(coco).astype(bool), m)


def test_runs_round_trip():
    rng = np.random.default_rng(0)
    masks = np.stack([rng.random((6, 9)) > 0.5, np.zeros((6, 9), bool), np.ones((6, 9), bool)])
    runs = mask_runs(masks)
    assert runs[1].tolist() == [54] and runs[2].tolist() == [0, 54]
    for m, r in zip(masks, runs):
        assert np.array_equal(paste_mask(r, [0, 0, 9, 6], (6, 9)), m)
    full = paste_mask(runs[0], [2, 1, 11, 7], (10, 12))  # a crop at x0=2, y0=1
    assert np.array_equal(full[1:7, 2:11], masks[0]) and full.sum() == masks[0].sum()


def test_parameter_checks():
    with pytest.raises(ValueError):
        MaskGenerator(None, points_per_side=None)
    with pytest.raises(ValueError):
        MaskGenerator(None, output_mode="png")
    with pytest.raises(ValueError):
        MaskGenerator(None, points_per_side=None, point_grids=[point_grid(2)], crop_n_layers=1)


# ---------------------------------------------------------------------------- parity
def shapes_image() -> np.ndarray:
    img = np.zeros((240, 320, 3), np.uint8)
    img[40:90, 40:100] = 255
    img[150:220, 200:300] = [0, 255, 0]
    img[120:200, 30:110] = [40, 40, 200]
    return img


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    reference = pytest.importorskip("reference")
    return reference.make_random_checkpoint("sam2.1_hiera_t", tmp_path_factory.mktemp("everything") / "t.pt",
                                            seed=0, noise=0.1)


@pytest.fixture(scope="module")
def ours(ckpt):
    from sam2cli.engine.image_predictor import ImagePredictor
    from sam2cli.model.registry import registry
    from sam2cli.model.checkpoint import build_model
    model = build_model(None, ckpt, registry().values())
    model.set_image_size(SIZE)
    return ImagePredictor(model)


@pytest.fixture(scope="module")
def ref_model(ckpt):
    reference = pytest.importorskip("reference")
    return reference.build_reference("sam2.1_hiera_t", ckpt, image_size=SIZE)


def cv2_connected_components(mask: torch.Tensor):
    """A CPU stand-in for the reference's CUDA kernel: 8-connected labels and per-pixel areas."""
    import cv2
    m = mask.to(torch.uint8).cpu().numpy()
    labels, areas = np.zeros(m.shape, np.int32), np.zeros(m.shape, np.int32)
    for i in range(m.shape[0]):
        _, lab, stats, _ = cv2.connectedComponentsWithStats(m[i, 0], connectivity=8)
        labels[i, 0], areas[i, 0] = lab, np.where(lab > 0, stats[lab, cv2.CC_STAT_AREA], 0)
    return torch.from_numpy(labels), torch.from_numpy(areas)


def run_reference(ref_model, image, monkeypatch, **params):
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
    import sam2.utils.misc
    monkeypatch.setattr(sam2.utils.misc, "get_connected_components", cv2_connected_components)
    gen = SAM2AutomaticMaskGenerator(ref_model, **params)
    s = SIZE // 4
    gen.predictor._bb_feat_sizes = [(s, s), (s // 2, s // 2), (s // 4, s // 4)]
    return gen.generate(image)


def as_mask(seg, hw):
    return mask_utils.decode(seg).astype(bool) if isinstance(seg, dict) else seg


def match_greedy(a, b, hw):
    """Pairs (i, j, iou) taken greedily by the highest remaining mask IoU."""
    ma = np.stack([as_mask(r["segmentation"], hw) for r in a]).reshape(len(a), -1).astype(np.float32)
    mb = np.stack([as_mask(r["segmentation"], hw) for r in b]).reshape(len(b), -1).astype(np.float32)
    inter = ma @ mb.T
    iou = inter / np.maximum(ma.sum(1)[:, None] + mb.sum(1)[None] - inter, 1)
    pairs = []
    for _ in range(min(len(a), len(b))):
        i, j = np.unravel_index(np.argmax(iou), iou.shape)
        pairs.append((i, j, float(iou[i, j])))
        iou[i, :], iou[:, j] = -1, -1
    return pairs


BASE = dict(pred_iou_thresh=0.05, stability_score_thresh=0.9)
CASES = {
    "grid without nms": (dict(points_per_side=8, box_nms_thresh=1.0, **BASE), 100),
    "grid": (dict(points_per_side=8, **BASE), 2),
    "crop layer": (dict(points_per_side=4, crop_n_layers=1, **BASE), 3),
    "m2m and min area": (dict(points_per_side=6, use_m2m=True, min_mask_region_area=100, box_nms_thresh=1.0,
                              **BASE), 20),
    "single mask, coco rle": (dict(points_per_side=6, multimask_output=False, points_per_batch=10,
                                   mask_threshold=1.0, pred_iou_thresh=0.0, stability_score_thresh=0.8,
                                   output_mode="coco_rle"), 1),
}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' decode under numpy 2
@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_reference(case, ours, ref_model, monkeypatch):
    params, min_count = CASES[case]
    image = shapes_image()
    with torch.inference_mode():
        ref = run_reference(ref_model, image, monkeypatch, **params)
    got = generate(ours, image, **params)
    assert len(got) == len(ref) >= min_count
    pairs = match_greedy(got, ref, image.shape[:2])
    assert min(p[2] for p in pairs) >= 0.99, sorted(p[2] for p in pairs)[:5]
    for i, j, _ in pairs:
        a, b = got[i], ref[j]
        assert a["crop_box"] == b["crop_box"]
        np.testing.assert_allclose(a["bbox"], b["bbox"], atol=2)
        np.testing.assert_allclose(a["point_coords"], b["point_coords"], atol=1e-4)
        assert a["predicted_iou"] == pytest.approx(b["predicted_iou"], abs=2e-3)
        assert a["stability_score"] == pytest.approx(b["stability_score"], abs=1e-2)
        assert abs(a["area"] - b["area"]) <= 0.01 * max(b["area"], 1)
    same_order = sum(i == j for i, j, _ in pairs)
    assert same_order >= len(pairs) - 2  # the reference's order, up to near-ties in score
    if params.get("output_mode") == "coco_rle":
        assert all(isinstance(r["segmentation"]["counts"], str) for r in got)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_output_modes_agree(ours):
    image = shapes_image()
    params = dict(points_per_side=4, **BASE)
    gen = MaskGenerator(ours, **params)
    binary = gen.generate(image)
    gen.output_mode = "uncompressed_rle"
    raw = gen.generate(image)
    assert binary and len(binary) == len(raw)
    for b, r in zip(binary, raw):
        coco = mask_utils.frPyObjects(r["segmentation"], *r["segmentation"]["size"])
        assert np.array_equal(mask_utils.decode(coco).astype(bool), b["segmentation"])
        assert b["area"] == int(b["segmentation"].sum())
        x, y, w, h = b["bbox"]
        ys, xs = np.nonzero(b["segmentation"])
        assert [x, y, x + w, y + h] == [xs.min(), ys.min(), xs.max(), ys.max()]


def test_sam1_region_cleanup(ours):
    image = shapes_image()
    params = dict(points_per_side=4, box_nms_thresh=1.0, min_mask_region_area=400, **BASE)
    plain = MaskGenerator(ours, **params).generate(image)
    cleaned = MaskGenerator(ours, postprocess_small_regions=True, **params).generate(image)
    assert 0 < len(cleaned) <= len(plain)
    for r in cleaned:
        m = r["segmentation"]
        for mode in ("holes", "islands"):
            assert not remove_small_regions(m, 400, mode)[1] or mode == "islands" and m.sum() < 400


def test_predictor_left_on_whole_image_and_reuse(ours):
    image = shapes_image()
    params = dict(points_per_side=4, crop_n_layers=1, **BASE)
    first = generate(ours, image, **params)
    assert ours.orig_hw == image.shape[:2]  # the whole-image crop ran last
    again = generate(ours, image, image_is_set=True, **params)
    assert len(first) == len(again) > 0
    for a, b in zip(first, again):
        assert np.array_equal(a["segmentation"], b["segmentation"]) and a["bbox"] == b["bbox"]
    masks, scores = generate_masks(ours, image, image_is_set=True, **params)
    assert masks.shape == (len(first), *image.shape[:2]) and masks.dtype == bool
    np.testing.assert_allclose(scores, [r["predicted_iou"] for r in first])
    empty, none = generate_masks(ours, image, image_is_set=True, points_per_side=2, pred_iou_thresh=0.99)
    assert empty.shape == (0, *image.shape[:2]) and none.shape == (0,)
