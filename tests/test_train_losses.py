"""SAM 2 training losses against the reference's MultiStepMultiMasksAndIous, and prompt simulation."""

import importlib
import sys
import types

import numpy as np
import pytest
import torch

from sam2cli.train.losses import SAM2Loss, StepPred, from_reference_outputs, to_reference_inputs
from sam2cli.train.prompts_sim import (click_from_errors, concat_points, initial_prompt,
                                       noisy_box_points)

# the SAM 2.1 training config (sam2.1_hiera_b+_MOSE_finetune.yaml)
REF_CFG = dict(weight_dict={"loss_mask": 20, "loss_dice": 1, "loss_iou": 1, "loss_class": 1},
               focal_alpha=0.25, focal_gamma=2, supervise_all_iou=True, iou_use_l1_loss=True,
               pred_obj_scores=True, focal_gamma_obj_score=0.0, focal_alpha_obj_score=-1.0)
TERMS = ["loss_mask", "loss_dice", "loss_iou", "loss_class", "core_loss"]


def _reference_loss_cls():
    pytest.importorskip("sam2", reason="the reference (pip install sam2==1.1.0) is the oracle")
    try:
        return importlib.import_module("training.loss_fns").MultiStepMultiMasksAndIous
    except ImportError:
        pass
    # training.trainer pulls in optional deps (tensordict, ...) only for CORE_LOSS_KEY: stub it
    # just for the import of training.loss_fns, then restore sys.modules.
    pytest.importorskip("training")
    stub = types.ModuleType("training.trainer")
    stub.CORE_LOSS_KEY = "core_loss"
    saved = sys.modules.get("training.trainer")
    sys.modules["training.trainer"] = stub
    try:
        sys.modules.pop("training.loss_fns", None)
        return importlib.import_module("training.loss_fns").MultiStepMultiMasksAndIous
    finally:
        if saved is None:
            sys.modules.pop("training.trainer", None)
        else:
            sys.modules["training.trainer"] = saved


