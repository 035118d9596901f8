"""Parity of the image path with Meta's reference on random-weight official-format checkpoints.

CI runs SAM 2.1 tiny and SAM 2.0 base_plus at full size (1024); `-m slow` runs all 8 variants.
Targets (fp32, CPU): low-res logits within 1e-3, scores within 2e-3, mask IoU >= 0.999.
"""

import numpy as np
import pytest
import torch

from reference import REF_CONFIGS, build_reference, make_random_checkpoint
from sam2cli.engine.image_predictor import ImagePredictor
from sam2cli.engine.sam import SAM
from sam2cli.model.registry import registry
from sam2cli.model.checkpoint import build_model

CASES = {
    "one point": dict(point_coords=np.array([[300, 200]]), point_labels=np.array([1])),
    "points with negatives": dict(point_coords=np.array([[300, 200], [100, 50], [500, 400]]),
                                  point_labels=np.array([1, 0, 1])),
    "box": dict(box=np.array([180, 90, 420, 320])),
    "box and point": dict(box=np.array([180, 90, 420, 320]), point_coords=np.array([[300, 200]]),
                          point_labels=np.array([0])),
    "two objects": dict(point_coords=np.array([[[300, 200]], [[50, 60]]]), point_labels=np.array([[1], [1]])),
    "two boxes": dict(box=np.array([[180, 90, 420, 320], [10, 10, 100, 200]])),
    "mask prompt": dict(mask_input=np.random.default_rng(1).normal(size=(1, 256, 256)).astype(np.float32) * 5),
}


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def make_image():
    rng = np.random.default_rng(0)
    img = (rng.random((480, 640, 3)) * 255).astype(np.uint8)
    img[100:300, 200:400] = [200, 30, 30]
    return img


@pytest.fixture(scope="module")
def image():
    return make_image()


def run_parity(name, ckpt, image):
    """Compare features and every prompt case; returns the worst differences seen."""
    torch.manual_seed(0)
    ours = ImagePredictor(build_model(None, ckpt, registry().values()))
    ref_model = build_reference(name, ckpt)
    from sam2.sam2_image_predictor import SAM2ImagePredictor
    ref = SAM2ImagePredictor(ref_model)

    x = torch.randn(1, 3, 1024, 1024)
    with torch.inference_mode():
        f_ours = ours.model.encode_image(x)
        f_ref = ref_model.forward_image(x)
    for a, b in zip([f_ours.s0, f_ours.s1, f_ours.top], f_ref["backbone_fpn"]):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), (a - b).abs().max()
    assert torch.allclose(f_ours.top_pos, f_ref["vision_pos_enc"][-1], atol=1e-5)

    ours.set_image(image)
    ref.set_image(image)
    worst = {"logits": 0.0, "scores": 0.0, "iou": 1.0}
    for multimask in (False, True):
        for case, kw in CASES.items():
            m1, s1, l1 = ours.predict(multimask_output=multimask, **kw)
            m2, s2, l2 = ref.predict(multimask_output=multimask, **kw)
            assert m1.shape == m2.shape and s1.shape == s2.shape, case
            worst["logits"] = max(worst["logits"], float(np.abs(l1 - l2).max()))
            worst["scores"] = max(worst["scores"], float(np.abs(s1 - s2).max()))
            worst["iou"] = min(worst["iou"], min(mask_iou(a, b) for a, b in zip(m1.reshape(-1, *m1.shape[-2:]),
                                                                               m2.reshape(-1, *m2.shape[-2:]))))
            assert worst["logits"] <= 1e-3, (case, multimask, worst)
            assert worst["scores"] <= 2e-3, (case, multimask, worst)
            assert worst["iou"] >= 0.999, (case, multimask, worst)
            assert 0.0 < m1.mean() < 1.0 or case == "mask prompt", f"{case}: a trivial mask proves nothing"
    return worst


@pytest.mark.parametrize("name", ["sam2.1_hiera_t", "sam2_hiera_b+"])
def test_image_parity(name, image, tmp_path):
    ckpt = make_random_checkpoint(name, tmp_path / f"{name}.pt", seed=3)
    print(name, run_parity(name, ckpt, image))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REF_CONFIGS))
def test_image_parity_all_variants(name, image, tmp_path):
    ckpt = make_random_checkpoint(name, tmp_path / f"{name}.pt", seed=5)
    print(name, run_parity(name, ckpt, image))


def test_sam_api_matches_reference(image, tmp_path):
    """The user-facing API (nesting, fp16 file, renamed file) gives the reference's masks."""
    name = "sam2.1_hiera_t"
    ckpt = make_random_checkpoint(name, tmp_path / "renamed_weights.pt", seed=7)
    model = SAM(str(ckpt), device="cpu")
    from sam2.sam2_image_predictor import SAM2ImagePredictor
    ref = SAM2ImagePredictor(build_reference(name, ckpt))
    ref.set_image(image)

    # [[[x, y], [x, y]]] is one object with two points; labels follow the same nesting.
    res = model(image, points=[[[300, 200], [100, 50]]], labels=[[1, 0]])[0]
    m, s, _ = ref.predict(point_coords=np.array([[300, 200], [100, 50]]), point_labels=np.array([1, 0]),
                          multimask_output=False)
    assert res.masks.data.shape == (1, 480, 640) and res.masks.data.dtype == bool
    assert mask_iou(res.masks.data[0], m[0]) >= 0.999
    assert abs(float(res.boxes.conf[0]) - float(s[0])) <= 2e-3

    # [[x, y], [x, y]] is two objects with one point each; a box with a point for each.
    res = model(image, points=[[300, 200], [50, 60]], labels=[1, 1])[0]
    m, s, _ = ref.predict(point_coords=np.array([[[300, 200]], [[50, 60]]]), point_labels=np.array([[1], [1]]),
                          multimask_output=False)
    assert len(res) == 2
    for i in range(2):
        assert mask_iou(res.masks.data[i], m[i, 0]) >= 0.999

    # multimask_output=True gives 3 candidates with their scores
    res = model(image, bboxes=[180, 90, 420, 320], multimask_output=True)[0]
    m, s, _ = ref.predict(box=np.array([180, 90, 420, 320]), multimask_output=True)
    assert len(res) == 3
    np.testing.assert_allclose(res.boxes.conf, s, atol=2e-3)

    # the embedding is cached: re-prompting the same image does not re-encode it
    calls = []
    orig = model.predictor.model.encode_image
    model.predictor.model.encode_image = lambda x: calls.append(1) or orig(x)
    model(image, points=[300, 200])
    assert calls == []
    model(image[::-1].copy(), points=[300, 200])
    assert calls == [1]
