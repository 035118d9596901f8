"""Speed, memory, training and ONNX checks of scripts/gpu_check.py (see gpu_check_parity.py for
the context they share).

Run as a script it is the child that times the reference's compiled video predictor
(`vos_optimized=True`), so that a compile that runs too long can be stopped from outside:

    python scripts/gpu_check_perf.py vos CKPT SIZE DEVICE FRAMES_DIR
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional

import cv2
import numpy as np
import torch

MEMORY_FRAMES = 7  # frames that fill the memory bank (1 conditioning + 6 recent)
MEMORY_RATIO = 1.1
ORT_GPU_WHEEL = "onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl, 255.6 MB"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- speed

def speed(ctx, name: str, half: bool) -> dict:
    """`sam2 benchmark model=<ckpt> compare=reference` on this device: embed, decode, segment
    everything and tracking 1 and 3 objects, ours and the reference's, same precision."""
    from rich.console import Console
    from sam2cli.cli.args import options_from, resolve
    from sam2cli.engine.benchmark.job import run_benchmark
    from sam2cli.engine.options import BenchmarkOptions
    runs, warmup, grid = (1, 0, 4) if ctx.quick else (5, 1, 32)
    argv = [f"model={ctx.ckpt(name)}", "compare=reference", f"runs={runs}", f"warmup={warmup}",
            f"device={ctx.device}", f"half={half}", f"imgsz={ctx.size}", f"points_per_side={grid}", "format=json"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run_benchmark(options_from(BenchmarkOptions, resolve(argv)), Console(stderr=True, quiet=not ctx.verbose))
    row = json.loads(out.getvalue().strip().splitlines()[-1])
    keep = ("embed_ms", "decode_ms", "everything_ms", "track1_ms", "track3_ms", "peak_mem_mb")
    res = {"model": name, "imgsz": ctx.size, "precision": row.get("precision"), "runs": runs, "warmup": warmup,
           "points_per_side": grid, "tf32": _tf32(ctx.device)}
    for prefix in ("", "ref_", "ratio_"):
        res.update({prefix + k: row.get(prefix + k) for k in keep})
    for k in ("track1", "track3"):
        for prefix in ("", "ref_"):
            ms = res.get(f"{prefix}{k}_ms")
            res[f"{prefix}{k}_fps"] = 1e3 / ms if ms else None
    res["passed"] = None
    res["summary"] = (f"embed {res['embed_ms']:.1f}/{res['ref_embed_ms']:.1f} ms, decode {res['decode_ms']:.2f}/"
                      f"{res['ref_decode_ms']:.2f} ms, track 1 obj {res['track1_fps']:.1f}/{res['ref_track1_fps']:.1f} fps, "
                      f"3 obj {res['track3_fps']:.1f}/{res['ref_track3_fps']:.1f} fps (ours/reference)")
    return res


def _tf32(device: torch.device) -> Optional[dict]:
    if device.type != "cuda":
        return None
    return {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}


def vos_speed(ctx, timeout_s: float) -> dict:
    """The reference's compiled video predictor (vos_optimized=True: torch.compile max-autotune)
    tracking one object in bf16, in a child process stopped after timeout_s. On a CPU the child
    does not compile (torch.compile passes the functions through): that only runs the same path."""
    from gpu_check_parity import write_frames
    name = "sam2.1_hiera_t"
    n = MEMORY_FRAMES + 1 + (2 if ctx.quick else 20)  # memory bank full, one warm-up frame, then timed
    frames = write_frames(ctx.tmp / f"vos_{n}", n)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    cmd = [sys.executable, str(Path(__file__).resolve()), "vos", str(ctx.ckpt(name)), str(ctx.size),
           str(ctx.device), str(frames)]
    t = time.monotonic()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"status": "skipped", "passed": None, "summary": f"not measured: build, compile and tracking ran past "
                f"{timeout_s:.0f} s (torch.compile mode=max-autotune)", "timeout_s": timeout_s}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "skipped", "passed": None, "summary": f"the compiled reference did not run: {err[:300]}"}
    res = json.loads(lines[-1])
    res.update(model=name, imgsz=ctx.size, wall_s=time.monotonic() - t, compiled=ctx.device.type == "cuda",
               passed=None)
    res["summary"] = (f"{res['ms_per_frame']:.1f} ms/frame ({1e3 / res['ms_per_frame']:.1f} fps), 1 object, "
                      f"{res['precision']}; build + first frame {res['first_frame_s']:.1f} s"
                      + ("" if res["compiled"] else "; compile disabled on CPU (path check only)"))
    return res


