"""`sam2 benchmark`: the rows it prints (fields and sane values), the side-by-side comparison with
the reference, its missing-reference error, and a clean stdout in json mode. No timing thresholds:
the benchmark itself is the proof of speed."""

import json
import sys

import pytest

from sam2cli.cli.app import main
from sam2cli.engine.benchmark import job as benchmark
from sam2cli.engine.benchmark.job import FIGURES

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


# ----------------------------------------------------------------------------- an ONNX export folder

EXPORT_FAST = ["runs=1", "warmup=0", "points_per_side=2", "device=cpu"]  # an export runs at its own imgsz


@pytest.fixture(scope="module")
def demo_export(tmp_path_factory):
    """The demo model exported to ONNX (384 px, about 2 s); its checkpoint resolves from the weights folder."""
    pytest.importorskip("onnxruntime")
    from sam2cli.engine.export.job import ExportOptions, export_onnx
    return export_onnx(ExportOptions(model="sam2_demo.pt", output=str(tmp_path_factory.mktemp("x") / "demo_onnx")),
                       log=lambda s: None)


def test_compare_pytorch_is_for_export_folders(capsys):
    assert main(["benchmark", "model=sam2.1_hiera_t", "compare=pytorch", *FAST]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "compare=pytorch times an ONNX export folder" in err and "compare=reference" in err


def test_export_compare_reference_times_onnx_pytorch_and_reference(demo_export, monkeypatch, capsys):
    """compare=reference on an export folder times three implementations on the same weights:
    ONNX Runtime, our PyTorch path and the reference. The demo model has no reference config, so a
    stand-in plays the reference (its own weights, fixed 2 ms steps); the real one is in the slow test."""
    import time
    from sam2cli.engine.loader import count_params, load_model
    made = []

    class StandIn:
        name = "reference"

        def __init__(self, cfg_name, ckpt, imgsz, device, half, multimask):
            made.append((cfg_name, str(ckpt), imgsz))
            self.net = load_model(ckpt, device, imgsz)[0]

        def params(self):
            return count_params(self.net)

        def encode(self, x):
            return self.net.encode_image(x)

        def embed(self, *args, **kw):
            time.sleep(0.002)
        decode = everything = embed

        def track(self, clip, points):
            return [0.002] * len(list(clip.iterdir()))
    monkeypatch.setattr(benchmark, "Reference", StandIn)
    monkeypatch.setattr(benchmark, "_ref_config", lambda name: name)
    monkeypatch.setattr(benchmark, "reference_available", lambda: True)
    rc = main(["benchmark", f"model={demo_export}", "compare=reference", "format=jsonl", *EXPORT_FAST])
    out, err = capsys.readouterr()
    assert rc == 0, err
    (row,) = rows_of(out)
    source = benchmark.export_source(demo_export, benchmark.load_model(demo_export)[0].manifest)
    assert made == [("sam2_demo", str(source), 384)]  # the checkpoint the folder came from, at its size
    assert row["backend"] == "onnxruntime" and row["precision"] == "fp32" and row["source"] == str(source)
    check_ours(row)
    for prefix, ratio in (("pytorch_", "ratio_pytorch_"), ("ref_", "ratio_")):
        for k in TIMES + ("gflops", "params_m"):
            assert row[prefix + k] > 0, prefix + k
            assert row[ratio + k] == pytest.approx(row[prefix + k] / row[k])
        assert row[ratio + "params_m"] == pytest.approx(1.0)  # the same weights on every side
        assert row[ratio + "gflops"] == pytest.approx(1.0)  # an export's FLOPs: its architecture's
        assert row[ratio + "size_mb"] == pytest.approx(source.stat().st_size / 1e6 / row["size_mb"])
    # the table: one line per implementation and per ratio
    import io
    from rich.console import Console
    buf = io.StringIO()
    Console(file=buf, width=300).print(benchmark.table([row], compare=True))
    out = buf.getvalue()
    for label in ("onnxruntime fp32", "sam2cli pytorch", "reference", "pytorch / onnx", "ref / onnx"):
        assert label in out, label


def test_export_source_must_be_the_exported_checkpoint(demo_export, tmp_path, capsys):
    """The PyTorch side runs the checkpoint beside the folder (else by name), only if its SHA-256 is
    the one the export recorded; a missing one is one line too."""
    import shutil
    import yaml
    folder = tmp_path / "demo_onnx"
    shutil.copytree(demo_export, folder)
    (tmp_path / "sam2_demo.pt").write_bytes(b"another checkpoint")
    assert main(["benchmark", f"model={folder}", "compare=pytorch", *EXPORT_FAST]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "is not the checkpoint" in err, err
    meta = yaml.safe_load((folder / "sam2.yaml").read_text())
    meta["source"] = "nowhere_demo.pt"
    (folder / "sam2.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    assert main(["benchmark", f"model={folder}", "compare=pytorch", *EXPORT_FAST]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "exported from nowhere_demo.pt" in err, err


@pytest.mark.slow
def test_export_against_the_real_reference(tiny_ckpt, capsys):
    """SAM 2.1 tiny (random weights) exported at 128 px beside its checkpoint, timed with the reference."""
    pytest.importorskip("sam2.build_sam", reason="the reference (pip install sam2==1.1.0) is not installed")
    pytest.importorskip("onnxruntime")
    from sam2cli.engine.export.job import ExportOptions, export_onnx
    folder = export_onnx(ExportOptions(model=str(tiny_ckpt), imgsz=128), log=lambda s: None)
    assert folder == tiny_ckpt.parent / f"{tiny_ckpt.stem}_onnx"
    rc = main(["benchmark", f"model={folder}", "compare=reference", "format=jsonl", *EXPORT_FAST])
    out, err = capsys.readouterr()
    assert rc == 0, err
    (row,) = rows_of(out)
    assert row["source"] == str(tiny_ckpt)
    for k in TIMES:
        assert row[f"ref_{k}"] > 0 and row[f"pytorch_{k}"] > 0
        assert row[f"ratio_{k}"] == pytest.approx(row[f"ref_{k}"] / row[k])
