"""Where the time goes in image mode: torch.profiler over embed + decode, top ops by CPU time.

    python scripts/profile_image.py --model sam2.1_hiera_t --imgsz 1024 --objects 1 --reference

--model: a checkpoint (name or path) or a config name (random weights: fine for timing).
--objects: prompts decoded against the embedding (one click each). --reference also profiles
Meta's `sam2` package on the same weights (pip install sam2==1.1.0).
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from sam2cli.engine.benchmark import job as bench


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="sam2.1_hiera_t")
    ap.add_argument("--imgsz", type=int, default=1024)
    ap.add_argument("--objects", type=int, default=1, help="prompts decoded per image")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--half", action="store_true")
    ap.add_argument("--reference", action="store_true", help="profile the reference too")
    ap.add_argument("--runs", type=int, default=2, help="profiled embed+decode rounds (after one warm-up)")
    ap.add_argument("--rows", type=int, default=25, help="ops shown")
    return ap.parse_args()


def profile_impl(impl, image, points, runs, rows, device):
    def once():
        impl.embed(image)
        for p in points:
            impl.decode(p)
    once()  # warm-up
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts, record_shapes=False) as prof:
        for _ in range(runs):
            once()
    key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(f"\n=== {impl.name}: {runs} x (embed + {len(points)} decode) ===")
    print(prof.key_averages().table(sort_by=key, row_limit=rows))


def main():
    a = parse()
    from sam2cli.engine.device import select_device
    device = select_device(a.device)
    model, path = bench.load(a.model, device, a.imgsz)
    image = bench.synthetic_frame(0)
    h, w = image.shape[:2]
    rng = np.random.default_rng(0)
    points = [[float(rng.uniform(0, w)), float(rng.uniform(0, h))] for _ in range(a.objects)]
    with torch.inference_mode():
        profile_impl(bench.Ours(model, a.half, False), image, points, a.runs, a.rows, device)
        if a.reference:
            with tempfile.TemporaryDirectory() as d:
                ckpt = Path(path) if path else bench._save_official(model, Path(d) / "random.pt")
                ref = bench.Reference(model.cfg.name, ckpt, a.imgsz, device, a.half, False)
                profile_impl(ref, image, points, a.runs, a.rows, device)


if __name__ == "__main__":
    main()
