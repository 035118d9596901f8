"""tracker=samurai and tracker=dam4sam through ONNX Runtime equal PyTorch (issue 26).

The video predictor scripts of test_export_onnx (two objects, one added mid-video and refined,
propagated twice; a click and a mask tracked forward then backward) on the demo model and its
export, whose masks are real on this clip (random weights see no object in it, so every mask
would be the empty no-object one). Each policy is made eager so that its own code runs on 6
frames: the Kalman prior trusted after one agreeing frame, an anchor on every tracked frame with
an alternative candidate (box_ratio > 1). (The export fixture is test_export_onnx's own; this
module runs it once more.)
"""

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

import sam2cli.engine.policies as policies  # noqa: E402
from sam2cli.engine.policies import Dam4Sam, Samurai  # noqa: E402
from sam2cli.engine.loader import load_model  # noqa: E402
from test_export_onnx import added_mid_video_and_refined, both_directions_with_a_mask, demo_folder, mask_iou  # noqa: E402,F401

N_FRAMES = 6  # conftest's frames_dir, as test_export_onnx sizes it

EAGER = {"samurai": {"warmup": 1, "stable_iou": 0.0}, "dam4sam": {"iou_threshold": 0.0, "area_ratio": 0.0,
                                                                   "box_ratio": 1.01, "anchor_gap": 1, "every": 1}}


@pytest.mark.parametrize("script", [added_mid_video_and_refined, both_directions_with_a_mask],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("tracker", ["samurai", "dam4sam"])
def test_policies_through_onnx(demo_folder, frames_dir, script, tracker, monkeypatch):
    from sam2cli.engine.video_predictor import SAM2VideoPredictor
    base = policies.tracker_params
    monkeypatch.setattr(policies, "tracker_params", lambda name: {**base(name), **EAGER.get(name, {})})
    used = {"prior": 0, "anchors": 0}
    trusted, anchor = Samurai.trusted, Dam4Sam.anchor

    def spy_trusted(self, st):
        ok = trusted(self, st)
        used["prior"] += ok
        return ok

    def spy_anchor(self, st, frame, area):
        ok = anchor(self, st, frame, area)
        used["anchors"] += ok
        return ok
    monkeypatch.setattr(Samurai, "trusted", spy_trusted)
    monkeypatch.setattr(Dam4Sam, "anchor", spy_anchor)
    results = []
    for model in (load_model("sam2_demo.pt", "cpu")[0], load_model(demo_folder, "cpu")[0]):
        p = SAM2VideoPredictor(overrides=dict(tracker=tracker), model=model)
        state, out = p.init_state(str(frames_dir)), []
        assert type(state.tracker.policy).__name__ == {"samurai": "Samurai", "dam4sam": "Dam4Sam"}[tracker]
        script(p, state, out)
        results.append([(f, list(ids), torch.as_tensor(lg).float()) for f, ids, lg in out])
    assert [(f, ids) for f, ids, _ in results[0]] == [(f, ids) for f, ids, _ in results[1]]
    ious = []
    for (_, _, a), (_, _, b) in zip(*results):
        ious += [mask_iou((a[k, 0] > 0).numpy(), (b[k, 0] > 0).numpy()) for k in range(a.shape[0])]
    print(f"{tracker} through ONNX Runtime: {len(ious)} frame-objects, mean IoU {np.mean(ious):.6f}, "
          f"min {min(ious):.6f}, {used}")
    assert np.mean(ious) >= 0.995 and np.mean([float((a > 0).float().mean()) for _, _, a in results[0]]) > 0.01
    assert used["prior" if tracker == "samurai" else "anchors"] > 0, "the policy's own rule never ran"
