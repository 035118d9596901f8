"""Device and precision choice: cuda, then mps, then cpu, unless the user names one.

`half=True` asks for half precision, but half precision is only fast where the hardware computes
it: on a CPU without native bf16 (AVX2-only x86, most Arm chips) every bf16 matmul is emulated and
runs several times slower than fp32. There `half=True` runs fp32 and says so once on stderr.
"""

import contextlib
import functools
import logging
import os
import platform
from pathlib import Path
from typing import Optional

import torch

from sam2cli.errors import UsageError


def select_device(device=None) -> torch.device:
    """None/'' -> best available; '0' or 'cuda:1' -> that GPU; 'cpu'; 'mps'."""
    if isinstance(device, torch.device):
        return device
    name = "" if device is None else str(device).strip().lower()
    if name == "":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.isdigit():
        name = f"cuda:{name}"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"device={device} asked for CUDA, but no CUDA GPU is available here; use device=cpu.")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"device={device}: only {torch.cuda.device_count()} CUDA device(s) present.")
        return torch.device(name)
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UsageError("device=mps asked for Apple MPS, which is not available here; use device=cpu.")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise UsageError(f"device={device} is not a device; use cpu, mps, cuda, cuda:N or a GPU index like 0.")


def cpu_capability() -> str:
    """The SIMD level PyTorch's CPU kernels run at: 'AVX512', 'AVX2', 'DEFAULT', ..."""
    return torch.backends.cpu.get_cpu_capability()


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True where the CPU computes bf16 natively: AVX512-BF16 or AMX on x86, BF16 on Arm."""
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        hardware = any(getattr(torch.cpu, name, lambda: False)()
                       for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
        # ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA can hold PyTorch's kernels below what the chip has
        isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
        onednn = isa in ("ALL", "DEFAULT") or "BF16" in isa or "AMX" in isa
        return hardware and onednn and cpu_capability().startswith("AVX512")
    try:  # Linux on Arm lists the BF16 extension among the CPU's features
        return " bf16" in Path("/proc/cpuinfo").read_text().lower().replace("\t", " ")
    except OSError:
        return False


def cpu_description() -> str:
    """'AVX2, no native bf16' / 'AVX512, native bf16': what `sam2 info` and benchmarks print."""
    return cpu_capability() + (", native bf16" if cpu_has_fast_bf16() else ", no native bf16")


_warned_fp32 = False


def half_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the device supports it (CPU, recent CUDA), else fp16."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16 if device.type in ("cuda", "cpu") else torch.float16


def compute_dtype(device: torch.device, half: bool) -> Optional[torch.dtype]:
    """The half dtype that `half=True` actually runs on `device`, or None for fp32.

    A CPU without native bf16 gets fp32 (with one line on stderr, once per process)."""
    global _warned_fp32
    if not half:
        return None
    if device.type == "cpu" and not cpu_has_fast_bf16():
        if not _warned_fp32:
            _warned_fp32 = True
            logging.getLogger("sam2cli").warning(
                f"half=True: this CPU ({cpu_capability()}) has no native bf16, where bf16 is emulated and "
                "several times slower, so sam2cli runs fp32 instead")
        return None
    return half_dtype(device)


def precision_name(device: torch.device, half: bool) -> str:
    """What `half` means on `device`, for info and benchmark lines: 'fp32', 'bf16' or 'fp16'."""
    dtype = compute_dtype(device, half)
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def autocast(device: torch.device, half: bool):
    """An autocast context for the precision `half` gets on `device`, or a no-op for fp32."""
    dtype = compute_dtype(device, half)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
