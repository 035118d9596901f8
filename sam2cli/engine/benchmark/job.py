"""`sam2 benchmark`: size, compute and speed of one or more models, optionally side by side with
Meta's reference implementation (the `sam2` package) in the same process.

    sam2 benchmark model=sam2.1_t.pt,sam2.1_b.pt device=cpu imgsz=1024 runs=5
    sam2 benchmark model=sam2.1_hiera_t compare=reference imgsz=512 runs=3 format=jsonl
    sam2 benchmark model=sam2.1_t_onnx compare=reference     # an export: ONNX Runtime, PyTorch, reference

`model=` is a comma-separated list of checkpoints (names or paths, resolved like every other
command) or config names such as `sam2.1_hiera_t`: a config name is benchmarked with random
weights, which is fine for timing (the cost of a forward pass does not depend on the weights;
only segment-everything's post-processing varies a little with how many masks survive).

One row per model; every time is the median of `runs` timed runs after `warmup` untimed ones:

- size_mb      checkpoint file size (null for random weights), params_m parameters in millions
- gflops       image-encoder GFLOPs at `imgsz` (torch's FlopCounterMode on one encode)
- embed_ms     set_image on a 480x640 image (preprocess + image encoder)
- decode_ms    one single-click prompt decoded against that embedding
- everything_ms  segment-everything, embed included, `points_per_side` x `points_per_side` grid
- track1_ms / track3_ms  ms per frame tracking 1 / 3 objects at steady state: a generated clip of
               7 + warmup + runs frames, the first 7 fill the memory bank, then warmup frames are
               dropped and the median of the remaining `runs` frames is reported
- peak_mem_mb  peak memory above what the loaded model already held, over all of the above
               (process RSS sampled every few ms on CPU; torch.cuda.max_memory_allocated on CUDA)

`compare=reference` measures the same figures for the reference (built from the same checkpoint;
random weights are saved to a temporary official-format checkpoint first) and adds `ref_<figure>`
and `ratio_<figure>` = reference / ours (above 1: we are faster, smaller or lighter).
An export folder (`sam2 export`) is timed on ONNX Runtime. `compare=pytorch` also times our PyTorch
path on the checkpoint it was exported from (found beside the folder or by name, and checked
against the SHA-256 the export recorded): `pytorch_<figure>` and `ratio_pytorch_<figure>` =
PyTorch / ONNX Runtime. On an export, `compare=reference` times both: ONNX Runtime, PyTorch and
the reference, in one process.
`half=True` runs ours in half precision and the reference under the same autocast; on a CPU without
native bf16 both run fp32 (see device.py), and the row's `precision` and `cpu` say what ran.
`format=jsonl` (or json) prints one JSON object per model on stdout and nothing else; otherwise
a table goes to stdout. Progress and logs go to stderr.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from sam2cli.errors import UsageError
from sam2cli.io.onnx_folder import is_export_folder
from sam2cli.model.sam2 import SAM2Model
from . import impls
from .impls import INSTALL, Ours, Reference, _ref_config, reference_available
from ..device import cpu_description, precision_name
from ..loader import export_source, load_model, size_mb
from ..options import BenchmarkOptions
from .timing import PeakMemory, encoder_gflops, median_ms

_fp32_memories = impls._fp32_memories  # scripts/profile_video.py reads it from here
FIGURES = ("size_mb", "params_m", "gflops", "embed_ms", "decode_ms", "everything_ms", "track1_ms",
           "track3_ms", "peak_mem_mb")
HEADERS = {"size_mb": "size MB", "params_m": "params M", "gflops": "enc GFLOPs", "embed_ms": "embed ms",
           "decode_ms": "decode ms", "everything_ms": "everything ms", "track1_ms": "track 1 obj ms/frame",
           "track3_ms": "track 3 obj ms/frame", "peak_mem_mb": "peak mem MB"}
MEMORY_FRAMES = 7  # frames that fill the memory bank (1 conditioning + 6 recent)
CLIP_HW = (480, 640)


# ----------------------------------------------------------------------------- inputs

def synthetic_frame(i: int = 0, hw=CLIP_HW) -> np.ndarray:
    """A noisy (H, W, 3) uint8 RGB frame with three discs that drift right by 5 px per frame."""
    import cv2
    rng = np.random.default_rng(i)
    img = np.clip(rng.normal(90, 20, (*hw, 3)), 0, 255).astype(np.uint8)
    for k, (x, y) in enumerate(object_points(i, hw)):
        cv2.circle(img, (int(x), int(y)), hw[0] // 10, (230, 40 * k, 0), -1)
    return img


def object_points(i: int = 0, hw=CLIP_HW) -> List[List[float]]:
    h, w = hw
    return [[w * (0.15 + 0.25 * k) + 5 * i, h / 2] for k in range(3)]


def write_clip(folder: Path, n: int) -> Path:
    """JPEG frames 0.jpg ... (n-1).jpg: a folder both our reader and the reference's accept."""
    import cv2
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.jpg"), cv2.cvtColor(synthetic_frame(i), cv2.COLOR_RGB2BGR))
    return folder


# ----------------------------------------------------------------------------- one model

