"""One command that proves sam2cli's CUDA path against Meta's reference and measures it.

    bash scripts/gpu_wheels.sh                       # here, with a network: the wheels into .whl/
    python3 scripts/gpu_check.py --out gpu_check.json    # on the GPU machine (carry .whl)
    python scripts/gpu_check.py --device cpu --quick     # the same code paths, small, on a CPU

On a machine without the reference and its dependencies the script installs the wheels of
`.whl/` first (what scripts/gpu_wheels.sh downloads), as this one-liner does by hand:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site

and puts /tmp/site on sys.path after this checkout, so the checkout's sam2cli is what is tested.

Checks (each independent: an error is recorded with its line and the next check runs):
1. env: torch, CUDA, GPU name and memory, TF32 settings.
2. parity on this device against the reference on this device, random-weight checkpoints in
   the official format (tests/reference.py): the image predictor, 2.1 tiny and large at 1024,
   fp32 (mask IoU >= 0.999, logits within 1e-3; TF32 off on both sides) and bf16 autocast on
   both sides (IoU >= 0.98); segment-everything, tiny (same count, matched IoU >= 0.99 in
   fp32); video tracking, tiny: objects added mid-video, a refinement click, both directions
   (mean IoU >= 0.995 in fp32, the bf16 figure reported).
3. speed, ours against the reference in the same precision (bf16 and fp32), t, b+ and l at
   1024 (`sam2 benchmark compare=reference`), and the reference's compiled video predictor
   (`vos_optimized=True`) where it compiles within the time left.
4. memory: peak GPU memory tracking 600 generated frames <= 1.1x that of 150.
5. train: one `sam2 train` step with half=True, finite loss.
6. onnx: ONNX Runtime's CUDA provider, where onnxruntime-gpu is installed (one line otherwise).

`--quick` runs the same checks small (2.1 tiny at 256, few frames, one timing round; bf16 only on
the smallest cases, forced on a CPU without native bf16 so that the bf16 path really runs).
It prints a table and writes every figure to `--out` (JSON). Exit code 1 if a check failed its
threshold, raised, or was not reached within `--budget` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

T0 = time.monotonic()  # the budget counts from here: installing the wheels included
ROOT = Path(__file__).resolve().parents[1]
SITE = Path("/tmp/site")
NEEDED = ("sam2", "hydra", "iopath", "av", "pycocotools")  # the reference, its dependencies, and sam2cli's
SECTIONS = ("env", "parity_image", "parity_everything", "parity_video", "speed", "memory", "train", "onnx")


def bootstrap() -> None:
    """This checkout first on sys.path, then /tmp/site (installing .whl/ there if a module is
    missing), then tests/ (its checkpoint builder and tests/reference.py, the reference's)."""
    sys.path[:0] = [str(ROOT)] + ([str(SITE)] if SITE.is_dir() else []) + [str(ROOT / "tests")]
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    wheels = sorted((ROOT / ".whl").glob("*.whl"))
    if missing and wheels:
        print(f"installing {len(wheels)} wheels from .whl/ into {SITE} ({', '.join(missing)} missing)", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", str(SITE), *map(str, wheels)], check=True)
        if str(SITE) not in sys.path:
            sys.path.insert(1, str(SITE))
        importlib.invalidate_caches()


def one_line(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    where = f" ({Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300] if text else ''}{where}"


class Runner:
    """Runs checks one by one, recording each result (or its error) under its section."""

    def __init__(self, budget: float, verbose: bool):
        self.t0, self.budget, self.verbose = T0, budget, verbose
        self.results = {s: {} for s in SECTIONS}

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def left(self) -> float:
        return float("inf") if not self.budget else self.budget - self.elapsed()

    def run(self, section: str, key: str, fn, *args) -> dict:
        print(f"[{self.elapsed():6.1f} s] {section} {key} ...", file=sys.stderr, flush=True)
        t = time.monotonic()
        if self.left() <= 0:
            rec = {"status": "not run", "error": f"out of the time budget ({self.budget:.0f} s)"}
        else:
            try:
                rec = dict(fn(*args))
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:  # pytest's Skipped (tests/reference.py) is a BaseException
                rec = {"status": "error", "error": one_line(e)}
                if self.verbose:
                    traceback.print_exc()
        if "status" not in rec:
            rec["status"] = {True: "passed", False: "failed", None: "reported"}[rec.get("passed")]
        rec["seconds"] = time.monotonic() - t
        self.results[section][key] = rec
        print(f"[{self.elapsed():6.1f} s] {section} {key}: {rec['status']} {rec.get('summary') or rec.get('error', '')}",
              file=sys.stderr, flush=True)
        _free()
        return rec

    def failures(self):
        return [f"{s}/{k}" for s in SECTIONS for k, r in self.results[s].items()
                if r["status"] in ("failed", "error", "not run")]


def _free() -> None:
    import torch
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextlib.contextmanager
def cpu_bf16(force: bool):
    """--quick on a CPU without native bf16: sam2cli would run half=True as fp32 there; make it
    run bf16 (emulated, slow, small sizes only) so that the bf16 path is the one checked."""
    import sam2cli.engine.device as d
    if not force or d.cpu_has_fast_bf16():
        yield "native" if d.cpu_has_fast_bf16() else "fp32 (half=True runs fp32 on this CPU)"
        return
    original = d.cpu_has_fast_bf16
    d.cpu_has_fast_bf16 = lambda: True
    try:
        yield "emulated bf16 (forced for --quick)"
    finally:
        d.cpu_has_fast_bf16 = original


def environment(device, quick: bool) -> dict:
    import numpy
    import torch
    import sam2cli
    from sam2cli.engine.device import cpu_description
    env = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           "numpy": numpy.__version__, "device": str(device), "quick": quick, "cpu": cpu_description(),
           "cpu_count": os.cpu_count(), "sam2cli": str(Path(sam2cli.__file__).parent)}
    try:
        from importlib.metadata import version
        env["reference"] = f"sam2 {version('sam2')}"
    except Exception as e:  # noqa: BLE001 - recorded, the parity checks then say why they fail
        env["reference"] = f"absent ({one_line(e)})"
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        env.update(gpu=p.name, gpu_memory_gb=p.total_memory / 2 ** 30, capability=f"{p.major}.{p.minor}",
                   gpu_count=torch.cuda.device_count(), tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
                   tf32_cudnn=torch.backends.cudnn.allow_tf32, bf16_supported=torch.cuda.is_bf16_supported())
    env["passed"] = None
    env["summary"] = (f"torch {env['torch']}, CUDA {env['cuda']}, "
                      + (f"{env['gpu']} {env['gpu_memory_gb']:.0f} GiB" if "gpu" in env else f"CPU {env['cpu']}"))
    return env


def plan(quick: bool):
    """(section, key, check name, args) in the order they run: proofs first, timings last."""
    t, b, l = "sam2.1_hiera_t", "sam2.1_hiera_b+", "sam2.1_hiera_l"
    image_models = [t] if quick else [t, l]
    steps = [("parity_image", f"{m}/{p}", "image", (m, p == "bf16")) for m in image_models for p in ("fp32", "bf16")]
    steps += [("parity_everything", f"{t}/{p}", "everything", (p == "bf16",)) for p in (("fp32",) if quick else ("fp32", "bf16"))]
    steps += [("parity_video", f"{t}/{p}", "video", (p == "bf16",)) for p in (("fp32",) if quick else ("fp32", "bf16"))]
    steps += [("memory", "tracking", "memory", ()), ("train", "step", "train", ()), ("onnx", "cuda", "onnx", ())]
    for m in [t] if quick else [t, b, l]:
        steps += [("speed", f"{m}/{p}", "speed", (m, p == "bf16")) for p in (("fp32",) if quick else ("bf16", "fp32"))]
    steps.append(("speed", f"{t}/vos_optimized", "vos", ()))
    return steps


def print_tables(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console(file=sys.stdout, width=200, soft_wrap=False)
    table = Table(title="sam2cli GPU check")
    for c in ("section", "check", "status", "s", "result"):
        table.add_column(c, justify="right" if c == "s" else "left", overflow="fold")
    for s in SECTIONS:
        for key, r in results[s].items():
            table.add_row(s, key, r["status"], f"{r['seconds']:.1f}", r.get("summary") or r.get("error", ""))
    console.print(table)
    rows = [(k, r) for k, r in results["speed"].items() if r.get("embed_ms") is not None]
    if rows:
        t = Table(title="speed: ours / reference (ratio = reference time / ours)")
        for c in ("model", "precision", "impl", "embed ms", "decode ms", "everything ms", "track 1 fps", "track 3 fps",
                  "peak MB"):
            t.add_column(c, justify="left" if c in ("model", "precision", "impl") else "right")
        for key, r in rows:
            f = lambda v, d=1: "" if v is None else f"{v:.{d}f}"  # noqa: E731
            t.add_row(r["model"], r["precision"], "sam2cli", f(r["embed_ms"]), f(r["decode_ms"], 2),
                      f(r["everything_ms"], 0), f(r["track1_fps"]), f(r["track3_fps"]), f(r["peak_mem_mb"], 0))
            t.add_row("", "", "reference", f(r["ref_embed_ms"]), f(r["ref_decode_ms"], 2), f(r["ref_everything_ms"], 0),
                      f(r["ref_track1_fps"]), f(r["ref_track3_fps"]), f(r["ref_peak_mem_mb"], 0))
            x = lambda v: "" if v is None else f"x{v:.2f}"  # noqa: E731
            t.add_row("", "", "ratio", x(r["ratio_embed_ms"]), x(r["ratio_decode_ms"]), x(r["ratio_everything_ms"]),
                      x(r["ratio_track1_ms"]), x(r["ratio_track3_ms"]), x(r["ratio_peak_mem_mb"]), end_section=True)
        console.print(t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="cuda (default where present), cuda:N or cpu")
    ap.add_argument("--quick", action="store_true", help="the same checks on small sizes (CPU-friendly)")
    ap.add_argument("--out", default="gpu_check.json", help="the JSON file of every figure")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds after which remaining checks are not started (default 400; --quick: none)")
    ap.add_argument("--only", default="", help="comma-separated sections to run (env always runs)")
    ap.add_argument("--verbose", action="store_true", help="tracebacks and the benchmark's own log on stderr")
    a = ap.parse_args(argv)
    bootstrap()
    if a.quick and a.device == "cpu":  # small ops: one thread is as fast, and far faster on a shared CPU
        os.environ["OMP_NUM_THREADS"] = "1"  # also for the child process of the vos_optimized check
    import torch
    if a.quick and a.device == "cpu":
        torch.set_num_threads(1)
    from gpu_check_parity import Context
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    budget = a.budget if a.budget is not None else (0 if a.quick else 400)
    runner = Runner(budget, a.verbose)
    only = {s.strip() for s in a.only.split(",") if s.strip()}
    runner.run("env", "versions", environment, device, a.quick)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp, cpu_bf16(a.quick and device.type == "cpu") as mode:
        runner.results["env"]["versions"]["cpu_bf16"] = mode
        ctx = Context(device, a.quick, Path(tmp), log=lambda m: print(m, file=sys.stderr, flush=True))
        ctx.verbose = a.verbose
        for section, key, check, args in plan(a.quick):
            if not only or section in only:
                runner.run(section, key, _check(check, ctx, runner), *args)
    out = {s: runner.results[s] for s in SECTIONS}
    failures = runner.failures()
    out["summary"] = {"failed": failures, "passed": not failures, "wall_s": runner.elapsed(), "budget_s": budget,
                      "argv": sys.argv[1:] if argv is None else list(argv)}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1, default=str) + "\n")
    print_tables(runner.results)
    print(f"{'all checks passed' if not failures else 'FAILED: ' + ', '.join(failures)}; "
          f"{runner.elapsed():.0f} s; figures in {a.out}")
    return 1 if failures else 0


def _check(name: str, ctx, runner: Runner):
    """The check function for `name`, bound to the context (imported when it runs)."""
    def run(*args):
        if name in ("image", "everything", "video"):
            parity = importlib.import_module("gpu_check_parity")
            return getattr(parity, f"{name}_parity")(ctx, *args)
        ctx.release()  # memory and timings measure without the parity checks' models around
        perf = importlib.import_module("gpu_check_perf")
        if name == "vos":
            left = runner.left()
            if left < 60:
                return {"status": "skipped", "passed": None,
                        "summary": f"not measured: {max(left, 0):.0f} s of the budget left (compiling takes minutes)"}
            return perf.vos_speed(ctx, min(left - 10, 300))
        return {"speed": perf.speed, "memory": perf.memory, "train": perf.train, "onnx": perf.onnx_cuda}[name](ctx, *args)
    return run


if __name__ == "__main__":
    sys.exit(main())
