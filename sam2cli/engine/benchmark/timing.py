"""Measuring for `sam2 benchmark`: median wall time after warm-up (device-synchronised), peak
memory above a baseline (CUDA allocator peak, else sampled process RSS), and encoder GFLOPs."""

import gc
import os
import statistics
import threading
import time
from typing import Any, Callable, Optional

import torch


def sync_device(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def median_ms(fn: Callable[[], Any], runs: int, warmup: int, device: torch.device) -> float:
    """Median wall time of fn() in ms over `runs` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        sync_device(device)
        t = time.perf_counter()
        fn()
        sync_device(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def _rss_bytes() -> Optional[int]:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class PeakMemory:
    """Peak memory (MB) above the level at entry: CUDA allocator peak, else sampled process RSS
    (falling back to the growth of getrusage's high-water mark where /proc is missing)."""

    def __init__(self, device: torch.device, interval: float = 0.005):
        self.device, self.interval = device, interval
        self.peak_mb: Optional[float] = None

    def __enter__(self):
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        self._base, self._peak, self._stop = _rss_bytes(), 0, threading.Event()
        if self._base is None:
            import resource
            self._base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            self._thread = None
            return self
        self._peak = self._base
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            rss = _rss_bytes()
            if rss is not None and rss > self._peak:
                self._peak = rss
            self._stop.wait(self.interval)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self._thread is None:
            import resource
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        else:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, _rss_bytes() or 0)
        self.peak_mb = max(peak - self._base, 0) / 1e6
        return False


def encoder_gflops(fn: Callable[[torch.Tensor], Any], imgsz: int, device: torch.device) -> float:
    """GFLOPs of one image-encoder call on a (1, 3, imgsz, imgsz) input (fp32, no autocast)."""
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.zeros(1, 3, imgsz, imgsz, device=device)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        fn(x)
    return counter.get_total_flops() / 1e9
