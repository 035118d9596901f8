"""Tests for the procedural scene generator of the demo model (sam2cli.train.scenes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from sam2cli.io.mask_pngs import read_palette_png
from sam2cli.train.scenes import KINDS, make_image, make_video, write_davis_dataset, write_yolo_dataset

ROOT = Path(__file__).resolve().parents[1]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------- images


def test_image_deterministic():
    a = make_image(_rng(3), (96, 128))
    b = make_image(_rng(3), (96, 128))
    c = make_image(_rng(4), (96, 128))
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("size", [(128, 128), (96, 160)])
def test_image_masks(size):
    H, W = size
    counts = []
    for seed in range(30):
        img, masks, classes = make_image(_rng(seed), size, n_objects=(2, 6))
        assert img.shape == (H, W, 3) and img.dtype == np.uint8
        assert masks.dtype == bool and masks.shape[1:] == (H, W)
        assert classes.shape == (len(masks),) and classes.dtype.kind == "i"
        assert ((classes >= 0) & (classes < len(KINDS))).all()
        assert 2 <= len(masks) <= 6
        assert masks.sum(axis=0).max() <= 1, "visible masks overlap"
        assert (masks.sum(axis=(1, 2)) >= 0.0025 * H * W).all(), "empty or tiny visible mask"
        counts.append(len(masks))
    assert len(set(counts)) >= 3  # the count varies


def test_image_count_range_and_kinds():
    kinds = set()
    for seed in range(40):
        _, masks, classes = make_image(_rng(100 + seed), 128, n_objects=(1, 3))
        assert 1 <= len(masks) <= 3
        kinds.update(classes.tolist())
    _, masks, _ = make_image(_rng(7), 128, n_objects=4)
    assert len(masks) == 4
    assert len(kinds) >= len(KINDS) - 1  # many kinds of shape show up


def test_image_contrast():
    """The mean colour of an object differs from the ring around it in most cases."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    diffs = []
    for seed in range(40):
        img, masks, _ = make_image(_rng(seed), 128)
        f = img.astype(np.float64)
        for m in masks:
            ring = cv2.dilate(m.astype(np.uint8), k).astype(bool) & ~m
            if ring.sum() >= 10:
                diffs.append(np.linalg.norm(f[m].mean(0) - f[ring].mean(0)))
    diffs = np.asarray(diffs)
    assert len(diffs) > 100
    assert (diffs > 25).mean() >= 0.9, np.percentile(diffs, [5, 10, 50])


def test_image_speed():
    import time

    rng = _rng(0)
    make_image(rng, 128)
    t = time.perf_counter()
    for _ in range(20):
        make_image(rng, 128)
    assert (time.perf_counter() - t) / 20 < 0.05  # a few ms; generous for a loaded CI box


# ---------------------------------------------------------------------------- videos


def test_video_shapes_determinism_motion():
    f1, m1, ids1 = make_video(_rng(5), (96, 128), n_frames=12, n_objects=(2, 3))
    f2, m2, ids2 = make_video(_rng(5), (96, 128), n_frames=12, n_objects=(2, 3))
    assert len(f1) == 12 and all(f.shape == (96, 128, 3) and f.dtype == np.uint8 for f in f1)
    assert m1.shape[0] == 12 and m1.shape[2:] == (96, 128) and m1.dtype == bool
    assert 2 <= m1.shape[1] <= 3
    assert np.array_equal(ids1, np.arange(1, m1.shape[1] + 1))
    assert all(np.array_equal(a, b) for a, b in zip(f1, f2)) and np.array_equal(m1, m2)
    assert np.array_equal(ids1, ids2)
    assert m1.sum(axis=1).max() <= 1, "visible masks overlap"
    # masks move between frames
    moved = [not np.array_equal(m1[0, i], m1[-1, i]) for i in range(m1.shape[1])]
    assert any(moved)
    assert not np.array_equal(f1[0], f1[1])


def test_video_object_leaves_frame():
    frames, masks, _ = make_video(_rng(0), 128, n_frames=60, n_objects=1, p_cross=1.0, camera=False)
    on = masks[:, 0].any(axis=(1, 2))
    assert on[0] and not on[-1]  # visible at first, gone at the end: it left
    first_off = int(np.argmin(on))
    assert not on[first_off:].any()


