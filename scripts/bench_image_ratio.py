"""Image-mode speed against the reference in fp32, the baseline the speed targets are set on:
ours in fp32 and in half precision (bf16 autocast on CPU) vs Meta's `sam2` in fp32, same
weights, same process, alternating rounds (the best round's medians are kept: the machine is shared).

    python scripts/bench_image_ratio.py --model sam2.1_hiera_t
    python scripts/bench_image_ratio.py --model sam2.1_hiera_b+ --rounds 1

Random weights (timing does not depend on them); embed = set_image on a 480x640 frame at 1024,
decode = one click. `sam2 benchmark compare=reference half=True` instead puts the reference under
the same autocast.
"""

import argparse
import tempfile
from pathlib import Path

import torch

from sam2cli.engine.benchmark import job as bench
from sam2cli.engine.benchmark.timing import median_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="sam2.1_hiera_t")
    ap.add_argument("--imgsz", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    dev = torch.device("cpu")
    model, _ = bench.load(a.model, dev, a.imgsz)
    image, point = bench.synthetic_frame(0), bench.object_points(0)[0]
    with torch.inference_mode(), tempfile.TemporaryDirectory() as d:
        ckpt = bench._save_official(model, Path(d) / "random.pt")
        impls = {"reference fp32": bench.Reference(model.cfg.name, ckpt, a.imgsz, dev, False, False),
                 "ours fp32": bench.Ours(model, False, False), "ours half": bench.Ours(model, True, False)}
        best = {}
        for _ in range(a.rounds):
            for name, impl in impls.items():
                e = median_ms(lambda: impl.embed(image), a.runs, 1, dev)
                dd = median_ms(lambda: impl.decode(point), a.runs * 2, 1, dev)
                best[name] = min(best.get(name, (e, dd)), (e, dd), key=sum)
    ref = sum(best["reference fp32"])
    for name, (e, dd) in best.items():
        print(f"{a.model} {name}: embed {e:.0f} ms, decode {dd:.1f} ms, embed+decode {ref / (e + dd):.2f}x the reference fp32")


if __name__ == "__main__":
    main()
