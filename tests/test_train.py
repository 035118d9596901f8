"""`sam2 train`: it learns (overfit), writes official-format checkpoints Meta's code loads, resumes,
and a 2-process DDP run equals one process with the same global batch."""

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from rich.console import Console

from sam2cli.cli.app import main
from sam2cli.cli.args import options_from, resolve
from sam2cli.train.options import TrainOptions


def make_yolo(root: Path, n_train=8, n_val=2, size=128, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            img = np.clip(rng.normal(100, 25, (size, size, 3)), 0, 255).astype(np.uint8)
            lines = []
            for _ in range(2):
                x, y = rng.integers(4, size // 2, 2)
                w, h = rng.integers(size // 6, size // 3, 2)
                cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)),
                              tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
                pts = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64) / size
                lines.append("0 " + " ".join(f"{v:.5f}" for v in pts.reshape(-1)))
            cv2.imwrite(str(root / "images" / split / f"{i}.png"), img)
            (root / "labels" / split / f"{i}.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: {{0: box}}\n")
    return root / "data.yaml"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_yolo(tmp_path_factory.mktemp("yolo"))


def train_args(data, tmp_path, *extra):
    args = resolve(["model=sam2_demo", f"data={data}", "batch=4", "n_correct=1", "val_samples=2", "imgsz=128",
                    "warmup_steps=1", "lr0=0.001", f"project={tmp_path / 'runs'}", *extra])
    return options_from(TrainOptions, args)


def test_loss_halves_when_overfitting_one_batch(data, tmp_path):
    from sam2cli.train.trainer import Trainer
    t = Trainer(train_args(data, tmp_path, "augment=False", "clip_grad=1.0"), Console(stderr=True))
    losses = [t.train_step(0, [0, 1, 2, 3], s, 10_000)["core_loss"] for s in range(40)]
    assert np.mean(losses[-5:]) <= 0.5 * np.mean(losses[:3]), losses


