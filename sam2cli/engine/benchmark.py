"""`sam2 benchmark`: size, compute and speed of one or more models, optionally side by side with
Meta's reference implementation (the `sam2` package) in the same process.

    sam2 benchmark model=sam2.1_t.pt,sam2.1_b.pt device=cpu imgsz=1024 runs=5
    sam2 benchmark model=sam2.1_hiera_t compare=reference imgsz=512 runs=3 format=jsonl

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
`half=True` runs ours in half precision and the reference under the same autocast; on a CPU without
native bf16 both run fp32 (see device.py), and the row's `precision` and `cpu` say what ran.
`format=jsonl` (or json) prints one JSON object per model on stdout and nothing else; otherwise
a table goes to stdout. Progress and logs go to stderr.
"""

from __future__ import annotations

import contextlib
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from sam2cli.errors import UsageError
from .device import cpu_description, precision_name
from .loader import load_model, size_mb
from .timing import PeakMemory, sync_device, encoder_gflops, median_ms

FIGURES = ("size_mb", "params_m", "gflops", "embed_ms", "decode_ms", "everything_ms", "track1_ms",
           "track3_ms", "peak_mem_mb")
HEADERS = {"size_mb": "size MB", "params_m": "params M", "gflops": "enc GFLOPs", "embed_ms": "embed ms",
           "decode_ms": "decode ms", "everything_ms": "everything ms", "track1_ms": "track 1 obj ms/frame",
           "track3_ms": "track 3 obj ms/frame", "peak_mem_mb": "peak mem MB"}
MEMORY_FRAMES = 7  # frames that fill the memory bank (1 conditioning + 6 recent)
CLIP_HW = (480, 640)
INSTALL = "SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2==1.1.0"


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


# ----------------------------------------------------------------------------- implementations

class Ours:
    name = "sam2cli"

    def __init__(self, model, half: bool, multimask: bool):
        from .image_predictor import ImagePredictor
        self.model, self.half, self.multimask = model, half, multimask
        self.image = ImagePredictor(model, half=half)

    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def encode(self, x):
        return self.model.encode_image(x)

    def embed(self, image):
        self.image.set_image(image)

    def decode(self, point):
        return self.image.predict(point_coords=np.array([point], np.float32), point_labels=np.array([1]),
                                  multimask_output=self.multimask)

    def everything(self, image, **params):
        from .everything import generate
        return generate(self.image, image, **params)

    def track(self, clip: Path, points: List[List[float]]) -> List[float]:
        from .video_predictor import SAM2VideoPredictor
        predictor = SAM2VideoPredictor(overrides=dict(half=self.half), model=self.model)
        state = predictor.init_state(str(clip))
        for k, p in enumerate(points):
            predictor.add_new_points_or_box(state, frame_idx=0, obj_id=k + 1, points=[p], labels=[1])
        return _frame_times(predictor.propagate_in_video(state), predictor.device)


