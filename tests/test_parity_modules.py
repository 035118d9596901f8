"""Module-level parity of the video-path pieces with the reference, at image_size 256 for speed:
SAM heads (points, masks, multimask, absent objects), mask-as-output, memory encoder, memory
attention with object pointers (2.0 and 2.1 temporal encodings)."""

import pytest
import torch

from reference import build_reference, make_random_checkpoint
from sam2cli.model.registry import registry
from sam2cli.model.checkpoint import build_model
from sam2cli.engine.heads import mask_as_output, sam_heads
from sam2cli.model.sam2 import Memory
from sam2cli.engine.tracker import FrameOut, ObjectTrack, Tracker

SIZE = 256  # backbone 64/32/16 maps
NAMES = ["sam2.1_hiera_t", "sam2_hiera_t"]


@pytest.fixture(scope="module", params=NAMES)
def pair(request, tmp_path_factory):
    name = request.param
    ckpt = make_random_checkpoint(name, tmp_path_factory.mktemp("ck") / f"{name}.pt", seed=11)
    ours = build_model(registry()[name].with_image_size(SIZE), ckpt)
    ref = build_reference(name, ckpt, image_size=SIZE)
    ref.binarize_mask_from_pts_for_mem_enc = True  # as build_sam2_video_predictor sets it
    return ours, ref


def features(ours, ref, seed=0):
    """The same random image through both backbones -> our ImageFeatures and the reference's
    flattened (HW, B, C) lists."""
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        f = ours.encode_image(x)
        _, vision_feats, vision_pos, sizes = ref._prepare_backbone_features(ref.forward_image(x))
    return f, vision_feats, vision_pos, sizes


def close(a, b, tol=1e-4):
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.allclose(a.float(), b.float(), atol=tol, rtol=tol), float((a - b).abs().max())


@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("prompt", ["points", "none", "mask", "points+mask"])
def test_sam_heads(pair, multimask, prompt):
    ours, ref = pair
    f, *_ = features(ours, ref)
    g = torch.Generator().manual_seed(1)
    coords = labels = mask = None
    if "points" in prompt:
        coords = torch.rand(2, 3, 2, generator=g) * SIZE
        labels = torch.tensor([[1, 0, 1], [2, 3, 1]], dtype=torch.int32)
    if "mask" in prompt:
        mask = torch.randn(2, 1, SIZE, SIZE, generator=g) * 4  # resized to 64x64 inside
    with torch.inference_mode():
        a = sam_heads(ours, f.top, f.high_res, coords, labels, mask, multimask)
        pts = None if coords is None else {"point_coords": coords, "point_labels": labels}
        b = ref._forward_sam_heads(f.top, pts, mask, f.high_res, multimask)
    close(a.multi_logits, b[0]); close(a.ious, b[2]); close(a.logits, b[3])
    close(a.high_res(SIZE), b[4]); close(a.obj_ptr, b[5]); close(a.obj_score, b[6])