def test_video_objects_enter_or_leave_often():
    events = 0
    for seed in range(8):
        _, masks, _ = make_video(_rng(seed), 128, n_frames=40, n_objects=(2, 4), p_cross=0.6)
        on = masks.any(axis=(2, 3))  # (T, N)
        events += int((on[1:] != on[:-1]).any(axis=0).sum())
    assert events >= 4


@pytest.mark.parametrize("seed,occ", [(0, (0, 10, 5)), (1, (1, 3, 2)), (2, (2, 20, 6)), (3, (0, 1, 1))])
def test_video_forced_occlusion(seed, occ):
    idx, start, length = occ
    frames, masks, ids = make_video(_rng(seed), 128, n_frames=30, n_objects=(1, 3), occlude=occ)
    assert masks.shape[1] > idx
    area = masks[:, idx].sum(axis=(1, 2))
    hidden = np.zeros(30, bool)
    hidden[start:start + length] = True
    assert (area[hidden] == 0).all(), area
    assert (area[~hidden] > 0).all(), area
    # the object comes back as a substantial part of itself, not a sliver
    before, after = area[start - 1] if start else area[start + length], area[start + length]
    typical = np.median(area[~hidden])
    assert after >= 0.3 * typical and before >= 0.3 * typical, (before, after, typical)


def test_video_occlusion_bad_args():
    with pytest.raises(ValueError):
        make_video(_rng(0), 64, n_frames=10, n_objects=2, occlude=(0, 8, 5))
    with pytest.raises(ValueError):
        make_video(_rng(0), 64, n_frames=10, n_objects=2, occlude=(5, 2, 2))


# ---------------------------------------------------------------------------- datasets


def test_yolo_dataset(tmp_path):
    data = write_yolo_dataset(tmp_path / "yolo", n_train=6, n_val=2, size=96, seed=1)
    cfg = yaml.safe_load(data.read_text())
    assert Path(cfg["path"]) == (tmp_path / "yolo").resolve()
    assert cfg["train"] == "images/train" and cfg["val"] == "images/val"
    assert cfg["names"] == {i: k for i, k in enumerate(KINDS)}
    n_lines = 0
    for split, n in (("train", 6), ("val", 2)):
        imgs = sorted((tmp_path / "yolo" / "images" / split).iterdir())
        labels = sorted((tmp_path / "yolo" / "labels" / split).iterdir())
        assert len(imgs) == n and len(labels) == n
        assert [p.stem for p in imgs] == [p.stem for p in labels]
        for img_p, lab_p in zip(imgs, labels):
            assert cv2.imread(str(img_p)).shape == (96, 96, 3)
            for line in lab_p.read_text().splitlines():
                vals = line.split()
                assert 0 <= int(vals[0]) < len(KINDS)
                xy = np.array(vals[1:], dtype=float)
                assert len(xy) >= 6 and len(xy) % 2 == 0
                assert ((xy >= 0) & (xy <= 1)).all()
                n_lines += 1
    assert n_lines >= 8 * 2
    # deterministic and independent of the counts
    again = write_yolo_dataset(tmp_path / "again", n_train=3, n_val=1, size=96, seed=1)
    for name in ("images/train/000002.png", "labels/train/000002.txt", "labels/val/000000.txt"):
        assert (again.parent / name).read_bytes() == (tmp_path / "yolo" / name).read_bytes()
    # the label polygon matches the scene's mask
    img, masks, classes = make_image(np.random.default_rng([1, 0, 0]), 96)
    first = (tmp_path / "yolo" / "labels" / "train" / "000000.txt").read_text().splitlines()[0].split()
    assert int(first[0]) == classes[0]
    poly = np.array(first[1:], dtype=float).reshape(-1, 2) * 96
    filled = np.zeros((96, 96), np.uint8)
    cv2.fillPoly(filled, [np.round(poly).astype(np.int32)], 1)
    inter = (filled.astype(bool) & masks[0]).sum()
    assert inter / masks[0].sum() > 0.8


