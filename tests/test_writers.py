"""Tests for the output writers (sam2cli.io.overlay, video_writer, yolo_labels, coco_rle, prediction_json,
mask_pngs, run_dir) and sam2cli.io.atomic (tiny arrays, a few video frames)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from sam2cli.core.results import Results
from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.atomic import atomic_path, write_bytes_atomic, write_text_atomic
from sam2cli.io.coco_rle import mask_to_rle, rle_to_mask
from sam2cli.io.mask_pngs import davis_palette, read_palette_png, save_mask_pngs
from sam2cli.io.overlay import object_color, overlay, save_overlay_image
from sam2cli.io.prediction_json import JsonArrayWriter, JsonlWriter, prediction_records
from sam2cli.io.run_dir import increment_dir
from sam2cli.io.video_writer import VideoWriter
from sam2cli.io.yolo_labels import write_yolo_txt, yolo_seg_lines


def _rect(h: int, w: int, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y1:y2, x1:x2] = True
    return m


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------------- atomic


def test_atomic_path_success_keeps_suffix(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "frame.png"
    with atomic_path(dest) as tmp:
        assert tmp.parent == dest.parent and tmp.name.startswith(".frame.tmp") and tmp.suffix == ".png"
        cv2.imwrite(str(tmp), np.zeros((4, 4), np.uint8))  # encoder picks the format from the suffix
        assert not dest.exists()
    assert dest.exists() and _files(dest.parent) == ["frame.png"]


def test_atomic_path_exception_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert _files(tmp_path) == []

    write_text_atomic(dest, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("new")
            raise RuntimeError("boom")
    assert dest.read_text() == "old" and _files(tmp_path) == ["out.txt"]


def test_write_text_and_bytes_atomic(tmp_path: Path) -> None:
    write_text_atomic(tmp_path / "a.txt", "héllo")
    write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert _files(tmp_path) == ["a.txt", "b.bin"]


# ---------------------------------------------------------------------------- overlay


def test_overlay_changes_only_masked_pixels_and_outline() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    masks = np.stack([_rect(40, 50, 5, 5, 20, 15), _rect(40, 50, 30, 20, 45, 35)])
    lw = 2
    out = overlay(img, masks, obj_ids=[3, 7], line_width=lw, alpha=0.5)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert not np.shares_memory(out, img)
    kernel = np.ones((2 * lw + 1, 2 * lw + 1), np.uint8)
    near = cv2.dilate(masks.any(0).astype(np.uint8), kernel).astype(bool)
    assert np.array_equal(out[~near], img[~near])
    assert (out[masks[0]] != img[masks[0]]).any(axis=1).mean() > 0.9
    # interior pixel: 50/50 blend with the object's colour
    expected = np.rint(img[10, 12].astype(float) * 0.5 + np.array(object_color(3)) * 0.5)
    assert np.abs(out[10, 12].astype(float) - expected).max() <= 1
    # no outline, no fill: unchanged
    assert np.array_equal(overlay(img, masks, line_width=0, alpha=0.0), img)
    assert np.array_equal(overlay(img, np.zeros((0, 40, 50), bool)), img)


def test_object_colours_fixed_and_distinct() -> None:
    colours = [object_color(i) for i in range(1, 11)]
    assert len(set(colours)) == 10
    assert object_color(4) == object_color(4)


def test_save_overlay_image(tmp_path: Path) -> None:
    img = np.full((12, 16, 3), 30, np.uint8)
    p = save_overlay_image(tmp_path / "o.png", img, _rect(12, 16, 2, 2, 8, 8))
    back = np.array(Image.open(p).convert("RGB"))
    assert np.array_equal(back, overlay(img, _rect(12, 16, 2, 2, 8, 8)))
    assert _files(tmp_path) == ["o.png"]


# ---------------------------------------------------------------------------- video


@pytest.mark.parametrize("size", [(64, 48), (33, 21)])
def test_video_writer_round_trip(tmp_path: Path, size: tuple[int, int]) -> None:
    w, h = size
    path = tmp_path / "out.mp4"
    with VideoWriter(path, fps=12.5, width=w, height=h) as vw:
        for i in range(6):
            vw.write(np.full((h, w, 3), 40 * i, np.uint8))
    assert _files(tmp_path) == ["out.mp4"]
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        assert float(s.average_rate) == pytest.approx(12.5)
    assert len(frames) == 6
    assert frames[0].shape == (h + h % 2, w + w % 2, 3)
    assert [round(float(f.mean()) / 40) for f in frames] == list(range(6))


def test_video_writer_exception_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "v.mp4", 10, 16, 16) as vw:
            vw.write(np.zeros((16, 16, 3), np.uint8))
            raise RuntimeError("boom")
    assert _files(tmp_path) == []
    vw = VideoWriter(tmp_path / "v.mp4", 10, 16, 16)
    with pytest.raises(ValueError):
        vw.write(np.zeros((8, 8, 3), np.uint8))
    vw.abort()
    assert _files(tmp_path) == []
    with pytest.raises(SAM2Error, match="cannot write video"):
        VideoWriter(tmp_path / "v.unknownext", 10, 16, 16)
    assert _files(tmp_path) == []


# ---------------------------------------------------------------------------- YOLO


def test_yolo_lines_rectangle_corners(tmp_path: Path) -> None:
    h, w = 48, 64
    masks = np.stack([_rect(h, w, 8, 12, 40, 30), np.zeros((h, w), bool)])
    lines = yolo_seg_lines(masks, cls=[2, 5], conf=[0.9, 0.5], save_conf=True)
    assert len(lines) == 1  # the empty mask is skipped
    parts = lines[0].split()
    assert parts[0] == "2" and parts[-1] == "0.900000"
    assert all(len(v.split(".")[1]) == 6 for v in parts[1:])
    pts = np.array([float(v) for v in parts[1:-1]]).reshape(-1, 2) * [w, h]
    corners = np.array([[8, 12], [40, 12], [40, 30], [8, 30]], float)
    for c in corners:  # every rectangle corner is a polygon vertex, within 1 px
        assert np.abs(pts - c).max(axis=1).min() <= 1.0
    assert (pts[:, 0] >= 7).all() and (pts[:, 0] <= 41).all()
    assert yolo_seg_lines(masks[:1])[0].startswith("0 ")

    write_yolo_txt(tmp_path / "a.txt", lines)
    write_yolo_txt(tmp_path / "b.txt", [])
    assert (tmp_path / "a.txt").read_text() == lines[0] + "\n"
    assert (tmp_path / "b.txt").read_text() == ""


def test_yolo_skips_tiny_masks() -> None:
    m = np.zeros((10, 10), bool)
    m[3, 3] = True  # a single pixel has no polygon of 3 points
    assert yolo_seg_lines(m) == []


# ---------------------------------------------------------------------------- RLE / JSON


def test_rle_round_trip() -> None:
    rng = np.random.default_rng(1)
    m = rng.random((23, 31)) > 0.6
    rle = mask_to_rle(m)
    assert rle["size"] == [23, 31] and isinstance(rle["counts"], str)
    json.dumps(rle)
    assert np.array_equal(rle_to_mask(rle), m)
    assert np.array_equal(rle_to_mask(json.loads(json.dumps(rle))), m)
    assert not rle_to_mask(mask_to_rle(np.zeros((4, 5), bool))).any()


def _results() -> Results:
    img = np.zeros((20, 30, 3), np.uint8)
    masks = np.stack([_rect(20, 30, 2, 3, 10, 7), _rect(20, 30, 12, 0, 30, 20)])
    return Results.from_masks(img, masks, scores=[0.75, 0.5], obj_ids=[4, 9], path="a.jpg", frame=3)


def test_prediction_records() -> None:
    res = _results()
    recs = prediction_records(res, "a.jpg", 3)
    assert [set(r) for r in recs] == [{"file", "frame", "obj_id", "score", "bbox", "area", "segmentation"}] * 2
    assert [r["obj_id"] for r in recs] == [4, 9]
    assert recs[0]["bbox"] == [2.0, 3.0, 8.0, 4.0] and recs[0]["area"] == 32
    assert recs[0]["score"] == pytest.approx(0.75) and recs[0]["frame"] == 3
    no_ids = Results.from_masks(res.orig_img, res.masks.data, scores=[0.1, 0.2])
    recs = prediction_records(no_ids, "b.png", None)
    assert [r["obj_id"] for r in recs] == [1, 2] and recs[0]["frame"] is None
    assert prediction_records(Results(res.orig_img), "c.png", None) == []


def test_json_array_writer(tmp_path: Path) -> None:
    res = _results()
    path = tmp_path / "preds.json"
    with JsonArrayWriter(path) as jw:
        for frame in range(3):
            jw.write_all(prediction_records(res, "v.mp4", frame))
        assert not path.exists()
    assert _files(tmp_path) == ["preds.json"]
    data = json.loads(path.read_text())
    assert len(data) == 6 and [d["frame"] for d in data] == [0, 0, 1, 1, 2, 2]
    for d, m in zip(data, list(res.masks.data) * 3):
        assert np.array_equal(rle_to_mask(d["segmentation"]), m)

    with JsonArrayWriter(tmp_path / "empty.json"):
        pass
    assert json.loads((tmp_path / "empty.json").read_text()) == []
    with pytest.raises(RuntimeError):
        with JsonArrayWriter(tmp_path / "bad.json") as jw:
            jw.write({"a": np.int64(1), "b": np.float32(0.5)})
            raise RuntimeError("boom")
    assert _files(tmp_path) == ["empty.json", "preds.json"]


def test_jsonl_writer() -> None:
    buf = io.StringIO()
    jw = JsonlWriter(buf)
    jw.write_all(prediction_records(_results(), "a.jpg", None))
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["obj_id"] == 9


# ---------------------------------------------------------------------------- mask PNGs


def test_davis_palette() -> None:
    pal = davis_palette()
    assert len(pal) == 768
    assert list(pal[:15]) == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128]
    assert list(pal[3 * 255 :]) == [224, 224, 192]


def test_binary_mask_pngs(tmp_path: Path) -> None:
    masks = np.stack([_rect(10, 12, 0, 0, 4, 4), _rect(10, 12, 5, 5, 12, 10)])
    paths = save_mask_pngs(tmp_path, "img", masks, [3, 8], "binary")
    assert [p.name for p in paths] == ["img_3.png", "img_8.png"] and _files(tmp_path) == ["img_3.png", "img_8.png"]
    for p, m in zip(paths, masks):
        arr = np.array(Image.open(p))
        assert arr.dtype == np.uint8 and set(np.unique(arr)) <= {0, 255}
        assert np.array_equal(arr == 255, m)


def test_palette_png_round_trip_and_overlap(tmp_path: Path) -> None:
    a = _rect(10, 12, 0, 0, 6, 6)
    b = _rect(10, 12, 4, 4, 10, 10)  # overlaps a on [4:6, 4:6]
    (path,) = save_mask_pngs(tmp_path, "f0", np.stack([a, b]), [2, 5], "palette")
    assert path.name == "f0.png"
    with Image.open(path) as img:
        assert img.mode == "P" and bytes(img.getpalette()[:768]) == davis_palette()
    ids = read_palette_png(path)
    expected = np.zeros((10, 12), np.uint8)
    expected[a] = 2
    expected[b] = 5  # later object wins
    assert np.array_equal(ids, expected)
    # with scores the higher-scoring object wins the overlap
    (path,) = save_mask_pngs(tmp_path, "f1", np.stack([a, b]), [2, 5], "palette", scores=[0.9, 0.1])
    assert read_palette_png(path)[5, 5] == 2
    with pytest.raises(UsageError):
        save_mask_pngs(tmp_path, "f2", a, [300], "palette")
    with pytest.raises(UsageError):
        save_mask_pngs(tmp_path, "f2", a, [1], "jpeg")


# ---------------------------------------------------------------------------- run folders


def test_increment_dir(tmp_path: Path) -> None:
    project = tmp_path / "runs"
    assert increment_dir(project, "predict", False) == project / "predict"
    assert increment_dir(project, "predict", False) == project / "predict2"
    assert increment_dir(project, "predict", False) == project / "predict3"
    assert increment_dir(project, "predict", True) == project / "predict"
    assert all((project / n).is_dir() for n in ("predict", "predict2", "predict3"))
    assert os.listdir(project) and len(os.listdir(project)) == 3
