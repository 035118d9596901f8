"""scripts/gpu_check.py --device cpu --quick: the GPU check's code paths, small, on this CPU.

Every section of the JSON holds numbers, and the parity checks (ours against the reference on
random-weight official-format checkpoints) pass their thresholds here too.
"""

import json
import numbers
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sam2", reason="the reference (pip install sam2==1.1.0) is needed for parity")

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("env", "parity_image", "parity_everything", "parity_video", "speed", "memory", "train", "onnx")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--device", "cpu", "--quick",
                           "--out", str(out)], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert out.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc


def numbers_in(record: dict) -> list:
    return [k for k, v in record.items() if isinstance(v, numbers.Number) and not isinstance(v, bool)]


def test_every_section_has_figures(report):
    data, proc = report
    assert "sam2cli GPU check" in proc.stdout  # the table
    for section in SECTIONS:
        assert data[section], f"{section} is empty"
        for key, rec in data[section].items():
            assert rec["status"] != "error", (section, key, rec.get("error"))
            assert len(numbers_in(rec)) >= 2, (section, key, rec)  # its seconds and at least one figure
    assert data["env"]["versions"]["cpu_count"] >= 1 and data["env"]["versions"]["device"] == "cpu"


def test_parity_passes_its_thresholds(report):
    data, _ = report
    image = data["parity_image"]
    assert {"sam2.1_hiera_t/fp32", "sam2.1_hiera_t/bf16"} <= set(image)
    for key, rec in image.items():
        assert rec["status"] == "passed" and rec["nontrivial"], (key, rec)
        assert rec["min_iou"] >= rec["threshold_iou"], (key, rec)
    assert image["sam2.1_hiera_t/fp32"]["max_logit_diff"] <= 1e-3
    assert image["sam2.1_hiera_t/bf16"]["precision"] == "bf16"  # the bf16 path really ran
    everything = data["parity_everything"]["sam2.1_hiera_t/fp32"]
    assert everything["status"] == "passed" and everything["masks"] == everything["ref_masks"] > 0
    video = data["parity_video"]["sam2.1_hiera_t/fp32"]
    assert video["status"] == "passed" and video["mean_iou"] >= 0.995 and video["frame_objects"] > 0


def test_speed_memory_train_onnx(report):
    data, proc = report
    s = data["speed"]["sam2.1_hiera_t/fp32"]
    for k in ("embed_ms", "ref_embed_ms", "decode_ms", "ref_decode_ms", "track1_fps", "ref_track3_fps"):
        assert s[k] > 0, (k, s)
    assert data["speed"]["sam2.1_hiera_t/vos_optimized"]["status"] in ("reported", "skipped")
    m = data["memory"]["tracking"]
    assert m["frames_long"] == 4 * m["frames_short"] and m["peak_mb_long"] > 0
    t = data["train"]["step"]
    assert t["status"] == "passed" and t["precision"] == "bf16" and t["params_finite"]
    assert "CUDAExecutionProvider" in data["onnx"]["cuda"]["summary"]
    summary = data["summary"]
    assert summary["passed"] == (proc.returncode == 0) and summary["passed"] == (not summary["failed"])
