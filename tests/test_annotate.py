"""`sam2 annotate`: every box source end to end on a tiny generated dataset, with a random-weight SAM.

Random weights give random masks: the tests check structure (files, classes, coordinates, counts,
resume, shards, failures, JSON), never mask quality.
"""

import builtins
import io
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from rich.console import Console

from sam2cli.cli.args import options_from, resolve
from sam2cli.engine.annotate import job as ann
from sam2cli.engine.options import AnnotateOptions
from sam2cli.engine.annotate.detectors import LabelsDetector, TorchvisionDetector, build_detector, parse_torchvision
from sam2cli.engine.options import DetectorOptions
from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.coco_rle import rle_to_mask

SAM_IMGSZ = 128
SIZES = {"a.png": (96, 128), "b.png": (96, 96), "c.png": (64, 80), "d.png": (96, 96), "sub/e.png": (112, 96)}
DET = {"a": "0 0.3 0.3 0.3 0.3\n2 0.7 0.7 0.3 0.4\n", "b": "1 0.5 0.5 0.5 0.5\n", "d": "",
       "sub/e": "2 0.5 0.5 0.6 0.6 0.9\n"}  # c has no label file: no boxes


@pytest.fixture(autouse=True)
def load_sam_once(monkeypatch):
    """Each run loads the same random SAM: load it once for the module (saves ~1 s a run)."""
    from sam2cli.engine import loader
    real = loader.load_model

    def cached(model, device=None, imgsz=None):
        key = (str(model), str(device), imgsz)
        if key not in _SAM_CACHE:
            _SAM_CACHE[key] = real(model, device, imgsz)
        return _SAM_CACHE[key]

    monkeypatch.setattr(loader, "load_model", cached)


_SAM_CACHE: dict = {}


