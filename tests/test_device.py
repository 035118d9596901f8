"""Device choice and half precision."""

import numpy as np
import pytest
import torch

from sam2cli.engine import device as device_mod
from sam2cli.engine.device import autocast, compute_dtype, half_dtype, precision_name, select_device
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


@pytest.fixture
def no_native_bf16(monkeypatch):
    """A CPU like an AVX2-only EPYC: bf16 would be emulated."""
    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: False)
    monkeypatch.setattr(device_mod, "_warned_fp32", False)


def test_half_falls_back_to_fp32_on_a_cpu_without_bf16(no_native_bf16, caplog):
    cpu = torch.device("cpu")
    with caplog.at_level("WARNING", logger="sam2cli"):
        assert compute_dtype(cpu, True) is None and precision_name(cpu, True) == "fp32"
        with autocast(cpu, True):
            assert not torch.is_autocast_enabled("cpu")
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
        compute_dtype(cpu, True)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, "the fallback is said once, not per call"
    assert "no native bf16" in lines[0] and "fp32" in lines[0]


def test_half_stays_bf16_on_a_cpu_with_native_bf16(monkeypatch, caplog):
    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: True)
    cpu = torch.device("cpu")
    with caplog.at_level("WARNING", logger="sam2cli"):
        assert compute_dtype(cpu, True) == torch.bfloat16 and precision_name(cpu, True) == "bf16"
        with autocast(cpu, True):
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    assert not caplog.records
    assert compute_dtype(cpu, False) is None and precision_name(cpu, False) == "fp32"


def test_the_cli_says_which_precision_it_runs(no_native_bf16, capsys, caplog):
    from sam2cli.cli.app import main
    with caplog.at_level("WARNING", logger="sam2cli"):
        assert main(["info", "model=sam2_demo.pt", "device=cpu", "half=True"]) == 0
    assert "no native bf16" in caplog.text  # the fallback, said once
    info = capsys.readouterr().err.strip().splitlines()[-1]
    assert info.endswith(", no native bf16), fp32"), info


def test_half_precision_masks_agree_with_fp32(tiny_ckpt, monkeypatch):
    """bf16 autocast on CPU: masks within IoU 0.98 of our fp32 masks (bf16 forced on, so the
    numerics are tested even on a CPU that would fall back to fp32)."""
    from sam2cli import SAM
    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: True)
    rng = np.random.default_rng(0)
    img = (rng.random((240, 320, 3)) * 255).astype(np.uint8)
    img[60:180, 80:240] = (220, 30, 30)
    prompts = dict(points=[[160, 120], [20, 20]], labels=[1, 1])
    full = SAM(str(tiny_ckpt), device="cpu", imgsz=512)(img, **prompts)[0].masks.data
    half = SAM(str(tiny_ckpt), device="cpu", imgsz=512, half=True)(img, **prompts)[0].masks.data
    for a, b in zip(full, half):
        union = (a | b).sum()
        assert union == 0 or (a & b).sum() / union >= 0.98