def test_davis_dataset(tmp_path):
    root = write_davis_dataset(tmp_path / "davis", n_videos=3, n_frames=6, size=(64, 80), seed=2, n_val=1)
    train = (root / "ImageSets" / "2017" / "train.txt").read_text().split()
    val = (root / "ImageSets" / "2017" / "val.txt").read_text().split()
    assert train == ["scene00000", "scene00001"] and val == ["scene00002"]
    for name in train + val:
        jpgs = sorted((root / "JPEGImages" / name).iterdir())
        pngs = sorted((root / "Annotations" / name).iterdir())
        assert [p.name for p in jpgs] == [f"{t:05d}.jpg" for t in range(6)]
        assert [p.name for p in pngs] == [f"{t:05d}.png" for t in range(6)]
        split = "val" if name in val else "train"
        frames, masks, ids = make_video(np.random.default_rng([2, {"train": 0, "val": 1}[split], int(name[-5:])]),
                                        (64, 80), 6, (1, 4), p_occlude=0.5)
        masks = masks[:, masks.any(axis=(0, 2, 3))]
        seen = set()
        for t, p in enumerate(pngs):
            lab = read_palette_png(p)
            assert lab.shape == (64, 80)
            expect = np.zeros((64, 80), np.uint8)
            for j in range(masks.shape[1]):
                expect[masks[t, j]] = j + 1
            assert np.array_equal(lab, expect)
            seen.update(np.unique(lab).tolist())
            from PIL import Image

            with Image.open(p) as im:
                assert im.mode == "P"
            assert cv2.imread(str(jpgs[t])).shape == (64, 80, 3)
        assert seen - {0} == set(range(1, masks.shape[1] + 1))


def test_script(tmp_path):
    out = tmp_path / "scenes"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_scenes.py"), "--out", str(out), "--images", "3",
                        "--val", "1", "--videos", "2", "--frames", "4", "--size", "64", "--seed", "0"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (out / "yolo" / "data.yaml").is_file()
    assert len(list((out / "yolo" / "images" / "train").iterdir())) == 3
    assert (out / "davis" / "ImageSets" / "2017" / "val.txt").read_text().split() == ["scene00001"]
    assert "images 4/4" in r.stderr and "videos 2/2" in r.stderr


# ---------------------------------------------------------------------------- hard cases (tracker policies)