def _random_case(seed, T=2, B=3, H=24, W=20, step_ms=(3, 1), empty=(1,), requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    targets = torch.rand(T, B, H, W, generator=g) > 0.6
    for b in empty:
        targets[:, b] = False  # an absent object on every frame
    targets[-1, 0] = False  # and one absent on the last frame only
    preds = []
    for _ in range(T):
        steps = []
        for M in step_ms:
            m = (3 * torch.randn(B, M, H, W, generator=g)).requires_grad_(requires_grad)
            i = torch.rand(B, M, generator=g).requires_grad_(requires_grad)
            o = (2 * torch.randn(B, 1, generator=g)).requires_grad_(requires_grad)
            steps.append(StepPred(m, i, o))
        preds.append(steps)
    return preds, targets


def _leaves(preds):
    return [t for steps in preds for s in steps for t in s]


@pytest.mark.parametrize("step_ms", [(3, 1), (3, 3), (1, 1)])
@pytest.mark.parametrize("seed", [0, 1])
def test_losses_match_reference(seed, step_ms):
    Ref = _reference_loss_cls()
    preds, targets = _random_case(seed, step_ms=step_ms)
    ours = SAM2Loss()(preds, targets)
    outs, tg = to_reference_inputs(preds, targets)
    ref = Ref(**{**REF_CFG, "weight_dict": dict(REF_CFG["weight_dict"])})(outs, tg)
    for k in TERMS:
        assert torch.allclose(torch.as_tensor(ours[k]).float(), torch.as_tensor(ref[k]).float(),
                              atol=1e-5, rtol=1e-5), (k, ours[k], ref[k])
    assert float(ours["loss_mask"]) > 0 and float(ours["loss_class"]) > 0


@pytest.mark.parametrize("opts", [dict(supervise_all_iou=False, iou_use_l1_loss=False),
                                  dict(pred_obj_scores=False)])
def test_loss_options_match_reference(opts):
    Ref = _reference_loss_cls()
    preds, targets = _random_case(5, T=1, step_ms=(3, 1))
    ours = SAM2Loss(**opts)(preds, targets)
    outs, tg = to_reference_inputs(preds, targets)
    ref = Ref(**{**REF_CFG, "weight_dict": dict(REF_CFG["weight_dict"]), **opts})(outs, tg)
    for k in TERMS:
        assert torch.allclose(torch.as_tensor(ours[k]).float(), torch.as_tensor(ref[k]).float(), atol=1e-5), k


def test_best_mask_is_chosen_by_weighted_focal_plus_dice():
    """Masks of different sharpness, so that the best by 20*focal+dice differs from the best by
    focal alone for some object and from the best by dice alone for another."""
    from sam2cli.train.losses import _dice_per_mask, _focal_per_mask
    Ref = _reference_loss_cls()
    g = torch.Generator().manual_seed(4)
    B, H, W = 4, 24, 20
    t = torch.rand(B, 1, H, W, generator=g) > 0.6
    sign = t.float() * 2 - 1
    scale = torch.tensor([0.3, 1.5, 4.0]).view(1, 3, 1, 1)
    noise = torch.tensor([0.2, 1.0, 2.0]).view(1, 3, 1, 1) * torch.linspace(1, 1.8, B).view(B, 1, 1, 1)
    m = sign * scale + noise * torch.randn(B, 3, H, W, generator=g)
    f = _focal_per_mask(m, t.float().expand_as(m), 0.25, 2)
    d = _dice_per_mask(m, t.float().expand_as(m))
    best = (20 * f + d).argmin(1)
    assert (best != f.argmin(1)).any() and (best != d.argmin(1)).any()
    preds = [[StepPred(m, torch.rand(B, 3, generator=g), torch.randn(B, 1, generator=g))]]
    ours = SAM2Loss()(preds, t[None, :, 0])
    outs, tg = to_reference_inputs(preds, t[None, :, 0])
    ref = Ref(**{**REF_CFG, "weight_dict": dict(REF_CFG["weight_dict"])})(outs, tg)
    for k in TERMS:
        assert torch.allclose(ours[k], torch.as_tensor(ref[k]).float(), atol=1e-5), k
    assert torch.allclose(ours["loss_mask"], f[torch.arange(B), best].sum() / B)


def test_targets_as_list_and_adapter_roundtrip():
    preds, targets = _random_case(2)
    a = SAM2Loss()(preds, targets)
    b = SAM2Loss()(preds, [t[:, None] for t in targets])  # list of (B, 1, H, W)
    outs, _ = to_reference_inputs(preds, targets)
    c = SAM2Loss()(from_reference_outputs(outs), targets[:, :, None])  # (T, B, 1, H, W)
    for k in TERMS:
        assert torch.equal(a[k], b[k]) and torch.equal(a[k], c[k])


def test_gradients_flow_and_are_finite():
    preds, targets = _random_case(3, requires_grad=True)
    out = SAM2Loss()(preds, targets)
    out["core_loss"].backward()
    leaves = _leaves(preds)
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in leaves)
    # object 1 is absent everywhere: no mask/IoU gradient for it, only the object score's
    m0 = preds[0][0].masks
    assert m0.grad[1].abs().sum() == 0 and m0.grad[0].abs().sum() > 0
    assert preds[0][0].ious.grad[1].abs().sum() == 0
    assert preds[0][0].obj_scores.grad[1].abs().sum() > 0
    # multimask step: only the best mask gets focal/dice gradient, every IoU gets IoU gradient
    assert (m0.grad[0].flatten(1).abs().sum(1) > 0).sum() == 1
    assert (preds[0][0].ious.grad[0] != 0).all()


def test_half_precision_inputs():
    preds, targets = _random_case(4)
    ref = SAM2Loss()(preds, targets)
    half = [[StepPred(*(t.bfloat16() for t in s)) for s in steps] for steps in preds]
    out = SAM2Loss()(half, targets)
    assert out["core_loss"].dtype == torch.float32
    assert abs(float(out["core_loss"]) - float(ref["core_loss"])) < 0.05 * float(ref["core_loss"])


