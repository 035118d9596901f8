"""Device and precision choice: cuda, then mps, then cpu, unless the user names one."""

import contextlib

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


def half_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the device supports it (CPU, recent CUDA), else fp16."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16 if device.type in ("cuda", "cpu") else torch.float16


def autocast(device: torch.device, half: bool):
    """An autocast context for half precision, or a no-op for fp32."""
    if not half:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=half_dtype(device))