class Reference:
    """Meta's `sam2` package, built from a checkpoint file at the same input size."""
    name = "reference"

    def __init__(self, cfg_name: str, ckpt: Path, imgsz: int, device: torch.device, half: bool, multimask: bool):
        from sam2.build_sam import build_sam2, build_sam2_video_predictor
        from sam2.sam2_image_predictor import SAM2ImagePredictor
        self.cfg, self.ckpt, self.device, self.half, self.multimask = _ref_config(cfg_name), ckpt, device, half, multimask
        self.extra = _size_overrides(imgsz)
        self.model = build_sam2(self.cfg, str(ckpt), device=str(device), hydra_overrides_extra=self.extra)
        self.feat_sizes = [(imgsz // 4,) * 2, (imgsz // 8,) * 2, (imgsz // 16,) * 2]
        self.image = self._sized(SAM2ImagePredictor(self.model))
        # built up front, so that the second model's weights are not counted as working memory
        self.video = build_sam2_video_predictor(self.cfg, str(ckpt), device=str(device), hydra_overrides_extra=self.extra)

    def _sized(self, predictor):
        predictor._bb_feat_sizes = list(self.feat_sizes)  # the reference predictor assumes 1024 input
        return predictor

    def _autocast(self):
        from .device import autocast
        return autocast(self.device, self.half)

    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def encode(self, x):
        return self.model.forward_image(x)

    def embed(self, image):
        with self._autocast():
            self.image.set_image(image)

    def decode(self, point):
        with self._autocast():
            return self.image.predict(point_coords=np.array([point], np.float32), point_labels=np.array([1]),
                                      multimask_output=self.multimask)

    def everything(self, image, **params):
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
        with self._autocast():
            generator = SAM2AutomaticMaskGenerator(self.model, **params)
            self._sized(generator.predictor)
            return generator.generate(image)

    def track(self, clip: Path, points: List[List[float]]) -> List[float]:
        with self._autocast(), _fp32_memories(self.half):
            state = self.video.init_state(str(clip))
            for k, p in enumerate(points):
                self.video.add_new_points_or_box(state, frame_idx=0, obj_id=k + 1, points=[p], labels=[1])
            return _frame_times(self.video.propagate_in_video(state), self.device)


@contextlib.contextmanager
def _fp32_memories(active: bool):
    """Under bf16 autocast on CPU the reference trips over bf16 memory features in some paths:
    store them as fp32 (as scripts/bench_video.py does), for the duration of the run only."""
    if not active:
        yield
        return
    import sam2.sam2_video_predictor as vp
    original = vp.SAM2VideoPredictor._run_single_frame_inference

    def run(self, *args, **kw):
        out, masks = original(self, *args, **kw)
        if out.get("maskmem_features") is not None:
            out["maskmem_features"] = out["maskmem_features"].float()
        return out, masks
    vp.SAM2VideoPredictor._run_single_frame_inference = run
    try:
        yield
    finally:
        vp.SAM2VideoPredictor._run_single_frame_inference = original


def _frame_times(frames, device) -> List[float]:
    """Seconds between consecutive frames yielded by a propagation generator."""
    times, t = [], time.perf_counter()
    for _ in frames:
        sync_device(device)
        now = time.perf_counter()
        times.append(now - t)
        t = now
    return times


def _ref_config(name: str) -> str:
    family = "sam2.1" if name.startswith("sam2.1") else "sam2"
    if name not in {f"{f}_hiera_{s}" for f in ("sam2", "sam2.1") for s in ("t", "s", "b+", "l")}:
        raise UsageError(f"compare=reference: the reference has no config for model {name}; "
                         "compare one of the official variants (e.g. sam2.1_hiera_t)")
    return f"configs/{family}/{name}.yaml"


def _size_overrides(imgsz: int) -> List[str]:
    if imgsz == 1024:
        return []
    s = imgsz // 16
    return [f"++model.image_size={imgsz}",
            f"++model.memory_attention.layer.self_attention.feat_sizes=[{s},{s}]",
            f"++model.memory_attention.layer.cross_attention.feat_sizes=[{s},{s}]"]


def reference_available() -> bool:
    try:
        import sam2.build_sam  # noqa: F401
        import sam2.sam2_image_predictor  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------- one model

def model_names(value) -> List[str]:
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    names = [str(m).strip() for m in items if str(m).strip()]
    if not names:
        raise UsageError("model= is empty: give one or more models, e.g. model=sam2.1_t.pt,sam2.1_b.pt")
    return names


def random_model(cfg) -> torch.nn.Module:
    """A config's architecture with random weights (seeded): timing does not depend on them."""
    from sam2cli.model.sam2 import SAM2Model
    torch.manual_seed(0)
    return SAM2Model(cfg)


def load(name: str, device: torch.device, imgsz: Optional[int]):
    """(model, checkpoint path or None): a config name gives random weights, anything else loads."""
    return load_model(name, device, imgsz, from_config=random_model)


def measure(impl, image: np.ndarray, clip: Path, args: Dict[str, Any], device: torch.device,
            log: Callable[[str], None]) -> Dict[str, Any]:
    runs, warmup, imgsz = int(args["runs"]), int(args["warmup"]), int(args["imgsz"])
    point = object_points(0, image.shape[:2])[0]
    row: Dict[str, Any] = {"params_m": impl.params() / 1e6}
    row["gflops"] = encoder_gflops(impl.encode, imgsz, device)
    with PeakMemory(device) as mem:
        row["embed_ms"] = median_ms(lambda: impl.embed(image), runs, warmup, device)
        log(f"{impl.name}: embed {row['embed_ms']:.0f} ms")
        row["decode_ms"] = median_ms(lambda: impl.decode(point), runs, warmup, device)
        log(f"{impl.name}: decode {row['decode_ms']:.1f} ms")
        params = dict(points_per_side=int(args["points_per_side"]), points_per_batch=int(args["points_per_batch"]))
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


def benchmark_model(name: str, args: Dict[str, Any], device: torch.device, compare: bool, tmp: Path,
                    clip: Path, log: Callable[[str], None]) -> Dict[str, Any]:
    half, multimask = bool(args["half"]), bool(args["multimask_output"])
    model, path = load(name, device, args["imgsz"])
    imgsz = model.image_size  # imgsz=null: the model's own
    args = {**args, "imgsz": imgsz}
    row: Dict[str, Any] = {"model": name, "variant": model.cfg.name, "weights": "random" if path is None else str(path),
                           "device": str(device), "imgsz": imgsz, "half": half,
                           "precision": precision_name(device, half), "runs": int(args["runs"]),
                           "warmup": int(args["warmup"]), "points_per_side": int(args["points_per_side"]),
                           "size_mb": None if path is None else size_mb(path)}
    image = synthetic_frame(0)
    if device.type == "cpu":
        row["cpu"] = cpu_description()
    log(f"[bold]{name}[/] ({model.cfg.name}, {row['weights']}) on {device}{' ' + row['cpu'] if 'cpu' in row else ''}, "
        f"imgsz={imgsz}, half={half} -> {row['precision']}")
    ours = measure(Ours(model, half, multimask), image, clip, args, device, log)
    row.update({k: ours[k] for k in FIGURES if k in ours})
    if compare:
        ckpt = Path(path) if path is not None else _save_official(model, tmp / f"{model.cfg.name}_random.pt")
        ref_impl = Reference(model.cfg.name, ckpt, imgsz, device, half, multimask)
        ref = measure(ref_impl, image, clip, args, device, log)
        ref["size_mb"] = row["size_mb"]
        del ref_impl
        for k in FIGURES:
            row[f"ref_{k}"] = ref.get(k)
        for k in FIGURES:
            a, b = row.get(k), row.get(f"ref_{k}")
            row[f"ratio_{k}"] = (b / a) if (a and b is not None) else None
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


def table(rows: List[Dict[str, Any]], compare: bool) -> Table:
    d = rows[0] if rows else {}
    cpu = f" ({d['cpu']})" if d.get("cpu") else ""
    title = (f"sam2 benchmark: device={d.get('device')}{cpu} imgsz={d.get('imgsz')} half={d.get('half')} "
             f"-> {d.get('precision')}, "
             f"median of runs={d.get('runs')} after warmup={d.get('warmup')}, "
             f"everything grid {d.get('points_per_side')}x{d.get('points_per_side')}")
    t = Table(title=title)
    t.add_column("model")
    if compare:
        t.add_column("impl")
    for k in FIGURES:
        t.add_column(HEADERS[k], justify="right")
    for r in rows:
        label = r["model"] + (" (random)" if r["weights"] == "random" else "")
        if not compare:
            t.add_row(label, *(_fmt(k, r.get(k)) for k in FIGURES))
            continue
        t.add_row(label, "sam2cli", *(_fmt(k, r.get(k)) for k in FIGURES))
        t.add_row("", "reference", *(_fmt(k, r.get(f"ref_{k}")) for k in FIGURES))
        t.add_row("", "ref / ours", *("" if r.get(f"ratio_{k}") is None else f"x{r[f'ratio_{k}']:.2f}"
                                      for k in FIGURES), end_section=True)
    return t


def run_benchmark(args: Dict[str, Any], console: Console) -> int:
    from .device import select_device
    compare = args.get("compare")
    if compare not in (None, False, "", "reference"):
        raise UsageError(f"compare={compare} is not supported: use compare=reference (Meta's sam2 package) or leave it out")
    compare = compare == "reference"
    if compare and not reference_available():
        raise UsageError(f"compare=reference needs Meta's reference package, which is not importable here: {INSTALL}")
    fmt = args.get("format")
    as_json = fmt in ("json", "jsonl")
    names = model_names(args["model"])
    device = select_device(args.get("device") or None)

    def log(msg: str) -> None:
        console.print(msg, highlight=False)

    rows = []
    with torch.inference_mode(), tempfile.TemporaryDirectory(prefix="sam2bench_") as d:
        tmp = Path(d)
        clip = write_clip(tmp / "clip", MEMORY_FRAMES + int(args["warmup"]) + int(args["runs"]))
        for name in names:
            row = benchmark_model(name, args, device, compare, tmp, clip, log)
            rows.append(row)
            if as_json:
                sys.stdout.write(json.dumps(row) + "\n")
                sys.stdout.flush()
    if not as_json:
        Console(file=sys.stdout, soft_wrap=False, width=max(Console(file=sys.stdout).width, 160)).print(
            table(rows, compare))
    return 0