def model_names(value) -> List[str]:
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    names = [str(m).strip() for m in items if str(m).strip()]
    if not names:
        raise UsageError("model= is empty: give one or more models, e.g. model=sam2.1_t.pt,sam2.1_b.pt")
    return names


def random_model(cfg) -> torch.nn.Module:
    """A config's architecture with random weights (seeded): timing does not depend on them."""
    torch.manual_seed(0)
    return SAM2Model(cfg)


def load(name: str, device: torch.device, imgsz: Optional[int]):
    """(model, checkpoint path or None): a config name gives random weights, anything else loads."""
    return load_model(name, device, imgsz, from_config=random_model)


def measure(impl, image: np.ndarray, clip: Path, opts: BenchmarkOptions, imgsz: int, device: torch.device,
            log: Callable[[str], None]) -> Dict[str, Any]:
    runs, warmup = int(opts.runs), int(opts.warmup)
    point = object_points(0, image.shape[:2])[0]
    row: Dict[str, Any] = {"params_m": impl.params() / 1e6}
    row["gflops"] = encoder_gflops(impl.encode, imgsz, device)
    with PeakMemory(device) as mem:
        row["embed_ms"] = median_ms(lambda: impl.embed(image), runs, warmup, device)
        log(f"{impl.name}: embed {row['embed_ms']:.0f} ms")
        row["decode_ms"] = median_ms(lambda: impl.decode(point), runs, warmup, device)
        log(f"{impl.name}: decode {row['decode_ms']:.1f} ms")
        params = dict(points_per_side=int(opts.points_per_side), points_per_batch=int(opts.points_per_batch))
        row["everything_ms"] = median_ms(lambda: impl.everything(image, **params), runs, warmup, device)
        log(f"{impl.name}: segment-everything {row['everything_ms']:.0f} ms")
        for k in (1, 3):
            times = impl.track(clip, object_points(0, CLIP_HW)[:k])
            row[f"track{k}_ms"] = statistics.median(times[MEMORY_FRAMES + warmup:]) * 1e3
            log(f"{impl.name}: tracking {k} object(s) {row[f'track{k}_ms']:.0f} ms/frame")
    row["peak_mem_mb"] = mem.peak_mb
    return row


