"""Training-free tracker policies (issue 26): the Kalman filter against hand-computed steps, the
SAMURAI candidate choice and memory selection, the DAM4SAM anchor trigger and memories, per-object
state, and tracking through the real Tracker with the demo model (sam2 exact; samurai and dam4sam
reduced to the reference's rule give its masks; several objects, both directions)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sam2cli.engine.policies import Dam4Sam, KalmanBox, Policy, Samurai, box_iou, make_policy, mask_box
from sam2cli.engine.policies.dam4sam import reveals_distractor
from sam2cli.engine.tracker import FrameOut, ObjectTrack
from sam2cli.errors import UsageError
from sam2cli.model.sam2 import Memory

CFG = SimpleNamespace(num_maskmem=7, max_obj_ptrs=16)
S = 32  # side of the constructed low-res masks


# ----------------------------------------------------------------------------- boxes and the filter

def test_mask_box_and_iou():
    m = torch.zeros(S, S, dtype=torch.bool)
    assert mask_box(m) is None
    m[3:7, 10:12] = True
    assert mask_box(m) == (10.0, 3.0, 12.0, 7.0)
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert box_iou((0, 0, 2, 2), None) == 0.0 and box_iou((0, 0, 1, 1), (5, 5, 6, 6)) == 0.0


def test_kalman_by_hand():
    """z = (cx 10, cy 20, aspect 0.5, h 8), std_pos 1/20, std_vel 1/160: 0.4 and 0.05 px at h = 8.
    Along cx, the (position, velocity) block: P0 = diag(0.8^2, 0.5^2); predict adds the velocity
    variance and Q = diag(0.4^2, 0.05^2): [[1.05, 0.25], [0.25, 0.2525]]; a measurement at cx = 12
    with R = 0.4^2 gives S = 1.21, K = (1.05, 0.25) / 1.21, so cx = 10 + 2 x 0.867769 = 11.735537,
    v = 0.413223, and the next prediction moves on by v."""
    kf = KalmanBox((8.0, 16.0, 12.0, 24.0), std_pos=1 / 20, std_vel=1 / 160)
    np.testing.assert_allclose(kf.x, [10, 20, 0.5, 8, 0, 0, 0, 0])
    np.testing.assert_allclose(np.diag(kf.P)[[0, 4]], [0.64, 0.25])
    assert kf.predict() == pytest.approx((8.0, 16.0, 12.0, 24.0))
    np.testing.assert_allclose(kf.P[np.ix_([0, 4], [0, 4])], [[1.05, 0.25], [0.25, 0.2525]], atol=1e-12)
    kf.update((10.0, 16.0, 14.0, 24.0))  # cx 12, the rest as predicted
    np.testing.assert_allclose(kf.x[[0, 1, 2, 3, 4, 5]], [11.7355372, 20, 0.5, 8, 0.4132231, 0], atol=1e-6)
    np.testing.assert_allclose(kf.P[np.ix_([0, 4], [0, 4])], [[0.1388430, 0.0330579], [0.0330579, 0.2008471]],
                               atol=1e-6)
    cx = 11.7355372 + 0.4132231
    assert kf.predict() == pytest.approx((cx - 2, 16.0, cx + 2, 24.0), abs=1e-6)


# ----------------------------------------------------------------------------- constructed passes

def box_logits(*boxes, side=S):
    """(1, len(boxes), side, side) logits: +8 inside each (x0, y0, x1, y1) box (None: empty), -8 out."""
    out = torch.full((1, len(boxes), side, side), -8.0)
    for k, b in enumerate(boxes):
        if b is not None:
            x0, y0, x1, y1 = b
            out[0, k, y0:y1, x0:x1] = 8.0
    return out


def frame_out(box, score=1.0, tag=0.0):
    """A FrameOut whose mask is `box` (None: the object absent) and whose memory is tagged."""
    logits = box_logits(box) if box is not None else torch.full((1, 1, S, S), -1024.0)
    mem = Memory(torch.full((1, 2, 4, 4), float(tag)), torch.zeros(1, 2, 4, 4))
    return FrameOut(logits, torch.zeros(1, 8), torch.tensor([[score if box is not None else -5.0]]), mem)


def run_frame(policy, obj, t, candidates, ious, score=1.0, reverse=False):
    """What Tracker.track does on a tracked frame, with given decoder candidates and IoUs."""
    choose = policy.begin(obj, t, reverse)
    cand = box_logits(*candidates)
    k = int(choose(cand, torch.tensor([ious]), torch.tensor([[score]]))[0])
    out = frame_out(candidates[k], score if candidates[k] is not None else -5.0, tag=t)
    obj.recent[t] = out
    obj.tracked[t] = reverse
    policy.observe(obj, t, out, reverse)
    return k


def prompted(policy, obj_id, t, box):
    """A conditioning frame reached by tracking (its prompted output kept)."""
    obj = ObjectTrack(obj_id)
    obj.cond[t] = frame_out(box, tag=-1)
    obj.tracked[t] = False
    policy.observe(obj, t, obj.cond[t], False)
    return obj


def moving(t, x0=2, speed=2, y=10, w=4, h=6):
    return (x0 + speed * t, y, x0 + speed * t + w, y + h)


def samurai(**kw):
    return Samurai(**{"warmup": 3, **kw}).bind(CFG)


def test_samurai_motion_prior_beats_a_more_confident_look_alike():
    policy, obj = samurai(), None
    obj = prompted(policy, 1, 0, moving(0))
    for t in range(1, 6):  # a steady pass: the filter learns 2 px per frame
        assert run_frame(policy, obj, t, [moving(t)] * 3, [0.9, 0.9, 0.9]) == 0
    assert obj.policy.stable >= 3
    lookalike = (20, 10, 24, 16)
    # the look-alike scores higher (0.85 > 0.80): the reference keeps it, the motion prior does not
    k = run_frame(policy, obj, 6, [moving(6), lookalike, None], [0.80, 0.85, 0.1])
    assert k == 0
    assert obj.policy.kf_iou > 0.5  # the filter expects the object about where it is


def test_samurai_keeps_a_much_more_confident_candidate_and_waits_for_its_warmup():
    policy = samurai()
    obj = prompted(policy, 1, 0, moving(0))
    for t in range(1, 6):
        run_frame(policy, obj, t, [moving(t)] * 3, [0.9, 0.9, 0.9])
    elsewhere = (20, 20, 26, 28)
    # 0.25 x 1 + 0.75 x 0.3 = 0.475 < 0.75 x 0.9 = 0.675: confidence wins
    assert run_frame(policy, obj, 6, [moving(6), elsewhere, None], [0.3, 0.9, 0.1]) == 1
    # a new object whose filter has not agreed on `warmup` frames yet: the reference's choice
    fresh = prompted(policy, 2, 0, moving(0))
    run_frame(policy, fresh, 1, [moving(1)] * 3, [0.9] * 3)
    assert fresh.policy.stable < policy.warmup
    assert run_frame(policy, fresh, 2, [moving(2), elsewhere, None], [0.80, 0.85, 0.1]) == 1


def memory_tags(policy, obj, t):
    """[(frames ago, tag of the frame its memory came from)] the policy gives tracked frame t."""
    policy.begin(obj, t, False)
    return [(ago, float(m.features.flatten()[0])) for ago, m in policy.memories(obj, t, False)]


def test_samurai_memory_keeps_confident_present_frames_by_rank():
    policy = samurai(mask_threshold=0.5)
    obj = prompted(policy, 1, 0, moving(0))
    for t in range(1, 12):
        if t in (4, 5):
            run_frame(policy, obj, t, [None] * 3, [0.9] * 3, score=-3.0)      # absent
        elif t == 7:
            run_frame(policy, obj, t, [moving(t)] * 3, [0.3] * 3)             # unsure
        else:
            run_frame(policy, obj, t, [moving(t)] * 3, [0.9] * 3)
    # the prompt, then the newest 6 frames that passed, oldest first, positions by rank
    assert memory_tags(policy, obj, 12) == [(0, -1.0), (6, 3.0), (5, 6.0), (4, 8.0), (3, 9.0), (2, 10.0), (1, 11.0)]
    # a prompt or a peek (no tracked frame under way) gets the reference's memories
    assert policy.memories(obj, 5, False) is None


def test_reference_policy_asks_for_nothing():
    p = make_policy("sam2")
    assert type(p) is Policy and p.begin(None, 0, False) is None and p.memories(None, 0, False) is None
    with pytest.raises(UsageError, match="samurai"):
        make_policy("kalman")
    assert make_policy("samurai", alpha=0.5).alpha == 0.5
    assert make_policy("dam4sam").ram_size == 3  # from cfg/trackers/dam4sam.yaml
    with pytest.raises(UsageError):
        make_policy("dam4sam", nope=1)


# ----------------------------------------------------------------------------- dam4sam

def test_anchor_trigger_on_constructed_candidates():
    chosen = (10, 10, 20, 20)
    assert reveals_distractor([chosen, (10, 10, 40, 20), None], 0, 0.7)        # reaches a look-alike
    assert not reveals_distractor([chosen, (12, 12, 18, 18), chosen], 0, 0.7)  # a part of it
    assert not reveals_distractor([chosen, (9, 10, 21, 20), None], 0, 0.7)     # the object, a bit wider
    assert not reveals_distractor([None, (0, 0, 30, 30), None], 0, 0.7)


def dam(**kw):
    return Dam4Sam(**{"anchor_gap": 3, **kw}).bind(CFG)


def test_dam4sam_anchors_only_when_reliable_and_a_look_alike_shows():
    policy = dam()
    obj = prompted(policy, 1, 0, (10, 10, 16, 16))
    wide = (10, 10, 30, 16)  # an alternative that takes the look-alike beside it too
    for t in range(1, 4):
        run_frame(policy, obj, t, [(10, 10, 16, 16)] * 3, [0.9] * 3)
    assert not obj.policy.drm
    run_frame(policy, obj, 4, [(10, 10, 16, 16), wide, None], [0.6, 0.5, 0.1])   # unsure: no anchor
    assert not obj.policy.drm
    run_frame(policy, obj, 5, [(10, 10, 16, 16), wide, None], [0.9, 0.5, 0.1])   # anchor
    run_frame(policy, obj, 6, [(10, 10, 16, 16), wide, None], [0.9, 0.5, 0.1])   # too soon after it
    run_frame(policy, obj, 7, [(10, 10, 12, 12), wide, None], [0.9, 0.5, 0.1])   # mask shrank: unreliable
    assert [t for t, _ in obj.policy.drm] == [5]
    for t in range(8, 18):
        run_frame(policy, obj, t, [(10, 10, 16, 16), wide, None], [0.9, 0.5, 0.1])
    assert [t for t, _ in obj.policy.drm] == [11, 14, 17]  # 3 slots, the oldest dropped, 3 frames apart
    policy.begin(obj, 18, False)
    mems = policy.memories(obj, 18, False)
    assert [ago for ago, _ in mems[:4]] == [0, 0, 0, 0]  # the prompt and the anchors, no temporal position
    assert [float(m.features.flatten()[0]) for _, m in mems[1:4]] == [11.0, 14.0, 17.0]
    assert len(mems) <= CFG.num_maskmem


def test_dam4sam_recent_memory_skips_absent_frames():
    policy = dam(every=2)
    obj = prompted(policy, 1, 0, (4, 4, 10, 10))
    for t in range(1, 15):
        if 7 <= t <= 14:  # hidden from frame 7 on
            run_frame(policy, obj, t, [None] * 3, [0.9] * 3, score=-4.0)
        else:
            run_frame(policy, obj, t, [(4, 4, 10, 10)] * 3, [0.9] * 3)
    # the prompt, then frames 2, 4 (every 2nd present frame) and 6 (the newest present), by rank
    assert memory_tags(policy, obj, 15) == [(0, -1.0), (3, 2.0), (2, 4.0), (1, 6.0)]


def test_dam4sam_lends_unfilled_anchor_slots_to_recent_memory():
    """With `spare` (the default) the recent memory takes the anchor slots not yet filled: no
    anchors, the last 6 present frames, as the reference; each anchor takes one back. With
    spare=False the split is the paper's, 3 recent frames whatever the anchors."""
    for spare, recent in ((True, [3.0, 4.0, 5.0, 6.0, 7.0, 8.0]), (False, [6.0, 7.0, 8.0])):
        policy = dam(spare=spare)
        obj = prompted(policy, 1, 0, (10, 10, 16, 16))
        for t in range(1, 9):
            run_frame(policy, obj, t, [(10, 10, 16, 16)] * 3, [0.9] * 3)
        assert memory_tags(policy, obj, 9) == [(0, -1.0)] + [(len(recent) - k, f) for k, f in enumerate(recent)]
    policy = dam()
    obj = prompted(policy, 1, 0, (10, 10, 16, 16))
    for t in range(1, 9):
        look_alike = [(10, 10, 16, 16), (10, 10, 30, 16), None] if t == 5 else [(10, 10, 16, 16)] * 3
        run_frame(policy, obj, t, look_alike, [0.9, 0.5, 0.1] if t == 5 else [0.9] * 3)
    assert [t for t, _ in obj.policy.drm] == [5]
    assert memory_tags(policy, obj, 9) == [(0, -1.0), (0, 5.0), (5, 3.0), (4, 4.0), (3, 6.0), (2, 7.0), (1, 8.0)]


