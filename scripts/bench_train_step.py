"""Seconds per `sam2 train` optimiser step, fp32 and half, for a model at an image size.

    python scripts/bench_train_step.py --model sam2.1_hiera_t --imgsz 1024 --batch 2 --steps 3
    python scripts/bench_train_step.py --model sam2_demo --imgsz 128 --batch 16 --steps 10

Random weights and a generated YOLO dataset (timing only); image steps with one corrective click,
as the demo model was trained. The median of `--steps` steps after one warm-up step is printed.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_train import make_yolo  # noqa: E402

from sam2cli.cli.args import options_from, resolve  # noqa: E402
from sam2cli.train.options import TrainOptions  # noqa: E402
from sam2cli.train.trainer import Trainer  # noqa: E402


def step_seconds(model: str, imgsz: int, batch: int, steps: int, half: bool, data: Path, project: Path) -> float:
    args = resolve([f"model={model}", f"data={data}", f"batch={batch}", "n_correct=1", "max_objects=2",
                    f"imgsz={imgsz}", f"half={half}", f"project={project}", "device=cpu"])
    trainer = Trainer(options_from(TrainOptions, args), Console(stderr=True))
    indices = list(range(batch))
    times = []
    for s in range(steps + 1):
        t = time.perf_counter()
        trainer.train_step(0, indices, s, 1000)
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="sam2_demo")
    p.add_argument("--imgsz", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=5)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = make_yolo(Path(tmp) / "ds", n_train=a.batch, n_val=1, size=a.imgsz)
        for half in (False, True):
            sec = step_seconds(a.model, a.imgsz, a.batch, a.steps, half, data, Path(tmp) / "runs")
            print(f"{a.model} imgsz={a.imgsz} batch={a.batch} half={half}: {sec:.2f} s/step, "
                  f"{a.batch / sec:.1f} images/s")


if __name__ == "__main__":
    main()