def test_train_writes_official_checkpoints_and_resumes(data, tmp_path, monkeypatch):
    from sam2cli.model.registry import registry
    from sam2cli.model.checkpoint import build_model
    monkeypatch.chdir(tmp_path)
    common = ["model=sam2_demo", f"data={data}", "batch=4", "n_correct=1", "val_samples=2", "imgsz=128",
              "project=runs"]
    assert main(["train", *common, "epochs=1"]) == 0
    run = tmp_path / "runs" / "train"
    best = torch.load(run / "weights" / "best.pt", weights_only=True)
    assert set(best) == {"model", "imgsz"} and best["imgsz"] == 128  # the official format, and the trained size
    model = build_model(None, run / "weights" / "best.pt", registry().values())
    assert model.cfg.name == "sam2_demo"
    assert (run / "results.png").stat().st_size > 0
    assert main(["train", *common, "epochs=2", "resume=True"]) == 0
    rows = list(csv.DictReader((run / "results.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"] and "val/miou_click" in rows[0]
    assert not (tmp_path / "runs" / "train2").exists()  # resumed in place


def test_malformed_dataset_fails_before_training(tmp_path, monkeypatch, capsys):
    root = tmp_path / "bad"
    make_yolo(root, 2, 1)
    (root / "labels" / "train" / "0.txt").write_text("0 0.1 0.1 1.7 0.2 0.3 0.4\n")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "model=sam2_demo", f"data={root / 'data.yaml'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "0.txt" in err and ":1" in err and len(err.splitlines()) == 1


def test_batch_sizes_not_matching_the_datasets_fail_before_any_output(data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "model=sam2_demo", f"data={data}", "batch=[4,8]"]) == 2
    err = capsys.readouterr().err.strip()
    assert "one per entry" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # no empty run directory left behind


def test_finetuned_official_checkpoint_loads_in_meta_code(tiny_ckpt, data, tmp_path, monkeypatch):
    pytest.importorskip("sam2")
    from reference import build_reference
    monkeypatch.chdir(tmp_path)
    assert main(["train", f"model={tiny_ckpt}", f"data={data}", "imgsz=128", "batch=2", "epochs=1", "n_correct=0",
                 "val_samples=1", "freeze=image_encoder", "project=runs"]) == 0
    best = tmp_path / "runs" / "train" / "weights" / "best.pt"
    ref = build_reference("sam2.1_hiera_t", best)  # strict load in Meta's builder
    tuned = torch.load(best, weights_only=True)["model"]
    before = torch.load(tiny_ckpt, weights_only=True)["model"]
    key = "sam_mask_decoder.iou_token.weight"
    assert not torch.equal(tuned[key], before[key])  # the decoder was trained
    assert torch.equal(ref.state_dict()[key], tuned[key])
    key = "image_encoder.trunk.patch_embed.proj.weight"
    assert torch.equal(tuned[key], before[key])  # frozen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # a one-process and a two-process training run (torchrun)
def test_ddp_two_processes_equal_one(data, tmp_path):
    script = tmp_path / "run_sam2.py"
    script.write_text("from sam2cli.cli.app import entry\nentry()\n")
    common = ["train", "model=sam2_demo", f"data={data}", "imgsz=128", "batch=4", "epochs=1", "n_correct=1",
              "val_samples=1", "device=cpu", "exist_ok=True"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, str(script), *common, f"project={tmp_path / 'single'}"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          f"--master_port={free_port()}", str(script), *common, f"project={tmp_path / 'ddp'}"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert two.returncode == 0, two.stderr[-2000:]
    a = torch.load(tmp_path / "single" / "train" / "weights" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "ddp" / "train" / "weights" / "last.pt", weights_only=True)["model"]
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    changed = max(float((a[k].float() - a[k].float().mean()).abs().max()) for k in a)
    assert worst <= 1e-4 and changed > 0, worst


def test_video_clips_train_the_memory(tmp_path, monkeypatch):
    """DAVIS-layout clips: every frame after the first is tracked from the memory bank, so a step
    updates the memory attention and encoder; validation reports J&F."""
    from sam2cli.train.scenes import write_davis_dataset
    from sam2cli.train.trainer import Trainer
    write_davis_dataset(tmp_path / "davis", n_videos=4, n_frames=4, size=128, seed=0, n_val=1)
    monkeypatch.chdir(tmp_path)
    args = train_args(tmp_path / "davis", tmp_path, "clip_len=3", "batch=2", "epochs=1", "val_samples=1")
    t = Trainer(args, Console(stderr=True))
    before = {k: v.clone() for k, v in t.model.state_dict().items() if k.startswith(("memory_attention", "memory_encoder"))}
    logs = t.train_step(0, [0, 1], 0, 10)
    assert np.isfinite(logs["core_loss"])
    after = t.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("memory_attention"))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("memory_encoder"))
    assert t.fit() == 0
    row = next(csv.DictReader((tmp_path / "runs" / "train" / "results.csv").open()))
    assert 0.0 <= float(row["val/JF"]) <= 1.0


def test_images_and_videos_train_together(data, tmp_path, monkeypatch):
    """data=videos,images: every step takes clips and images, so the memory learns to track while
    the decoder keeps seeing prompted images; validation reports J&F and both mIoUs."""
    from sam2cli.train.scenes import write_davis_dataset
    from sam2cli.train.schedule import step_parts
    from sam2cli.train.trainer import Trainer
    write_davis_dataset(tmp_path / "davis", n_videos=4, n_frames=4, size=128, seed=0, n_val=1)
    monkeypatch.chdir(tmp_path)
    args = train_args(f"[{tmp_path / 'davis'},{data}]", tmp_path, "clip_len=3", "batch=[2,3]", "epochs=1",
                      "val_samples=1", "freeze=[image_encoder]")
    t = Trainer(args, Console(stderr=True))
    assert t.videos == [True, False] and t.steps_per_epoch == 1  # 3 training videos, 2 per step
    parts = step_parts([len(d) for d in t.trains], t.batches, 0, 0, 0, 1)
    assert [len(p.items) for p in parts] == [2, 3]  # 2 clips and 3 images
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.train_step(0, parts, 0, 10)
    changed = {k.split(".")[0] for k, v in t.model.state_dict().items() if not torch.equal(before[k], v)}
    assert {"memory_attention", "memory_encoder", "sam_mask_decoder"} <= changed
    assert "image_encoder" not in changed
    assert t.fit() == 0
    row = next(csv.DictReader((tmp_path / "runs" / "train" / "results.csv").open()))
    assert {"val/J", "val/JF", "val/miou_click", "val/miou_box"} <= set(row)