def vos_child(ckpt: str, size: int, device: str, frames: str) -> None:
    import sam2.utils.misc as misc
    from sam2.build_sam import build_sam2_video_predictor
    from reference import small_size_overrides
    from sam2cli.engine.device import autocast, precision_name
    from sam2cli.engine.postprocess import connected_components
    misc.get_connected_components = connected_components  # its CUDA extension is not built
    dev = torch.device(device)
    if dev.type != "cuda":  # compiling on a CPU takes minutes: run the same predictor uncompiled
        torch.compile = lambda fn=None, **kw: fn if fn is not None else (lambda f: f)
    t0 = time.perf_counter()
    extra = small_size_overrides(size) if size != 1024 else []
    p = build_sam2_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt, device=device, vos_optimized=True,
                                   hydra_overrides_extra=extra)
    times: List[float] = []
    with torch.inference_mode(), autocast(dev, True):
        state = p.init_state(frames)
        p.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=[[60, 120]], labels=[1])
        t = time.perf_counter()
        for _ in p.propagate_in_video(state):
            _sync(dev)
            now = time.perf_counter()
            times.append(now - t)
            t = now
    first = t - t0 - sum(times[1:])
    print(json.dumps({"ms_per_frame": statistics.median(times[MEMORY_FRAMES + 1:]) * 1e3, "first_frame_s": first,
                      "frames": len(times), "precision": precision_name(dev, True)}))


# ----------------------------------------------------------------------------- memory