def _save_official(model, path: Path) -> Path:
    torch.save({"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, path)
    return path


SIDES = {"pytorch": "pytorch_", "reference": "ref_"}  # compared implementation -> its keys' prefix


def parse_compare(value) -> Tuple[str, ...]:
    """compare= -> the implementations to time beside the model: () , ("reference",), ("pytorch",)
    or both (a comma-separated list or a yaml list)."""
    if value in (None, False, ""):
        return ()
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    sides = tuple(s for s in SIDES if s in {str(v).strip().lower() for v in items})
    if len(sides) != len({str(v).strip() for v in items if str(v).strip()}):
        raise UsageError(f"compare={value} is not supported: use compare=reference (Meta's sam2 package), "
                         "compare=pytorch (an export folder against its checkpoint on our PyTorch path), "
                         "or leave it out")
    return sides


def sides_for(name: str, compare: Tuple[str, ...]) -> Tuple[str, ...]:
    """What runs beside `name`: an export folder is compared with our PyTorch path on the checkpoint
    it came from (compare=reference times both), a checkpoint with the reference only."""
    if not is_export_folder(Path(name).expanduser()):
        if "pytorch" in compare:
            raise UsageError(f"compare=pytorch times an ONNX export folder against the checkpoint it was exported "
                             f"from; model={name} already runs on PyTorch: use compare=reference")
        return compare
    return ("pytorch", "reference") if "reference" in compare else compare


def _side(side: str, src: Path, model, half: bool, multimask: bool, device: torch.device, tmp: Path):
    """The implementation that runs `side` on the same weights as `model` (whose file is `src`)."""
    if side == "pytorch":
        net, _ = load_model(src, device, model.image_size)
        return Ours(net, half, multimask, name="sam2cli pytorch")
    ckpt = Path(src) if src is not None else _save_official(model, tmp / f"{model.cfg.name}_random.pt")
    return Reference(model.cfg.name, ckpt, model.image_size, device, half, multimask)


def benchmark_model(name: str, opts: BenchmarkOptions, device: torch.device, compare: Tuple[str, ...], tmp: Path,
                    clip: Path, log: Callable[[str], None]) -> Dict[str, Any]:
    half, multimask = bool(opts.half), bool(opts.multimask_output)
    sides = sides_for(name, compare)
    model, path = load(name, device, opts.imgsz)
    exported = model.kind != SAM2Model.kind  # an export folder on ONNX Runtime
    if "reference" in sides:
        _ref_config(model.cfg.name)  # a variant the reference lacks: one line before any timing
    src = export_source(path, model.manifest) if exported and sides else path
    imgsz = model.image_size  # imgsz=null: the model's own
    row: Dict[str, Any] = {"model": name, "variant": model.cfg.name, "weights": "random" if path is None else str(path),
                           "backend": model.kind,
                           "device": str(device), "imgsz": imgsz, "half": half,
                           "precision": model.manifest["precision"] if exported else precision_name(device, half),
                           "runs": int(opts.runs), "warmup": int(opts.warmup),
                           "points_per_side": int(opts.points_per_side),
                           "size_mb": None if path is None else size_mb(path)}
    if exported and sides:
        row.update(source=str(src), pytorch_precision=precision_name(device, half))
    image = synthetic_frame(0)
    if device.type == "cpu":
        row["cpu"] = cpu_description()
    log(f"[bold]{name}[/] ({model.cfg.name}, {row['weights']}) on {device}{' ' + row['cpu'] if 'cpu' in row else ''}, "
        f"imgsz={imgsz}, half={half} -> {row['precision']}")
    ours = measure(Ours(model, half and not exported, multimask, name="sam2cli onnx" if exported else "sam2cli"),
                   image, clip, opts, imgsz, device, log)
    if exported and device.type == "cuda":
        ours["peak_mem_mb"] = None  # ONNX Runtime's CUDA memory is not torch's allocator's
    row.update({k: ours[k] for k in FIGURES if k in ours})
    for side in sides:
        impl = _side(side, src, model, half, multimask, device, tmp)
        other = measure(impl, image, clip, opts, imgsz, device, log)
        other["size_mb"] = None if src is None else size_mb(src)
        del impl
        gc.collect()
        prefix, ratio = SIDES[side], "ratio_" + ("pytorch_" if side == "pytorch" else "")
        for k in FIGURES:
            a, b = row.get(k), other.get(k)
            row[prefix + k], row[ratio + k] = b, (b / a) if (a and b is not None) else None
    del model
    gc.collect()
    return row


# ----------------------------------------------------------------------------- output

def _fmt(key: str, v) -> str:
    if v is None:
        return ""
    if key.endswith("_ms"):
        return f"{v:.1f}" if v < 100 else f"{v:.0f}"
    return f"{v:.1f}"


def _ratio_cells(r: Dict[str, Any], prefix: str) -> List[str]:
    return ["" if r.get(prefix + k) is None else f"x{r[prefix + k]:.2f}" for k in FIGURES]


def table(rows: List[Dict[str, Any]], compare) -> Table:
    d = rows[0] if rows else {}
    cpu = f" ({d['cpu']})" if d.get("cpu") else ""
    title = (f"sam2 benchmark: device={d.get('device')}{cpu} imgsz={d.get('imgsz')} half={d.get('half')} "
             f"-> {d.get('pytorch_precision', d.get('precision'))}, "
             f"median of runs={d.get('runs')} after warmup={d.get('warmup')}, "
             f"everything grid {d.get('points_per_side')}x{d.get('points_per_side')}")
    t = Table(title=title)
    t.add_column("model")
    if compare:
        t.add_column("impl", no_wrap=True)
    for k in FIGURES:
        t.add_column(HEADERS[k], justify="right")
    for r in rows:
        label = r["model"] + (" (random)" if r["weights"] == "random" else "")
        if not compare:
            t.add_row(label, *(_fmt(k, r.get(k)) for k in FIGURES))
            continue
        onnx = r.get("backend") == "onnxruntime"
        ours = f"onnxruntime {r['precision']}" if onnx else "sam2cli"
        t.add_row(label, ours, *(_fmt(k, r.get(k)) for k in FIGURES))
        shown = [s for s in SIDES if r.get(SIDES[s] + "embed_ms") is not None]
        for side in shown:
            t.add_row("", "sam2cli pytorch" if side == "pytorch" else side,
                      *(_fmt(k, r.get(SIDES[side] + k)) for k in FIGURES))
        for side in shown:
            t.add_row("", f"{'pytorch' if side == 'pytorch' else 'ref'} / {'onnx' if onnx else 'ours'}",
                      *_ratio_cells(r, "ratio_" + ("pytorch_" if side == "pytorch" else "")),
                      end_section=side == shown[-1])
    return t


def run_benchmark(opts: BenchmarkOptions, console: Console) -> int:
    from ..device import select_device
    compare = parse_compare(opts.compare)
    names = model_names(opts.model)
    sides = {s for name in names for s in sides_for(name, compare)}  # bad combinations: one line, up front
    if "reference" in sides and not reference_available():
        raise UsageError(f"compare=reference needs Meta's reference package, which is not importable here: {INSTALL}")
    as_json = opts.format in ("json", "jsonl")
    device = select_device(opts.device)

    def log(msg: str) -> None:
        console.print(msg, highlight=False)

    rows = []
    with torch.inference_mode(), tempfile.TemporaryDirectory(prefix="sam2bench_") as d:
        tmp = Path(d)
        clip = write_clip(tmp / "clip", MEMORY_FRAMES + int(opts.warmup) + int(opts.runs))
        for name in names:
            row = benchmark_model(name, opts, device, compare, tmp, clip, log)
            rows.append(row)
            if as_json:
                sys.stdout.write(json.dumps(row) + "\n")
                sys.stdout.flush()
    if not as_json:
        Console(file=sys.stdout, soft_wrap=False, width=max(Console(file=sys.stdout).width, 160)).print(
            table(rows, bool(compare)))
    return 0
