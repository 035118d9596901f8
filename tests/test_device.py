"""Device choice and half precision."""

import numpy as np
import pytest
import torch

from sam2cli.engine.device import half_dtype, select_device
from sam2cli.errors import UsageError


def test_auto_device_falls_back_to_cpu_without_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert select_device(None) == torch.device("cpu") and select_device("") == torch.device("cpu")


@pytest.mark.parametrize("name", ["0", "cuda", "cuda:1"])
def test_asking_for_a_missing_gpu_is_a_usage_error(name, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="no CUDA GPU"):
        select_device(name)


def test_unknown_device_name():
    with pytest.raises(UsageError, match="not a device"):
        select_device("tpu")


def test_cpu_half_is_bf16():
    assert half_dtype(torch.device("cpu")) == torch.bfloat16


def test_half_precision_masks_agree_with_fp32(tiny_ckpt):
    """bf16 autocast on CPU: masks within IoU 0.98 of our fp32 masks."""
    from sam2cli import SAM
    rng = np.random.default_rng(0)
    img = (rng.random((240, 320, 3)) * 255).astype(np.uint8)
    img[60:180, 80:240] = (220, 30, 30)
    prompts = dict(points=[[160, 120], [20, 20]], labels=[1, 1])
    full = SAM(str(tiny_ckpt), device="cpu", imgsz=512)(img, **prompts)[0].masks.data
    half = SAM(str(tiny_ckpt), device="cpu", imgsz=512, half=True)(img, **prompts)[0].masks.data
    for a, b in zip(full, half):
        union = (a | b).sum()
        assert union == 0 or (a & b).sum() / union >= 0.98
