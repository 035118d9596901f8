"""`sam2 benchmark`: the rows it prints (fields and sane values), the side-by-side comparison with
the reference, its missing-reference error, and a clean stdout in json mode. No timing thresholds:
the benchmark itself is the proof of speed."""

import json
import sys

import pytest

from sam2cli.cli.app import main
from sam2cli.engine import benchmark
from sam2cli.engine.benchmark import FIGURES

FAST = ["imgsz=128", "runs=1", "warmup=0", "points_per_side=2", "device=cpu"]
TIMES = ("embed_ms", "decode_ms", "everything_ms", "track1_ms", "track3_ms")


def rows_of(out: str):
    return [json.loads(line) for line in out.splitlines()]


def check_ours(row):
    for k in TIMES:
        assert row[k] > 0, k
    assert row["gflops"] > 0
    assert row["peak_mem_mb"] is not None and row["peak_mem_mb"] >= 0


def test_json_rows_random_and_checkpoint(tiny_ckpt, capsys):
    rc = main(["benchmark", f"model=sam2.1_hiera_t,{tiny_ckpt}", "format=jsonl", *FAST])
    out, err = capsys.readouterr()
    assert rc == 0, err
    rows = rows_of(out)  # every stdout line is one JSON object: nothing else on stdout
    assert [r["model"] for r in rows] == ["sam2.1_hiera_t", str(tiny_ckpt)]
    random_row, ckpt_row = rows
    for r in rows:
        assert set(FIGURES) <= set(r)
        assert r["params_m"] == pytest.approx(38.9, abs=0.2)
        assert r["imgsz"] == 128 and r["runs"] == 1 and r["device"] == "cpu"
        assert not any(k.startswith(("ref_", "ratio_")) for k in r)
        check_ours(r)
    assert random_row["weights"] == "random" and random_row["size_mb"] is None
    assert ckpt_row["size_mb"] == pytest.approx(tiny_ckpt.stat().st_size / 1e6)
    assert ckpt_row["gflops"] == pytest.approx(random_row["gflops"])  # weights do not change the cost
    assert "sam2.1_hiera_t" in err  # progress goes to stderr


def test_gflops_grow_with_imgsz():
    import torch
    model, _ = benchmark.load("sam2.1_hiera_t", torch.device("cpu"), 128)
    small = benchmark.encoder_gflops(model.encode_image, 128, torch.device("cpu"))
    model.set_image_size(256)
    assert benchmark.encoder_gflops(model.encode_image, 256, torch.device("cpu")) > 3 * small > 0


def test_table_on_stdout(capsys):
    assert main(["benchmark", "model=sam2.1_hiera_t", *FAST]) == 0
    out, _ = capsys.readouterr()
    assert "sam2.1_hiera_t" in out and "embed ms" in out and "track 3 obj" in out


def test_compare_reference_adds_ratios(capsys):
    pytest.importorskip("sam2.build_sam", reason="the reference (pip install sam2==1.1.0) is not installed")
    rc = main(["benchmark", "model=sam2.1_hiera_t", "compare=reference", "format=jsonl", *FAST])
    out, err = capsys.readouterr()
    assert rc == 0, err
    (row,) = rows_of(out)  # the reference's own progress bars stay off stdout
    check_ours(row)
    for k in TIMES + ("gflops", "params_m"):
        assert row[f"ref_{k}"] > 0, k
        assert row[f"ratio_{k}"] == pytest.approx(row[f"ref_{k}"] / row[k])
    assert row["ratio_params_m"] == pytest.approx(1.0)  # same checkpoint on both sides
    assert row["ratio_gflops"] == pytest.approx(1.0, rel=0.05)
    assert row["size_mb"] is None and row["ratio_size_mb"] is None


def test_missing_reference(monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "sam2" or m.startswith("sam2.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sam2", None)  # import sam2 -> ImportError
    assert main(["benchmark", "model=sam2.1_hiera_t", "compare=reference", *FAST]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "pip install" in err and "sam2==1.1.0" in err


def test_bad_compare(capsys):
    assert main(["benchmark", "model=sam2.1_hiera_t", "compare=yolo", *FAST]) == 2
    assert "compare=reference" in capsys.readouterr().err


def test_rows_say_which_precision_ran(monkeypatch, capsys):
    """half=True on a CPU without native bf16 is reported (and run) as fp32, with the CPU's level."""
    from sam2cli.engine import device
    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: False)
    rc = main(["benchmark", "model=sam2_demo.pt", "format=jsonl", "half=True", *FAST])
    out, err = capsys.readouterr()
    assert rc == 0, err
    (row,) = rows_of(out)
    assert row["half"] is True and row["precision"] == "fp32"
    assert row["cpu"] == f"{device.cpu_capability()}, no native bf16"
    check_ours(row)
