"""Where the time goes when tracking: torch.profiler over steady-state frames (full memory bank).

    python scripts/profile_video.py --model sam2.1_hiera_t --imgsz 1024 --objects 3 --frames 3 --reference

A generated clip of 7 + --frames frames; the first 7 fill the memory bank and are not profiled.
--model: a checkpoint (name or path) or a config name (random weights: fine for timing).
--reference also profiles Meta's `sam2` package on the same weights (pip install sam2==1.1.0).
"""

import argparse
import tempfile
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from sam2cli.engine.benchmark import job as bench


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="sam2.1_hiera_t")
    ap.add_argument("--imgsz", type=int, default=1024)
    ap.add_argument("--objects", type=int, default=3, help="objects tracked (1 to 3)")
    ap.add_argument("--frames", type=int, default=3, help="steady-state frames profiled")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--half", action="store_true")
    ap.add_argument("--reference", action="store_true", help="profile the reference too")
    ap.add_argument("--rows", type=int, default=25, help="ops shown")
    return ap.parse_args()


def sessions(impl, clip):
    """(predictor, state) of a fresh tracking session on the clip."""
    if isinstance(impl, bench.Reference):
        return impl.video, impl.video.init_state(str(clip))
    from sam2cli.engine.video_predictor import SAM2VideoPredictor
    p = SAM2VideoPredictor(overrides=dict(half=impl.half), model=impl.model)
    return p, p.init_state(str(clip))


def profile_impl(impl, clip, objects, frames, rows, device, half):
    predictor, state = sessions(impl, clip)
    for k, pt in enumerate(bench.object_points(0)[:objects]):
        predictor.add_new_points_or_box(state, frame_idx=0, obj_id=k + 1, points=[pt], labels=[1])
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    autocast = impl._autocast() if isinstance(impl, bench.Reference) else torch.inference_mode()
    with autocast, bench._fp32_memories(half and isinstance(impl, bench.Reference)):
        gen = predictor.propagate_in_video(state)
        for _ in range(bench.MEMORY_FRAMES):
            next(gen)
        with profile(activities=acts) as prof:
            for _ in range(frames):
                next(gen)
        gen.close()
    key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(f"\n=== {impl.name}: {frames} steady-state frame(s), {objects} object(s) ===")
    print(prof.key_averages().table(sort_by=key, row_limit=rows))


def main():
    a = parse()
    from sam2cli.engine.device import select_device
    device = select_device(a.device)
    model, path = bench.load(a.model, device, a.imgsz)
    with torch.inference_mode(), tempfile.TemporaryDirectory() as d:
        clip = bench.write_clip(Path(d) / "clip", bench.MEMORY_FRAMES + a.frames)
        profile_impl(bench.Ours(model, a.half, False), clip, a.objects, a.frames, a.rows, device, a.half)
        if a.reference:
            ckpt = Path(path) if path else bench._save_official(model, Path(d) / "random.pt")
            ref = bench.Reference(model.cfg.name, ckpt, a.imgsz, device, a.half, False)
            profile_impl(ref, clip, a.objects, a.frames, a.rows, device, a.half)


if __name__ == "__main__":
    main()