# ----------------------------------------------------------------------------- per-object state

def test_state_is_per_object_and_per_pass():
    policy = samurai()
    a = prompted(policy, 1, 0, moving(0))
    for t in range(1, 4):
        run_frame(policy, a, t, [moving(t)] * 3, [0.9] * 3)
    b = prompted(policy, 2, 3, (20, 20, 26, 26))  # added on frame 3
    run_frame(policy, a, 4, [moving(4)] * 3, [0.9] * 3)
    run_frame(policy, b, 4, [(20, 20, 26, 26)] * 3, [0.9] * 3)
    assert a.policy is not b.policy and a.policy.last == b.policy.last == 4
    assert a.policy.kf.box[0] == pytest.approx(moving(4)[0], abs=1.0)
    assert b.policy.kf.box[:2] == pytest.approx((20, 20), abs=0.5)
    assert len(b.policy.good) == 1 and len(a.policy.good) == 4
    # a reverse pass from frame 4 starts over, seeded from what the object has there
    old = a.policy
    run_frame(policy, a, 3, [moving(3)] * 3, [0.9] * 3, reverse=True)
    assert a.policy is not old and a.policy.reverse and a.policy.last == 3
    # forgetting the tracking (reset_tracking) starts over too, from the prompted frame
    a.recent.clear()
    a.tracked.clear()
    a.tracked[0] = False
    policy.observe(a, 0, a.cond[0], False)
    policy.begin(a, 1, False)
    assert a.policy.last == 0 and len(a.policy.good) == 0 and a.policy.kf.box == pytest.approx(moving(0))


