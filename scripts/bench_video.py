"""Per-frame tracking time of sam2cli and of the reference, side by side in one process.

    python scripts/bench_video.py --objects 1 3 --frames 6 --imgsz 1024

Random-weight SAM 2.1 tiny checkpoint (timing only). Steady state: the first 7 frames fill the
memory bank, the median of the following frames is reported. Needs the reference package
(`SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2==1.1.0`).
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference import REF_CONFIGS, make_random_checkpoint, small_size_overrides  # noqa: E402


def make_frames(folder: Path, n: int):
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.clip(rng.normal(90, 20, (480, 640, 3)), 0, 255).astype(np.uint8)
        for k in range(3):
            cv2.circle(img, (100 + 150 * k + 5 * i, 240), 50, (40 * k, 0, 230), -1)
        cv2.imwrite(str(folder / f"{i}.jpg"), img)


def timed_propagation(predictor, state, n_objects):
    for k in range(n_objects):
        predictor.add_new_points_or_box(state, frame_idx=0, obj_id=k + 1, points=[[100 + 150 * k, 240]], labels=[1])
    times, t = [], time.perf_counter()
    for _ in predictor.propagate_in_video(state):
        now = time.perf_counter()
        times.append(now - t)
        t = now
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--frames", type=int, default=10, help="frames tracked after the memory bank is full")
    ap.add_argument("--imgsz", type=int, default=1024)
    ap.add_argument("--model", default="sam2.1_hiera_t")
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    from sam2.build_sam import build_sam2_video_predictor
    from sam2cli.engine.video_predictor import SAM2VideoPredictor
    from sam2cli.model.registry import registry
    from sam2cli.model.checkpoint import build_model
    import sam2.sam2_video_predictor as vp

    run = vp.SAM2VideoPredictor._run_single_frame_inference

    def fp32_memory(self, *args, **kw):  # the reference crashes on CPU with bf16 memories in some paths
        out, masks = run(self, *args, **kw)
        if out["maskmem_features"] is not None:
            out["maskmem_features"] = out["maskmem_features"].float()
        return out, masks
    vp.SAM2VideoPredictor._run_single_frame_inference = fp32_memory

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        n = 7 + a.frames
        make_frames(d, n)
        ckpt = make_random_checkpoint(a.model, d / "ckpt.pt")
        extra = small_size_overrides(a.imgsz) if a.imgsz != 1024 else []
        ref = build_sam2_video_predictor(REF_CONFIGS[a.model], str(ckpt), device="cpu", hydra_overrides_extra=extra)
        ours = SAM2VideoPredictor(model=build_model(registry()[a.model].with_image_size(a.imgsz), ckpt))
        print(f"{a.model} imgsz={a.imgsz} torch threads={torch.get_num_threads()}")
        for k in a.objects:
            row = {}
            for name, p in (("reference", ref), ("sam2cli", ours)):
                state = p.init_state(str(d))
                times = timed_propagation(p, state, k)
                row[name] = statistics.median(times[7:])
            print(f"{k} object(s): reference {row['reference'] * 1e3:.0f} ms/frame, sam2cli {row['sam2cli'] * 1e3:.0f} "
                  f"ms/frame, speed-up x{row['reference'] / row['sam2cli']:.2f}")


if __name__ == "__main__":
    main()
