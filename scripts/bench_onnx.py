"""ONNX Runtime against our PyTorch path (and the reference) on the same weights, same process,
alternating rounds (the best round's medians are kept: the machine is shared).

    python scripts/bench_onnx.py --model sam2.1_hiera_t                  # fp32 and int8 exports
    python scripts/bench_onnx.py --model sam2.1_hiera_t --reference --track-frames 4

Random weights (timing does not depend on them). embed = set_image on a 480x640 frame at imgsz,
decode = one click; track = s/frame with 3 objects after the first frame. The exports are written
to a temporary folder by the same code as `sam2 export` (self-check included).
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sam2cli.engine.benchmark import job as bench
from sam2cli.engine.export.job import ExportOptions, export_onnx
from sam2cli.engine.loader import load_model
from sam2cli.engine.benchmark.timing import median_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="sam2.1_hiera_t")
    ap.add_argument("--imgsz", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reference", action="store_true", help="also time Meta's sam2 in fp32")
    ap.add_argument("--track-frames", type=int, default=0, help="also track 3 objects over this many frames")
    a = ap.parse_args()
    dev = torch.device("cpu")
    model, _ = bench.load(a.model, dev, a.imgsz)
    image, points = bench.synthetic_frame(0), bench.object_points(0)
    with tempfile.TemporaryDirectory() as d:
        ckpt = bench._save_official(model, Path(d) / "random.pt")
        impls = {"ours fp32": bench.Ours(model, False, False)}
        for int8 in (False, True):
            t = time.perf_counter()
            folder = export_onnx(ExportOptions(model=str(ckpt), imgsz=a.imgsz, int8=int8,
                                               output=str(Path(d) / f"onnx_{int8}")), log=print)
            print(f"export ({'int8' if int8 else 'fp32'}) took {time.perf_counter() - t:.0f} s")
            impls[f"onnx {'int8' if int8 else 'fp32'}"] = bench.Ours(load_model(folder, "cpu")[0], False, False)
        if a.reference:
            impls["reference fp32"] = bench.Reference(model.cfg.name, ckpt, a.imgsz, dev, False, False)
        best, track = {}, {}
        with torch.inference_mode():
            for _ in range(a.rounds):
                for name, impl in impls.items():
                    e = median_ms(lambda: impl.embed(image), a.runs, 1, dev)
                    dd = median_ms(lambda: impl.decode(points[0]), a.runs * 2, 1, dev)
                    best[name] = min(best.get(name, (e, dd)), (e, dd), key=sum)
            if a.track_frames:
                clip = bench.write_clip(Path(d) / "clip", a.track_frames)
                for name, impl in impls.items():
                    track[name] = float(np.median(impl.track(clip, points[:3])[1:]))
    base = sum(best["reference fp32" if a.reference else "ours fp32"])
    against = "the reference fp32" if a.reference else "ours fp32"
    for name, (e, dd) in best.items():
        line = f"{a.model} @{a.imgsz} {name}: embed {e:.0f} ms, decode {dd:.1f} ms, embed+decode {base / (e + dd):.2f}x {against}"
        if name in track:
            line += f"; track 3 objects {track[name]:.2f} s/frame"
        print(line)


if __name__ == "__main__":
    main()