def _frame_reader_class():
    from sam2cli.io.frames import FrameReader

    class GeneratedFrames(FrameReader):
        """n generated 480x640 frames, two discs circling (never files on disk)."""
        name = "generated"

        def __init__(self, n: int, hw=(480, 640)):
            self.n, self._hw = int(n), hw
            self.background = np.clip(np.random.default_rng(0).normal(90, 20, (*hw, 3)), 0, 255).astype(np.uint8)

        @property
        def length(self) -> int:
            return self.n

        def path_of(self, i: int) -> str:
            return f"generated frame {i}"

        def _read(self, i: int) -> np.ndarray:
            img = self.background.copy()
            h, w = self._hw
            for k, (cx, cy) in enumerate(disc_centres(i, self._hw)):
                cv2.circle(img, (cx, cy), h // 10, (230, 60 * k, 20), -1)
            return img

    return GeneratedFrames


def disc_centres(i: int, hw=(480, 640)):
    h, w = hw
    a = 2 * math.pi * i / 50
    return [(int(w * (0.3 + 0.15 * math.cos(a))), int(h * (0.5 + 0.2 * math.sin(a)))),
            (int(w * (0.7 - 0.15 * math.cos(a))), int(h * (0.5 - 0.2 * math.sin(a))))]


class _PeakRSS:
    """The process's peak resident memory while inside (sampled every 5 ms): the CPU's stand-in
    for torch.cuda.max_memory_allocated."""

    def __enter__(self):
        self.peak, self._stop = self._rss(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def memory(ctx) -> dict:
    """Peak memory tracking a long video is that of a short one: 600 frames against 150 (20
    against 5 with --quick), 2 objects, generated frames, bf16 on CUDA."""
    from sam2cli.engine.device import precision_name
    from sam2cli.engine.video_predictor import SAM2VideoPredictor
    dev, cuda = ctx.device, ctx.device.type == "cuda"
    half = cuda
    short, long = (5, 20) if ctx.quick else (150, 600)
    Frames = _frame_reader_class()
    predictor = SAM2VideoPredictor(overrides=dict(half=half), model=ctx.ours(ctx.ckpt("sam2.1_hiera_t")))
    peaks, fps = {}, {}
    for n in (short, long):
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
        with contextlib.nullcontext() if cuda else _PeakRSS() as rss:
            state = predictor.init_state(Frames(n))
            for k, (x, y) in enumerate(disc_centres(0)):
                predictor.add_new_points_or_box(state, frame_idx=0, obj_id=k + 1, points=[[x, y]], labels=[1])
            t, count = time.perf_counter(), 0
            for _, _, logits in predictor.propagate_in_video(state):
                count += 1
            _sync(dev)
            fps[n] = count / (time.perf_counter() - t)
            if count != n:
                raise AssertionError(f"{count} frames tracked of {n}")
            del state, logits
        peaks[n] = (torch.cuda.max_memory_allocated(dev) if cuda else rss.peak) / 2 ** 20
    ratio = peaks[long] / peaks[short]
    method = "torch.cuda.max_memory_allocated" if cuda else "process peak RSS (CPU stand-in)"
    return {"model": "sam2.1_hiera_t", "imgsz": ctx.size, "precision": precision_name(dev, half), "objects": 2,
            "method": method, "frames_short": short, "frames_long": long, "peak_mb_short": peaks[short],
            "peak_mb_long": peaks[long], "ratio": ratio, "fps_long": fps[long], "threshold_ratio": MEMORY_RATIO,
            "passed": bool(ratio <= MEMORY_RATIO),
            "summary": f"peak {peaks[long]:.0f} MB over {long} frames against {peaks[short]:.0f} MB over {short}: "
                       f"x{ratio:.3f} (<= {MEMORY_RATIO}), {method}"}


# ----------------------------------------------------------------------------- training

def train(ctx) -> dict:
    """One `sam2 train` optimiser step with half=True (image step, one corrective click): the loss
    and every parameter after the step are finite."""
    from rich.console import Console
    from sam2cli.cli.args import options_from, resolve
    from sam2cli.engine.device import precision_name
    from sam2cli.train.options import TrainOptions
    from sam2cli.train.trainer import Trainer
    from test_train import make_yolo
    if ctx.quick:
        model, imgsz, batch = "sam2_demo", 128, 2
    else:
        model, imgsz, batch = str(ctx.ckpt("sam2.1_hiera_t")), 1024, 4
    data = make_yolo(ctx.tmp / "yolo", n_train=batch, n_val=1, size=256)
    args = resolve([f"model={model}", f"data={data}", f"batch={batch}", "n_correct=1", "max_objects=2",
                    f"imgsz={imgsz}", "half=True", f"project={ctx.tmp / 'runs'}", f"device={ctx.device}"])
    trainer = Trainer(options_from(TrainOptions, args), Console(stderr=True, quiet=not ctx.verbose))
    t = time.perf_counter()
    logs = trainer.train_step(0, list(range(batch)), 0, 1000)
    _sync(ctx.device)
    seconds = time.perf_counter() - t
    loss = float(logs["core_loss"])
    params_finite = all(bool(torch.isfinite(p).all()) for p in trainer.model.parameters())
    passed = math.isfinite(loss) and params_finite
    name = "sam2_demo" if ctx.quick else "sam2.1_hiera_t"
    return {"model": name, "imgsz": imgsz, "batch": batch, "precision": precision_name(ctx.device, True),
            "core_loss": loss, "step_s": seconds, "params_finite": params_finite, "passed": passed,
            "summary": f"{name} at {imgsz}, batch {batch}: loss {loss:.4f}, step {seconds:.2f} s, "
                       f"parameters {'finite' if params_finite else 'NOT finite'}"}


# ----------------------------------------------------------------------------- ONNX Runtime

def onnx_cuda(ctx) -> dict:
    """ONNX Runtime's CUDA provider is measured only where onnxruntime-gpu is installed."""
    try:
        import onnxruntime as ort
        version, providers = ort.__version__, list(ort.get_available_providers())
    except ImportError:
        version, providers = None, []
    res = {"onnxruntime": version, "providers": providers, "provider_count": len(providers), "passed": None,
           "status": "skipped"}
    if "CUDAExecutionProvider" in providers:
        res["summary"] = ("CUDAExecutionProvider is present but not measured here: time an export with "
                          "`sam2 benchmark model=<export folder> device=cuda compare=pytorch`")
    else:
        res["summary"] = (f"not measured: onnxruntime {version or '(absent)'} has no CUDAExecutionProvider, and "
                          f"onnxruntime-gpu ({ORT_GPU_WHEEL}) cannot travel within the GPU machine's 64 MiB")
    return res


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "vos":
    vos_child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