def test_absent_object_gives_no_object_pointer(pair):
    """Force the object-score head negative: masks become -1024 and the pointer no_obj_ptr."""
    ours, ref = pair
    f, *_ = features(ours, ref)
    head = ours.sam_mask_decoder.pred_obj_score_head.layers[-1]
    ref_head = ref.sam_mask_decoder.pred_obj_score_head.layers[-1]
    with torch.no_grad():
        old = head.bias.clone()
        head.bias.fill_(-1e4); ref_head.bias.fill_(-1e4)
    try:
        with torch.inference_mode():
            a = sam_heads(ours, f.top, f.high_res, multimask=True)
            b = ref._forward_sam_heads(f.top, None, None, f.high_res, True)
        assert (a.logits == -1024).all() and (a.obj_score < 0).all()
        close(a.obj_ptr, ours.no_obj_ptr.expand(2, -1)); close(a.obj_ptr, b[5])
        with torch.inference_mode():
            mem = ours.encode_memory(f.top, a.high_res(SIZE), a.obj_score, from_points=False)
            feats = [f.top.flatten(2).permute(2, 0, 1)]
            rf, _ = ref._encode_new_memory(feats, [(SIZE // 16, SIZE // 16)], a.high_res(SIZE), a.obj_score, False)
        close(mem.features, rf)
    finally:
        with torch.no_grad():
            head.bias.copy_(old); ref_head.bias.copy_(old)


def test_mask_as_output(pair):
    ours, ref = pair
    f, *_ = features(ours, ref)
    mask = torch.zeros(2, 1, SIZE, SIZE)
    mask[0, :, 40:120, 60:200] = 1  # second object empty: absent
    with torch.inference_mode():
        a = mask_as_output(ours, f.top, f.high_res, mask)
        b = ref._use_mask_as_output(f.top, f.high_res, mask)
    close(a.logits, b[3]); close(a.obj_ptr, b[5]); close(a.obj_score, b[6]); close(a.ious, b[2])


@pytest.mark.parametrize("from_points", [True, False])
def test_memory_encoder(pair, from_points):
    ours, ref = pair
    f, vision_feats, _, sizes = features(ours, ref)
    logits = torch.randn(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(2)) * 3
    score = torch.tensor([[1.5], [-0.5]])
    with torch.inference_mode():
        mem = ours.encode_memory(f.top, logits, score, from_points)
        rf, rpos = ref._encode_new_memory(vision_feats, sizes, logits, score, from_points)
    close(mem.features, rf); close(mem.pos, rpos[0])


@pytest.mark.parametrize("reverse", [False, True])
def test_memory_attention_with_pointers(pair, reverse):
    """A bank like mid-video tracking: 2 conditioning frames (one in the future), 6 recent frames
    with a gap, object pointers; compared with the reference's memory-conditioned features."""
    ours, ref = pair
    f, vision_feats, vision_pos, sizes = features(ours, ref)
    g = torch.Generator().manual_seed(3)
    h = SIZE // 16
    frame, n_frames = 9, 30
    sign = -1 if reverse else 1

    def entry():
        return {"maskmem_features": torch.randn(2, 64, h, h, generator=g),
                "maskmem_pos_enc": [torch.randn(2, 64, h, h, generator=g)],
                "obj_ptr": torch.randn(2, 256, generator=g)}

    cond = {frame - 7 * sign: entry(), frame + 4 * sign: entry()}
    recent = {frame - d * sign: entry() for d in (1, 2, 3, 5, 6, 8, 9)}  # frame-4 is missing
    out_dict = {"cond_frame_outputs": cond, "non_cond_frame_outputs": recent}
    with torch.inference_mode():
        b = ref._prepare_memory_conditioned_features(frame, False, vision_feats[-1:], vision_pos[-1:],
                                                     sizes[-1:], out_dict, n_frames, track_in_reverse=reverse)
        # the same bank in our tracker: its own memory selection (Tracker.gather) picks what to attend
        def out(e):
            return FrameOut(torch.zeros(2, 1, 4 * h, 4 * h), e["obj_ptr"], torch.ones(2, 1),
                            Memory(e["maskmem_features"], e["maskmem_pos_enc"][0]))
        obj = ObjectTrack(1)
        tracker = Tracker(ours)
        for t, e in cond.items():
            tracker.remember(obj, t, out(e), cond=True)
        for t, e in recent.items():
            tracker.remember(obj, t, out(e), cond=False)
        a = tracker.attend(f, obj, frame, reverse=reverse, num_frames=n_frames)
    close(a, b, tol=2e-4)


def test_first_frame_adds_no_memory_embedding(pair):
    ours, ref = pair
    f, vision_feats, vision_pos, sizes = features(ours, ref)
    with torch.inference_mode():
        a = ours.condition_on_memory(f, [], [], 15)
        b = ref._prepare_memory_conditioned_features(0, True, vision_feats[-1:], vision_pos[-1:], sizes[-1:],
                                                     {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}, 10)
    close(a, b)


def test_feature_maps_match(pair):
    ours, ref = pair
    f, vision_feats, vision_pos, sizes = features(ours, ref)
    assert sizes == [(64, 64), (32, 32), (16, 16)]
    for a, b, s in zip([f.s0, f.s1, f.top], vision_feats, sizes):
        close(a, b.permute(1, 2, 0).reshape(2, -1, *s))
    close(f.top_pos, vision_pos[-1].permute(1, 2, 0).reshape(2, -1, 16, 16))