def _centroid(m: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(m)
    return np.array([xs.mean(), ys.mean()])


def _mean_colour(frame: np.ndarray, m: np.ndarray) -> np.ndarray:
    return frame[m].reshape(-1, 3).astype(np.float64).mean(0)


@pytest.mark.parametrize("mode", ["cross", "pass"])
def test_video_lookalike(mode):
    """An unlabelled copy of an object, of its size and colours, comes within a fraction of its
    size (cross) or close beside it without covering it (pass)."""
    for seed in range(4):
        frames, masks, ids, copies = make_video(_rng(seed), 128, 40, 1, lookalike=mode, copies=True)
        assert masks.shape[1] == 1 and copies.shape == (40, 1, 128, 128)
        assert not (masks[:, 0] & copies[:, 0]).any(), "the look-alike is not part of the object's mask"
        tgt, cpy = masks[:, 0], copies[:, 0]
        r = np.sqrt(np.median(tgt.sum(axis=(1, 2))[tgt.any(axis=(1, 2))]) / np.pi)  # ~ the object's radius
        both = [t for t in range(40) if tgt[t].sum() > 0.5 * np.pi * r * r and cpy[t].sum() > 0.5 * np.pi * r * r]
        assert both, "the look-alike is never in sight beside the object"
        dist = min(np.linalg.norm(_centroid(tgt[t]) - _centroid(cpy[t])) for t in both)
        if mode == "cross":
            hidden = (tgt.sum(axis=(1, 2)) < 0.7 * np.pi * r * r) | (cpy.sum(axis=(1, 2)) < 0.7 * np.pi * r * r)
            assert dist < 2.0 * r or hidden[12:24].any(), (seed, dist, r)  # on top of each other midway
        else:  # 2.2-2.8 template radii apart: 1.5-6 half-extents of the object's box
            ext = np.median([max(np.ptp(np.nonzero(tgt[t])[0]), np.ptp(np.nonzero(tgt[t])[1])) / 2 + 0.5 for t in both])
            assert 1.2 * ext < dist < 6.0 * ext, (seed, dist, ext)
        t = max(both, key=lambda t: min(tgt[t].sum(), cpy[t].sum()))
        assert 0.6 < cpy[t].sum() / tgt[t].sum() < 1.6
        assert np.linalg.norm(_mean_colour(frames[t], tgt[t]) - _mean_colour(frames[t], cpy[t])) < 30


def test_video_twin_at_reappearance():
    """The occluded object re-appears on the frame after the occlusion with its twin beside it,
    and the twin is in sight while the object is hidden."""
    for seed in range(4):
        occ = (0, 10, 5 + 3 * seed)
        frames, masks, ids, copies = make_video(_rng(seed), 128, 40, (1, 2), occlude=occ, twin=True, copies=True)
        start, length = occ[1:]
        area = masks[:, 0].sum(axis=(1, 2))
        assert (area[start:start + length] == 0).all() and (area[:start] > 0).all() and (area[start + length:] > 0).all()
        s1 = start + length
        twin = copies[:, -1]
        assert twin[s1].sum() >= 0.5 * area[s1]
        assert twin[s1 - 1].sum() >= 0.5 * area[s1]  # in sight while the object is hidden
        r = np.sqrt(area[s1] / np.pi)
        assert np.linalg.norm(_centroid(masks[s1, 0]) - _centroid(twin[s1])) < 6 * r
    with pytest.raises(ValueError):
        make_video(_rng(0), 64, 10, 1, twin=True)
    with pytest.raises(ValueError):
        make_video(_rng(0), 64, 10, 1, lookalike="behind")


def test_video_fast():
    """Objects move more than half their size (the larger side of their box) per frame."""
    jumps = []
    for seed in range(3):
        _, masks, _ = make_video(_rng(seed), 128, 24, (1, 2), fast=True)
        for i in range(masks.shape[1]):
            for t in range(23):
                a, b = masks[t, i], masks[t + 1, i]
                if a.sum() > 20 and b.sum() > 20:
                    ys, xs = np.nonzero(a)
                    half = max(np.ptp(xs), np.ptp(ys)) / 2 + 0.5
                    jumps.append(np.linalg.norm(_centroid(a) - _centroid(b)) / half)
    jumps = np.array(jumps)
    assert len(jumps) > 30 and np.median(jumps) > 1.0 and (jumps > 0.5).mean() > 0.8, np.percentile(jumps, [10, 50])
    _, slow, _ = make_video(_rng(0), 128, 24, (1, 2))
    assert slow.shape[1] >= 1  # the switch is off by default: normal speeds (test_video_shapes_...)


def test_video_same_class():
    """One class: the objects' colours are near each other (they are apart by CONTRAST otherwise)."""
    near = []
    for seed in range(4):
        frames, masks, _ = make_video(_rng(seed), 128, 6, 3, same_class=True)
        t = int(np.argmax(masks.sum(axis=(2, 3)).min(1)))
        cols = [_mean_colour(frames[t], masks[t, i]) for i in range(3) if masks[t, i].sum() > 15]
        near += [np.linalg.norm(a - b) for k, a in enumerate(cols) for b in cols[k + 1:]]
    assert len(near) >= 6 and np.median(near) < 25, near


def test_hard_dataset(tmp_path):
    from sam2cli.train.scenes_hard_data import HARD_CASES, hard_clip, write_hard_dataset

    root = write_hard_dataset(tmp_path / "hard", per_case=1, size=64, seed=5, n_frames=30, long_frames=40)
    names = (root / "ImageSets" / "2017" / "val.txt").read_text().split()
    assert names == [f"{c}000" for c in HARD_CASES]
    for c in ("twin", "long"):
        pngs = sorted((root / "Annotations" / f"{c}000").iterdir())
        assert len(pngs) == (40 if c == "long" else 30)
        _, masks, _ = hard_clip(np.random.default_rng([5, 3, HARD_CASES.index(c), 0]), c, 0, 64, 30, 40)
        masks = masks[:, masks.any(axis=(0, 2, 3))]
        for t in (0, len(pngs) - 1):
            expect = np.zeros((64, 64), np.uint8)
            for j in range(masks.shape[1]):
                expect[masks[t, j]] = j + 1
            assert np.array_equal(read_palette_png(pngs[t]), expect)
    with pytest.raises(ValueError):
        write_hard_dataset(tmp_path / "bad", cases=["nope"])


def test_script_hard(tmp_path):
    out = tmp_path / "s"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_scenes.py"), "--out", str(out), "--images", "0",
                        "--val", "0", "--videos", "0", "--hard", "fast,twin", "--per-case", "1", "--frames", "24",
                        "--size", "64", "--seed", "1", "--plain"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (out / "hard" / "ImageSets" / "2017" / "val.txt").read_text().split() == ["fast000", "twin000"]
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_scenes.py"), "--out", str(out), "--hard", "x"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown case" in bad.stderr