def test_num_objects_all_reduced_under_ddp(tmp_path):
    import torch.distributed as dist
    if not dist.is_available():
        pytest.skip("torch.distributed unavailable")
    preds, targets = _random_case(6)
    single = SAM2Loss()(preds, targets)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        ddp = SAM2Loss()(preds, targets)
    finally:
        dist.destroy_process_group()
    for k in TERMS:
        assert torch.allclose(single[k], ddp[k])


# ---------------------------------------------------------------- prompt simulation


def _blobs(B, H, W, seed):
    """Random rectangles and discs."""
    rng = np.random.default_rng(seed)
    m = np.zeros((B, 1, H, W), bool)
    yy, xx = np.mgrid[:H, :W]
    for b in range(B):
        for _ in range(2):
            cx, cy = rng.integers(4, W - 4), rng.integers(4, H - 4)
            r = rng.integers(3, min(H, W) // 3)
            if rng.random() < 0.5:
                m[b, 0] |= (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
            else:
                m[b, 0, max(cy - r, 0):cy + r, max(cx - r, 0):cx + r] = True
    return torch.from_numpy(m)


def test_uniform_clicks_lie_in_the_error_region_of_their_sign():
    gt, pred = _blobs(4, 32, 40, 0), _blobs(4, 32, 40, 1)
    fn, fp = gt & ~pred, ~gt & pred
    g = torch.Generator().manual_seed(0)
    pos = 0
    n = 300
    for _ in range(n):
        pts, lab = click_from_errors(gt, pred, g, method="uniform", p_from_gt=0.0)
        assert pts.shape == (4, 1, 2) and pts.dtype == torch.float32
        assert lab.shape == (4, 1) and lab.dtype == torch.int32
        for b in range(4):
            x, y = int(pts[b, 0, 0]), int(pts[b, 0, 1])
            assert (fn if lab[b, 0] == 1 else fp)[b, 0, y, x]
        pos += int(lab[0, 0])
    # uniform over error pixels: P(positive) = |FN| / (|FN| + |FP|)
    p = fn[0].sum().item() / (fn[0].sum() + fp[0].sum()).item()
    assert abs(pos / n - p) < 4 * (p * (1 - p) / n) ** 0.5 + 0.02


def test_click_without_prediction_and_when_all_correct():
    gt = _blobs(3, 24, 24, 2)
    g = torch.Generator().manual_seed(1)
    pts, lab = click_from_errors(gt, None, g, p_from_gt=0.0)
    assert (lab == 1).all()
    assert all(gt[b, 0, int(pts[b, 0, 1]), int(pts[b, 0, 0])] for b in range(3))
    pts, lab = click_from_errors(gt, gt.clone(), g, p_from_gt=0.0)  # nothing to correct
    assert (lab == 0).all()
    assert all(not gt[b, 0, int(pts[b, 0, 1]), int(pts[b, 0, 0])] for b in range(3))
    # p_from_gt=1: the prediction is ignored, clicks are positive inside the object
    pts, lab = click_from_errors(gt, ~gt, g, p_from_gt=1.0)
    assert (lab == 1).all()


def test_center_click_is_farthest_from_the_error_boundary():
    gt = torch.zeros(2, 1, 40, 50, dtype=torch.bool)
    gt[0, 0, 5:16, 10:21] = True  # 11 x 11 square, centre (15, 10)
    gt[1, 0, 10:30, 10:40] = True
    pred = torch.zeros_like(gt)
    pred[1] = gt[1]
    pred[1, 0, 20:29, 0:9] = True  # only a false positive 9 x 9 square, centre (4, 24)
    pts, lab = click_from_errors(gt, pred, method="center", p_from_gt=0.0)
    assert lab.tolist() == [[1], [0]]
    assert pts[0, 0].tolist() == [15.0, 10.0]
    assert pts[1, 0].tolist() == [4.0, 24.0]


def test_center_click_matches_reference():
    pytest.importorskip("sam2")
    from sam2.modeling.sam2_utils import sample_one_point_from_error_center
    gt, pred = _blobs(6, 30, 36, 3), _blobs(6, 30, 36, 4)
    pred[5] = gt[5]  # nothing to correct
    ours = click_from_errors(gt, pred, method="center", p_from_gt=0.0)
    ref = sample_one_point_from_error_center(gt, pred)
    assert torch.equal(ours[0], ref[0]) and torch.equal(ours[1], ref[1])


def test_noisy_box_surrounds_the_mask_up_to_the_noise_bound():
    pytest.importorskip("sam2")
    from sam2.modeling.sam2_utils import sample_box_points
    H, W = 300, 400
    gt = torch.zeros(2, 1, H, W, dtype=torch.bool)
    gt[0, 0, 50:251, 20:371] = True  # 350 x 200 box: the 20 px bound applies
    gt[1, 0, 100:141, 200:261] = True  # 60 x 40 box: 10% applies (6, 4 px)
    tight = torch.tensor([[20, 50, 370, 250], [200, 100, 260, 140]], dtype=torch.float)
    dmax = torch.tensor([[20, 20, 20, 20], [6, 4, 6, 4]], dtype=torch.float)
    ref_pts, ref_lab = sample_box_points(gt, noise=0.0)
    pts0, lab = noisy_box_points(gt, noise=0.0)
    assert torch.equal(pts0, ref_pts.float()) and torch.equal(lab, ref_lab)
    assert torch.equal(pts0.view(2, 4), tight) and lab.tolist() == [[2, 3], [2, 3]]
    g = torch.Generator().manual_seed(0)
    devs = []
    for _ in range(200):
        pts, _ = noisy_box_points(gt, generator=g)
        d = pts.view(2, 4) - tight
        assert (d.abs() <= dmax + 1e-4).all()
        devs.append(d)
    devs = torch.stack(devs)
    assert (devs.abs().amax(0) > 0.8 * dmax).all()  # the jitter uses its range
    # near the border, the box is clamped to the image
    edge = torch.zeros(1, 1, 20, 20, dtype=torch.bool)
    edge[0, 0, 0:20, 0:20] = True
    for _ in range(20):
        p, _ = noisy_box_points(edge, generator=g)
        assert p.min() >= 0 and p.max() <= 19


def test_prompt_kind_mix_and_reproducibility():
    gt = _blobs(2, 16, 16, 5)
    g = torch.Generator().manual_seed(0)
    n = 2000
    kinds = [initial_prompt(gt, g)["kind"] for _ in range(n)]
    frac = {k: kinds.count(k) / n for k in ("mask", "box", "click")}
    assert abs(frac["mask"] - 0.5) < 0.04 and abs(frac["box"] - 0.25) < 0.04 and abs(frac["click"] - 0.25) < 0.04
    seen = set()
    g = torch.Generator().manual_seed(0)
    while len(seen) < 3:
        p = initial_prompt(gt, g)
        seen.add(p["kind"])
        if p["kind"] == "mask":
            assert p["mask"] is gt or torch.equal(p["mask"], gt)
        elif p["kind"] == "box":
            assert p["points"].shape == (2, 2, 2) and p["labels"].tolist() == [[2, 3], [2, 3]]
        else:
            assert p["points"].shape == (2, 1, 2) and (p["labels"] == 1).all()
    # images: always points or boxes
    assert all(initial_prompt(gt, g, p_point=1.0)["kind"] != "mask" for _ in range(50))
    # same seed, same prompts
    a = [initial_prompt(gt, torch.Generator().manual_seed(7)) for _ in range(1)][0]
    b = initial_prompt(gt, torch.Generator().manual_seed(7))
    assert a["kind"] == b["kind"]
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    pred = _blobs(2, 16, 16, 6)
    for _ in range(5):
        x1, x2 = click_from_errors(gt, pred, g1), click_from_errors(gt, pred, g2)
        assert torch.equal(x1[0], x2[0]) and torch.equal(x1[1], x2[1])


def test_concat_points():
    p, lab = noisy_box_points(_blobs(2, 16, 16, 7), noise=0.0)
    q, m = concat_points(p, lab, torch.ones(2, 1, 2), torch.ones(2, 1, dtype=torch.int32))
    assert q.shape == (2, 3, 2) and m[:, -1].tolist() == [1, 1] and m[:, 0].tolist() == [2, 2]
    assert concat_points(None, None, p, lab)[0] is p
