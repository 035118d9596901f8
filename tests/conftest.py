"""Make the repo root importable when sam2cli is not pip-installed."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    """A random-weight SAM 2.1 tiny checkpoint in the official format, every tensor perturbed.
    For fast CLI/engine tests run it at imgsz=256."""
    from sam2cli.model.registry import get_config
    from sam2cli.model.sam2 import SAM2Model

    torch.manual_seed(0)
    sd = SAM2Model(get_config("sam2.1_hiera_t")).state_dict()
    gen = torch.Generator().manual_seed(1)
    sd = {k: v + 0.02 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v for k, v in sd.items()}
    path = tmp_path_factory.mktemp("weights") / "sam2.1_t_random.pt"
    torch.save({"model": sd}, path)
    return path


@pytest.fixture(scope="module")
def frames_dir(request, tmp_path_factory):
    """A small JPEG clip (the test module's N_FRAMES, default 10, of 320 x 240): a red disc moving
    right and a blue square moving down on a noisy background."""
    import cv2
    import numpy as np
    d = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    for i in range(getattr(request.module, "N_FRAMES", 10)):
        img = np.clip(rng.normal(90, 20, (240, 320, 3)), 0, 255).astype(np.uint8)
        cv2.circle(img, (60 + 12 * i, 120), 35, (0, 0, 230), -1)
        cv2.rectangle(img, (200, 20 + 10 * i), (270, 90 + 10 * i), (230, 40, 20), -1)
        cv2.imwrite(str(d / f"{i}.jpg"), img)
    return d