@pytest.fixture
def ds(tmp_path):
    """ds/images (5 PNGs, one in a subfolder) and ds/boxes (YOLO detection labels)."""
    rng = np.random.default_rng(0)
    for name, (h, w) in SIZES.items():
        img = np.full((h, w, 3), 40, np.uint8)
        for _ in range(2):
            x, y = rng.integers(0, w // 2), rng.integers(0, h // 2)
            img[y:y + h // 3, x:x + w // 3] = rng.integers(60, 255, 3)
        p = tmp_path / "ds" / "images" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(p), img)
    for stem, text in DET.items():
        p = tmp_path / "ds" / "boxes" / f"{stem}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path / "ds"


def run(ds, tiny_ckpt, *argv, detector=None):
    out = io.StringIO()
    args = resolve([f"data={ds / 'images'}", f"sam_model={tiny_ckpt}", "device=cpu", *argv])
    rc = ann.run_annotate(options_from(AnnotateOptions, args), Console(file=out, width=300), detector=detector,
                          sam_imgsz=SAM_IMGSZ)
    return rc, out.getvalue()


def labels(root):
    return {p.relative_to(root).as_posix(): p.read_text().splitlines() for p in sorted(Path(root).rglob("*.txt"))}


def check_lines(lines, allowed_classes):
    for line in lines:
        vals = line.split()
        assert int(vals[0]) in allowed_classes
        xy = np.array(vals[1:], float)
        assert len(xy) >= 6 and len(xy) % 2 == 0
        assert (xy >= 0).all() and (xy <= 1).all()


def test_det_labels_end_to_end(ds, tiny_ckpt):
    rc, log = run(ds, tiny_ckpt, f"det_labels={ds / 'boxes'}", "save_json=True")
    assert rc == 0, log
    got = labels(ds / "labels")  # default output_dir: images -> labels
    assert set(got) == {"a.txt", "b.txt", "c.txt", "d.txt", "sub/e.txt"}
    assert got["c.txt"] == [] and got["d.txt"] == []  # no detections -> empty file
    check_lines(got["a.txt"], {0, 2})
    check_lines(got["b.txt"], {1})
    check_lines(got["sub/e.txt"], {2})
    n_lines = sum(len(v) for v in got.values())
    m = re.search(r"5 image\(s\) annotated, (\d+) object\(s\), (\d+) empty, (\d+) dropped mask\(s\), 0 failure", log)
    assert m, log
    assert int(m[1]) == n_lines and int(m[1]) + int(m[3]) == 4  # 4 boxes: each a line or counted as dropped
    assert int(m[2]) == sum(1 for v in got.values() if not v)
    coco = json.loads((ds / "labels" / "annotations.json").read_text())
    assert [im["file_name"] for im in coco["images"]] == ["a.png", "b.png", "c.png", "d.png", "sub/e.png"]
    assert len({im["id"] for im in coco["images"]}) == 5
    assert len(coco["annotations"]) == n_lines
    assert {c["id"] for c in coco["categories"]} >= {a["category_id"] for a in coco["annotations"]}
    for a in coco["annotations"]:
        im = next(i for i in coco["images"] if i["id"] == a["image_id"])
        mask = rle_to_mask(a["segmentation"])
        assert mask.shape == (im["height"], im["width"]) and mask.sum() == a["area"] > 0
    assert not list((ds / "labels").rglob(".*.tmp*"))


def test_classes_filter_and_output_dir(ds, tiny_ckpt, tmp_path):
    rc, log = run(ds, tiny_ckpt, f"det_labels={ds / 'boxes'}", "classes=[2]", f"output_dir={tmp_path / 'out'}")
    assert rc == 0, log
    got = labels(tmp_path / "out")
    assert len(got) == 5 and got["b.txt"] == []  # b's only box is class 1
    check_lines([line for v in got.values() for line in v], {2})


def test_resume_after_interrupted_run(ds, tiny_ckpt):
    rc, _ = run(ds, tiny_ckpt, f"det_labels={ds / 'boxes'}")
    out = ds / "labels"
    kept = {p: p.stat().st_mtime_ns for p in (out / "b.txt", out / "c.txt", out / "d.txt")}
    (out / "a.txt").unlink()
    (out / "sub" / "e.txt").unlink()
    (out / ".a.tmp0badc0de.txt").write_text("0 0.1 0.1")  # what a killed atomic write leaves
    (out / ".zz.tmp0badc0de.txt").write_text("")  # not this job's file: left alone
    rc, log = run(ds, tiny_ckpt, f"det_labels={ds / 'boxes'}")
    assert rc == 0 and "2 image(s) annotated" in log and "3 already labelled" in log, log
    assert (out / "a.txt").is_file() and (out / "sub" / "e.txt").is_file()
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert not (out / ".a.tmp0badc0de.txt").exists() and (out / ".zz.tmp0badc0de.txt").exists()
    rc, log = run(ds, tiny_ckpt, f"det_labels={ds / 'boxes'}", "overwrite=True")
    assert "5 image(s) annotated" in log


def test_shards_cover_the_dataset_exactly_once(ds, tiny_ckpt, tmp_path):
    seen = []
    for i in range(3):
        rc, log = run(ds, tiny_ckpt, f"det_labels={ds / 'boxes'}", f"shard={i}/3", f"output_dir={tmp_path / str(i)}")
        assert rc == 0, log
        seen += list(labels(tmp_path / str(i)))
    assert sorted(seen) == ["a.txt", "b.txt", "c.txt", "d.txt", "sub/e.txt"]
    rels = [Path(f"dir{k % 7}/img{k}.jpg") for k in range(300)]  # and at scale: balanced, stable
    counts = np.bincount([ann.shard_of(r, 3) for r in rels], minlength=3)
    assert counts.sum() == 300 and counts.min() > 70
    assert [ann.shard_of(r, 3) for r in rels] == [ann.shard_of(r, 3) for r in reversed(rels)][::-1]


def test_corrupt_image_is_reported_and_skipped(ds, tiny_ckpt):
    (ds / "images" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    rc, log = run(ds, tiny_ckpt, f"det_labels={ds / 'boxes'}")
    assert rc == 1
    assert "bad.png" in log and "1 failure(s)" in log and "5 image(s) annotated" in log
    assert set(labels(ds / "labels")) == {"a.txt", "b.txt", "c.txt", "d.txt", "sub/e.txt"}


class FixedMasks:
    """A stand-in predictor returning given masks, to pin down the polygon rules."""

    def __init__(self, masks):
        self.masks, self.calls = masks, []

    def set_image(self, rgb):
        self.calls.append("set_image")

    def predict(self, box=None, multimask_output=False):
        self.calls.append(len(box))
        m = self.masks[:, None]
        return (m[0], None, None) if len(m) == 1 else (m, None, None)


def test_multipart_mask_keeps_its_largest_part_and_unusable_masks_are_dropped():
    big_small = np.zeros((50, 100), bool)
    big_small[10:40, 10:50] = True  # 40 x 30: the largest part
    big_small[20:25, 80:85] = True
    dot = np.zeros((50, 100), bool)
    dot[5, 5] = True
    masks = np.stack([big_small, np.zeros((50, 100), bool), dot])
    dets = (np.array([[0, 0, 99, 49]] * 3, np.float32), np.array([7, 3, 4]), np.ones(3, np.float32))
    pred = FixedMasks(masks)
    lines, records, stats = ann.segment(pred, np.zeros((50, 100, 3), np.uint8), dets, save_json=True)
    assert pred.calls == ["set_image", 3]  # encoded once, all boxes in one batch
    assert stats == {"detections": 3, "objects": 1, "dropped": 2}
    assert len(lines) == 1 and lines[0].split()[0] == "7"
    xy = np.array(lines[0].split()[1:], float).reshape(-1, 2) * [100, 50]
    assert xy[:, 0].min() == pytest.approx(10) and xy[:, 0].max() == pytest.approx(49)
    assert xy[:, 1].min() == pytest.approx(10) and xy[:, 1].max() == pytest.approx(39)
    assert len(records) == 1 and records[0]["area"] == 40 * 30 + 25
    one = FixedMasks(big_small[None])  # a single box: the predictor drops the leading N
    assert len(ann.segment(one, np.zeros((50, 100, 3), np.uint8), (dets[0][:1], dets[1][:1], dets[2][:1]))[0]) == 1
    assert ann.segment(one, np.zeros((50, 100, 3), np.uint8), (np.zeros((0, 4)), np.zeros(0), np.zeros(0)))[0] == []


def test_labels_reader(ds):
    det = LabelsDetector(ds / "boxes")
    boxes, cls, conf = det(np.zeros((96, 128, 3), np.uint8), Path("a.png"))
    np.testing.assert_allclose(boxes[0], [128 * 0.15, 96 * 0.15, 128 * 0.45, 96 * 0.45], rtol=1e-5)
    assert cls.tolist() == [0, 2] and conf.tolist() == [1.0, 1.0]
    assert len(det(np.zeros((8, 8, 3), np.uint8), Path("c.png"))[0]) == 0  # no file: no boxes
    (ds / "boxes" / "b.txt").write_text("1 0.5 0.5 0.5 0.5\n1 0.5 0.5\n")
    with pytest.raises(UsageError, match=r"b\.txt line 2"):
        det(np.zeros((8, 8, 3), np.uint8), Path("b.png"))


def test_argument_errors(ds, tiny_ckpt):
    with pytest.raises(UsageError, match="is also the output folder"):
        run(ds, tiny_ckpt, f"det_labels={ds / 'labels'}")
    with pytest.raises(UsageError, match="data= is required"):
        ann.run_annotate(options_from(AnnotateOptions, resolve([])), Console(file=io.StringIO()))
    with pytest.raises(UsageError, match="engine=bogus"):
        run(ds, tiny_ckpt, f"det_labels={ds / 'boxes'}", "engine=bogus")
    with pytest.raises(UsageError, match="classes="):
        run(ds, tiny_ckpt, f"det_labels={ds / 'boxes'}", "classes=[a]")
    (ds / "boxes" / "b.txt").write_text("1 0.5 0.5 0.5\n")  # raised through the prefetch thread
    with pytest.raises(UsageError, match=r"b\.txt line 1 has 4 values"):
        run(ds, tiny_ckpt, f"det_labels={ds / 'boxes'}")
    assert ann.default_output_dir(ds / "images" / "train") == (ds / "labels" / "train").resolve()
    assert ann.default_output_dir(ds / "photos") == (ds / "labels").resolve()


def test_missing_ultralytics_says_how_to_install(ds, monkeypatch, capsys):
    real = builtins.__import__

    def no_ultralytics(name, *a, **k):
        if name == "ultralytics" or name.startswith("ultralytics."):
            raise ImportError("No module named 'ultralytics'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ultralytics)
    from sam2cli.cli.app import main
    rc = main(["annotate", f"data={ds / 'images'}", "det_model=yolo11x.pt", "device=cpu"])
    err = capsys.readouterr().err
    assert rc == 2
    assert 'det_model=yolo11x.pt needs the ultralytics package: pip install "sam2cli[yolo]"' in err
    assert len(err.strip().splitlines()) == 1


def test_torchvision_detector_with_random_weights(ds, tiny_ckpt, tmp_path):
    name = "fasterrcnn_mobilenet_v3_large_320_fpn"
    torch.manual_seed(0)
    weights = tmp_path / "random.pth"
    torch.save(TorchvisionDetector(name, weights=None).model.state_dict(), weights)
    assert parse_torchvision(f"{name}:{weights}") == (name, str(weights))
    assert parse_torchvision(f"/w/{name}_coco-0123abcd.pth") == (name, f"/w/{name}_coco-0123abcd.pth")
    assert parse_torchvision("yolo11x.pt") is None
    rc, log = run(ds, tiny_ckpt, f"det_model={name}:{weights}", "conf=0.0", "max_det=3", "save_json=True")
    assert rc == 0, log
    got = labels(ds / "labels")
    assert len(got) == 5 and all(len(v) <= 3 for v in got.values())
    check_lines([line for v in got.values() for line in v], set(range(1, 91)))  # COCO category ids
    cats = json.loads((ds / "labels" / "annotations.json").read_text())["categories"]
    assert {"id": 1, "name": "person"} in cats


def test_torchvision_weights_missing_from_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    args = resolve(["det_model=fasterrcnn_mobilenet_v3_large_320_fpn", "device=cpu"])
    with pytest.raises(SAM2Error, match=r"not in the torchvision cache: download https://\S+ to .*hub"):
        build_detector(options_from(DetectorOptions, args))


def test_yolo_detector_from_a_random_ultralytics_model(ds, tiny_ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ultralytics"))
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    try:
        from ultralytics import YOLO
    except ImportError:
        pytest.skip('ultralytics is not installed (optional: pip install "sam2cli[yolo]")')
    monkeypatch.chdir(tmp_path)  # ultralytics may write next to the working directory
    YOLO("yolo11n.yaml").save(str(tmp_path / "yolo_random.pt"))
    rc, log = run(ds, tiny_ckpt, f"det_model={tmp_path / 'yolo_random.pt'}", "conf=0.0", "max_det=3", "imgsz=128")
    assert rc == 0, log
    got = labels(ds / "labels")
    assert len(got) == 5 and all(len(v) <= 3 for v in got.values())
    check_lines([line for v in got.values() for line in v], set(range(80)))