# ----------------------------------------------------------------------------- the real Tracker, demo model

@pytest.fixture(scope="module")
def demo():
    from sam2cli.engine.loader import load_model
    model, _ = load_model("sam2_demo.pt", "cpu")
    return model


@pytest.fixture(scope="module")
def clip():
    """8 frames of a generated scene with 2 objects in sight throughout (frames, masks (T, 2, H, W))."""
    from sam2cli.train.scenes import make_video
    frames, masks, _ = make_video(np.random.default_rng(123), 96, 8, 2, p_cross=0.0)
    assert masks.any(axis=(2, 3)).all()
    return frames, masks


def session_logits(model, clip, tracker, policy=None, reverse_from=None):
    """Object 1 prompted with its mask on frame 0, object 2 on frame 3; forward from frame 0, then
    (reverse_from) back from that frame. -> ([(frame, (2, 1, H, W) logits)], session)."""
    from sam2cli.engine.session import TrackingSession
    frames, masks = clip
    s = TrackingSession(model, size=frames[0].shape[:2], num_frames=len(frames), tracker=tracker)
    if policy is not None:
        s.tracker.policy = policy.bind(model.cfg)
    out = []
    for t, img in enumerate(frames):
        if t == 0:
            s.add_mask(0, 1, masks[0, 0], image=img)
            s.commit()
        if t == 3:
            s.add_mask(3, 2, masks[3, 1], image=img)
            s.commit()
        out.append((t, s.step(t, image=img).clone()))
    if reverse_from is not None:
        for t in range(reverse_from, -1, -1):
            out.append((t, s.step(t, image=frames[t], reverse=True, obj_ids=[1]).clone()))
    return out, s


