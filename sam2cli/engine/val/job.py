"""`sam2 val`: evaluate a model on your own data with the community's metrics.

    sam2 val model=sam2.1_t.pt data=DAVIS/                      # task=vos: J, F, J&F (DAVIS 2017)
    sam2 val model=sam2.1_t.pt data=ds/data.yaml                # task=image: click / box / box+click mIoU
    sam2 val model=sam2.1_t.pt data=ds/data.yaml task=interactive   # NoC@85, NoC@90, mIoU per click, AUC

The task comes from the data (a DAVIS or SA-V folder: vos; a YOLO data.yaml, a COCO json or
images/ + masks/ folders: image) unless ``task=`` says. The data is checked before the model
loads, so bad input fails in one line (exit 2) with nothing written. Results go to
``runs/val``, ``runs/val2``, ...; see :mod:`.val_report` for the files.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
from rich.console import Console

from sam2cli.errors import UsageError
from sam2cli.io.datasets import dataset_kind, open_eval_images, open_vos
from ..loader import load_model
from ..options import ValOptions
from ..progress import rated_progress
from ..run import open_run_dir
from ..clicks import clicks_to_reach, curve_auc
from .report import plot_clicks, plot_jf, print_table, write_csv, write_davis_csvs, write_json
from .vos_run import evaluate_videos

TASKS = ("vos", "image", "interactive")


def pick_task(data: Path, task: Optional[str]) -> str:
    kind = dataset_kind(data)
    if task is None:
        return "vos" if kind == "video" else "image"
    if task == "vos" and kind != "video":
        raise UsageError(f"task=vos needs a video dataset (JPEGImages/ + Annotations/), but data={data} is an image "
                         "dataset; use task=image or task=interactive")
    if task != "vos" and kind == "video":
        raise UsageError(f"task={task} needs an image dataset, but data={data} is a video dataset; use task=vos")
    return task


def run_val(opts: ValOptions, console: Console) -> int:
    """The `sam2 val` job; the data is opened and checked through :mod:`sam2cli.io.datasets`, the
    readers `sam2 train` uses."""
    if not opts.data:
        raise UsageError("data= is required, e.g. sam2 val model=sam2.1_t.pt data=DAVIS/ (or data.yaml, a COCO json)")
    data = Path(str(opts.data)).expanduser()
    task = pick_task(data, opts.task)
    dataset: Any = open_vos(data) if task == "vos" else open_eval_images(data)
    model, weights = load_model(opts.net.model, opts.net.device, opts.net.imgsz)
    run_dir = open_run_dir(opts.run_dir, "val")
    t0 = time.perf_counter()
    if task == "vos":
        summary = _vos(model, dataset, run_dir, opts, console)
    else:
        summary = _images(model, dataset, run_dir, opts, console, task)
    summary = {"task": task, "model": str(weights), "data": str(data), "imgsz": model.image_size,
               "run_dir": str(run_dir), **summary, "seconds": round(time.perf_counter() - t0, 3)}
    write_json(run_dir / "summary.json", summary)
    console.print(f"results saved to {run_dir}")
    if opts.format == "jsonl":
        record = {k: v for k, v in summary.items() if k not in ("sequences", "videos")}
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()
    return 0


def _vos(model, videos, run_dir: Path, opts: ValOptions, console: Console) -> Dict[str, Any]:
    with rated_progress(console, "val", sum(len(v.frames) for v in videos), "frame") as advance:
        res = evaluate_videos(model, videos, opts.net.half, run_dir / "masks" if opts.save_masks else None,
                              advance=lambda name: advance(note=name), tracker=opts.tracker)
    objects, g = res["objects"], res["global"]
    write_davis_csvs(run_dir, g, objects)
    plotted = plot_jf(run_dir / "jf_per_sequence.png", [o.sequence for o in objects],
                      [o.stats()["J&F-Mean"] for o in objects])
    if plotted is None:
        console.print("matplotlib is not installed: plots skipped (pip install matplotlib)")
    rows = [[v["video"], str(v["objects"]), v["J&F-Mean"], v["J-Mean"], v["F-Mean"]] for v in res["videos"]]
    print_table(console, "sam2 val (DAVIS semi-supervised)", g, rows, ["video", "objects", "J&F", "J", "F"])
    share = res["metric_seconds"] / max(res["seconds"], 1e-9)
    console.print(f"{len(videos)} video(s), {len(objects)} object(s), {res['frames']} frame(s); "
                  f"metrics took {res['metric_seconds']:.2f} s of {res['seconds']:.2f} s ({100 * share:.1f}%)")
    return {**g, "videos": res["videos"], "sequences": {o.sequence: o.stats() for o in objects},
            "frames": res["frames"], "metric_seconds": round(res["metric_seconds"], 3), "metric_share": share}


def _images(model, dataset, run_dir: Path, opts: ValOptions, console: Console, task: str) -> Dict[str, Any]:
    from ..image_predictor import ImagePredictor
    from .image import click_curves, prompt_ious
    predictor = ImagePredictor(model, half=opts.net.half)
    rows, curves = [], []
    n_images = 0
    with rated_progress(console, task, len(dataset), "image") as advance:
        for i in range(len(dataset)):
            sample = dataset[i]
            masks = np.asarray(sample.masks, bool)
            masks = masks[masks.reshape(len(masks), -1).any(1)]
            n_images += 1
            if task == "image":
                ious = prompt_ious(predictor, sample.image, masks, opts.multimask_output)
                rows += [[sample.file, k, c, b, bc] for k, (c, b, bc) in
                         enumerate(zip(ious["click"], ious["box"], ious["box_click"]))]
            else:
                c = click_curves(predictor, sample.image, masks, opts.max_clicks, opts.multimask_output)
                curves += list(c)
                rows += [[sample.file, k, *cv] for k, cv in enumerate(c)]
            advance(note=f"{len(rows)} objects")
    if not rows:
        raise UsageError("the dataset has no labelled object: add masks (or labels) to its images")
    if task == "image":
        return _image_summary(run_dir, rows, n_images, console)
    return _interactive_summary(run_dir, rows, np.asarray(curves), n_images, opts.max_clicks, console)


def _image_summary(run_dir: Path, rows, n_images: int, console: Console) -> Dict[str, Any]:
    write_csv(run_dir / "objects.csv", ["image", "object", "iou_click", "iou_box", "iou_box_click"],
              [[f, k, f"{c:.4f}", f"{b:.4f}", f"{bc:.4f}"] for f, k, c, b, bc in rows])
    m = {"miou_click": float(np.mean([r[2] for r in rows])), "miou_box": float(np.mean([r[3] for r in rows])),
         "miou_box_click": float(np.mean([r[4] for r in rows])), "objects": len(rows), "images": n_images}
    print_table(console, "sam2 val (image prompts)", m)
    return m


def _interactive_summary(run_dir: Path, rows, curves: np.ndarray, n_images: int, max_clicks: int,
                         console: Console) -> Dict[str, Any]:
    miou = curves.mean(0)  # (K,)
    noc85 = [clicks_to_reach(c, 0.85, max_clicks) for c in curves]
    noc90 = [clicks_to_reach(c, 0.90, max_clicks) for c in curves]
    write_csv(run_dir / "clicks.csv", ["clicks", "mIoU"], [[k + 1, f"{v:.4f}"] for k, v in enumerate(miou)])
    header = ["image", "object", "NoC@85", "NoC@90"] + [f"iou@{k + 1}" for k in range(max_clicks)]
    write_csv(run_dir / "objects.csv", header,
              [[r[0], r[1], a, b, *[f"{v:.4f}" for v in r[2:]]] for r, a, b in zip(rows, noc85, noc90)])
    if plot_clicks(run_dir / "miou_vs_clicks.png", miou) is None:
        console.print("matplotlib is not installed: plots skipped (pip install matplotlib)")
    m = {"NoC@85": float(np.mean(noc85)), "NoC@90": float(np.mean(noc90)),
         "NoF@90": int(sum(1 for c in curves if c.max() < 0.90)), "AUC": curve_auc(miou),
         "miou@1": float(miou[0]), "miou@5": float(miou[min(4, len(miou) - 1)]), "objects": len(rows),
         "images": n_images}
    print_table(console, "sam2 val (interactive, corrective clicks)", m)
    return {**m, "miou_per_click": [float(v) for v in miou]}