def test_reduced_policies_give_the_reference_masks_exactly(demo, clip):
    """samurai without its motion prior and thresholds (alpha 0, every frame kept, positions by
    distance) and dam4sam with 6 recent slots taken every frame and no anchors select what the
    reference selects on a clip where the objects stay in sight: the same logits, bit for bit."""
    ref, s = session_logits(demo, clip, "sam2")
    assert all(float(o.obj_score) > 0 for obj in s.objects.values() for o in obj.recent.values())
    for policy in (Samurai(alpha=0.0, mask_threshold=-1.0, obj_threshold=-1e9, kf_threshold=-1.0, positions="distance"),
                   Dam4Sam(ram_size=6, every=1, drm_size=0)):
        got, _ = session_logits(demo, clip, policy.name, policy=policy)
        for (t, a), (u, b) in zip(ref, got):
            assert t == u and torch.equal(a, b), (policy.name, t)


@pytest.mark.parametrize("tracker", ["samurai", "dam4sam"])
def test_two_objects_one_added_later_and_both_directions(demo, clip, tracker):
    """Each object keeps its own state (object 2 from its own prompt on frame 3), both are tracked
    well, and a reverse pass of object 1 from frame 7 starts a new state and tracks back."""
    out, s = session_logits(demo, clip, tracker, reverse_from=7)
    frames, masks = clip
    a, b = s.objects[1].policy, s.objects[2].policy
    assert a is not b and b.last == 7 and not b.reverse
    assert a.reverse and a.last == 0  # object 1's state is now the reverse pass's
    ious = []
    for t, logits in out:
        pred = (logits[:, 0] > 0).numpy()
        for k in range(pred.shape[0]):
            gt = masks[t, k]
            ious.append((pred[k] & gt).sum() / max((pred[k] | gt).sum(), 1))
    assert np.mean(ious) > 0.7, np.round(ious, 2)
    if tracker == "samurai":
        box = s.objects[2].policy.kf.box
        ys, xs = np.nonzero(masks[7, 1])
        side = demo.image_size // 4 / 96  # low-res mask pixels per frame pixel
        assert abs((box[0] + box[2]) / 2 / side - xs.mean()) < 6 and abs((box[1] + box[3]) / 2 / side - ys.mean()) < 6
