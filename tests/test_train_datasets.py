"""The dataset readers of sam2cli/io/datasets as `sam2 train` uses them: YOLO, COCO (polygons,
both RLE forms), DAVIS clips, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from sam2cli.errors import UsageError
from sam2cli.io.coco_rle import mask_to_rle
from sam2cli.io.datasets import (VOID, CocoDataset, ImageDataset, ImageSample, VideoClip, VideoDataset, YoloDataset,
                                 check_dataset, open_dataset, open_eval_images, open_vos)
from sam2cli.io.mask_pngs import davis_palette, save_mask_pngs

H, W = 32, 40
# per image: (class, x0, y0, x1, y1) rectangles, pixel indices inclusive
RECTS = {
    "a": [(0, 2, 3, 15, 20)],
    "b": [(1, 5, 5, 30, 12), (0, 20, 14, 38, 30)],
    "c": [(1, 0, 0, 9, 9)],
}
NAMES = {0: "square", 1: "bar"}


def rect_mask(x0, y0, x1, y1, h=H, w=W):
    m = np.zeros((h, w), bool)
    m[y0:y1 + 1, x0:x1 + 1] = True
    return m


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def write_image(path: Path, h=H, w=W, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return rgb


def yolo_line(c, x0, y0, x1, y1):
    pts = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    return f"{c} " + " ".join(f"{x / W:.6f} {y / H:.6f}" for x, y in pts)


def make_yolo(root: Path, val_rects=None) -> Path:
    for i, (stem, rects) in enumerate(RECTS.items()):
        write_image(root / "images" / "train" / f"{stem}.png", seed=i)
        lab = root / "labels" / "train" / f"{stem}.txt"
        lab.parent.mkdir(parents=True, exist_ok=True)
        lab.write_text("".join(yolo_line(*r) + "\n" for r in rects))
    write_image(root / "images" / "val" / "v.png", seed=9)
    write_image(root / "images" / "val" / "nolabel.png", seed=8)  # no label file: no objects
    (root / "labels" / "val").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "val" / "v.txt").write_text(yolo_line(0, 4, 4, 20, 20) + "\n")
    y = root / "data.yaml"
    y.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: square\n  1: bar\n")
    return y


def coco_polygon(x0, y0, x1, y1):
    """Pixel-edge polygon (COCO convention) of an inclusive pixel rectangle."""
    return [float(v) for v in (x0, y0, x1 + 1, y0, x1 + 1, y1 + 1, x0, y1 + 1)]


def uncompressed_rle(mask):
    flat = mask.astype(np.uint8).flatten(order="F")
    counts, cur, run = [], 0, 0
    for v in flat:
        if v != cur:
            counts.append(run)
            cur, run = v, 0
        run += 1
    counts.append(run)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def make_coco(root: Path, form: str = "polygon", name="instances.json") -> Path:
    images, anns = [], []
    for i, (stem, rects) in enumerate(RECTS.items()):
        write_image(root / "images" / f"{stem}.png", seed=i)
        images.append({"id": i + 1, "file_name": f"{stem}.png", "height": H, "width": W})
        for c, x0, y0, x1, y1 in rects:
            if form == "polygon":
                seg = [coco_polygon(x0, y0, x1, y1)]
            elif form == "rle":
                seg = mask_to_rle(rect_mask(x0, y0, x1, y1))
            else:
                seg = uncompressed_rle(rect_mask(x0, y0, x1, y1))
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": c + 1, "segmentation": seg, "iscrowd": 0})
    # a crowd region on image 1: skipped
    anns.append({"id": 99, "image_id": 1, "category_id": 1, "iscrowd": 1,
                 "segmentation": uncompressed_rle(rect_mask(30, 25, 39, 31))})
    data = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "square"}, {"id": 2, "name": "bar"}]}
    p = root / name
    p.write_text(json.dumps(data, indent=1))
    return p


def obj_rect(video: str, obj: int, t: int):
    """Rectangle of object ``obj`` on frame ``t`` of a DAVIS test video, or None when absent."""
    if video == "v1":
        if obj == 1:
            return (2 + t, 2, 12 + t, 12)
        return None if 3 <= t <= 5 else (20, 15, 35, 28)  # object 2 absent on frames 3..5
    if t < 2:
        return None  # v2: frames 0 and 1 are empty
    if obj == 1:
        return None if t >= 6 else (5, 5, 15, 25)
    return (25, 3, 37, 10)


def make_davis(root: Path, n_frames=10) -> Path:
    for vi, video in enumerate(("v1", "v2")):
        for t in range(n_frames):
            write_image(root / "JPEGImages" / video / f"{t:05d}.jpg", seed=100 * vi + t)
            masks, ids = [], []
            for obj in (1, 2):
                r = obj_rect(video, obj, t)
                masks.append(rect_mask(*r) if r else np.zeros((H, W), bool))
                ids.append(obj)
            save_mask_pngs(root / "Annotations" / video, f"{t:05d}", np.stack(masks), ids, mode="palette")
    return root


def error_of(fn, *args, **kw) -> str:
    with pytest.raises(UsageError) as e:
        fn(*args, **kw)
    msg = str(e.value)
    assert "\n" not in msg and e.value.exit_code == 2
    return msg


# ----------------------------------------------------------------------------- YOLO


def test_yolo_masks_and_classes(tmp_path):
    y = make_yolo(tmp_path)
    ds = open_dataset(str(y), "train")
    assert isinstance(ds, ImageDataset) and isinstance(ds, YoloDataset) and len(ds) == 3
    assert ds.names == NAMES
    check_dataset(ds)
    for i, (stem, rects) in enumerate(RECTS.items()):
        s = ds[i]
        assert isinstance(s, ImageSample) and Path(s.file).stem == stem
        assert s.image.shape == (H, W, 3) and s.image.dtype == np.uint8
        assert s.masks.shape == (len(rects), H, W) and s.masks.dtype == bool
        assert s.classes.tolist() == [r[0] for r in rects]
        for m, (_, *r) in zip(s.masks, rects):
            assert iou(m, rect_mask(*r)) > 0.95
    val = open_dataset(tmp_path, "val")  # a folder holding data.yaml
    check_dataset(val)
    assert len(val) == 2
    by_name = {Path(val[i].file).stem: val[i] for i in range(2)}
    assert by_name["nolabel"].masks.shape == (0, H, W) and by_name["nolabel"].classes.shape == (0,)
    assert iou(by_name["v"].masks[0], rect_mask(4, 4, 20, 20)) > 0.95


def test_yolo_relative_path_list_and_no_images_component(tmp_path, monkeypatch):
    make_yolo(tmp_path)
    # relative path: relative to the yaml's folder; names as a list; train as a .txt list
    (tmp_path / "train.txt").write_text("./images/train/a.png\nimages/train/b.png\n")
    y = tmp_path / "rel.yaml"
    y.write_text("path: .\ntrain: train.txt\nval: images/val\nnames: [square, bar]\n")
    monkeypatch.chdir("/")
    ds = open_dataset(y)
    check_dataset(ds)
    assert [Path(f).name for f in ds.files] == ["a.png", "b.png"] and ds.names == NAMES
    assert ds[1].classes.tolist() == [1, 0]
    # no `images` component: labels/ beside the split folder (what `sam2 annotate` writes)
    write_image(tmp_path / "pics" / "x.png")
    (tmp_path / "labels" / "x.txt").write_text(yolo_line(1, 1, 1, 10, 10) + "\n")
    y2 = tmp_path / "pics.yaml"
    y2.write_text("train: pics\nval: pics\nnames: [a, b]\n")
    ds2 = open_dataset(y2)
    assert ds2.label_path(0) == tmp_path / "labels" / "x.txt"
    assert ds2[0].classes.tolist() == [1] and iou(ds2[0].masks[0], rect_mask(1, 1, 10, 10)) > 0.95


def test_yolo_roundtrip_with_annotate_polygons(tmp_path):
    """Labels written by the project's writer (what `sam2 annotate` saves) read back to the same masks."""
    from sam2cli.io.yolo_labels import yolo_seg_lines

    make_yolo(tmp_path)
    m = np.zeros((H, W), bool)
    cv2.circle(m.view(np.uint8), (20, 16), 9, 1, -1)
    (tmp_path / "labels" / "train" / "a.txt").write_text("\n".join(yolo_seg_lines(m[None], [1])) + "\n")
    s = open_dataset(tmp_path / "data.yaml")[0]
    assert s.classes.tolist() == [1] and iou(s.masks[0], m) > 0.95


# ----------------------------------------------------------------------------- COCO


@pytest.mark.parametrize("form", ["polygon", "rle", "rle_list"])
def test_coco_forms_and_iscrowd(tmp_path, form):
    p = make_coco(tmp_path, form)
    ds = open_dataset(str(p))
    assert isinstance(ds, CocoDataset) and len(ds) == 3 and ds.names == {1: "square", 2: "bar"}
    check_dataset(ds)
    for i, (stem, rects) in enumerate(RECTS.items()):
        s = ds[i]
        assert Path(s.file) == tmp_path / "images" / f"{stem}.png"  # found in images/ beside the json
        assert s.masks.shape == (len(rects), H, W)  # the crowd region on image 1 is skipped
        assert s.classes.tolist() == [r[0] + 1 for r in rects]
        for m, (_, *r) in zip(s.masks, rects):
            assert iou(m, rect_mask(*r)) > 0.95


def test_coco_images_beside_json_and_splits(tmp_path):
    p = make_coco(tmp_path, name="instances_train.json")
    for f in (tmp_path / "images").iterdir():
        f.rename(tmp_path / f.name)  # images in the json's own folder
    ds = open_dataset(p)
    check_dataset(ds)
    assert Path(ds[0].file).parent == tmp_path
    val = open_dataset(p, "val")  # no instances_val.json: every 5th image by id
    assert len(val) == 1 and Path(val[0].file).name == "a.png"
    data = json.loads(p.read_text())
    data["images"], data["annotations"] = data["images"][1:], [a for a in data["annotations"] if a["image_id"] != 1]
    (tmp_path / "instances_val.json").write_text(json.dumps(data))
    val = open_dataset(p, "val")
    check_dataset(val)
    assert len(val) == 2 and val.split_file.name == "instances_val.json"


# ----------------------------------------------------------------------------- DAVIS


def test_davis_clips(tmp_path):
    root = make_davis(tmp_path)
    ds = open_dataset(str(root), clip_len=8, max_objects=3, seed=0)
    assert isinstance(ds, VideoDataset) and len(ds) == 2 and ds.names == ["v1", "v2"]
    check_dataset(ds)
    starts = set()
    for i in range(12):
        clip = ds[i]
        video = ("v1", "v2")[i % 2]
        assert isinstance(clip, VideoClip) and clip.video == video
        assert len(clip.frames) == 8 and all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in clip.frames)
        assert clip.masks.shape == (8, len(clip.obj_ids), H, W) and clip.masks.dtype == bool
        t0 = int(Path(clip.frame_files[0]).stem)
        assert [int(Path(f).stem) for f in clip.frame_files] == list(range(t0, t0 + 8))
        assert clip.masks[0].any(axis=(1, 2)).all()  # every object is on the first frame
        for n, oid in enumerate(clip.obj_ids):
            for k in range(8):
                r = obj_rect(video, int(oid), t0 + k)
                if r is None:
                    assert not clip.masks[k, n].any()  # absent: empty mask
                else:
                    assert iou(clip.masks[k, n], rect_mask(*r)) > 0.95
        if video == "v1":
            starts.add(t0)
            assert clip.obj_ids.tolist() == [1, 2] if t0 not in (3, 4, 5) else [1]
        else:
            assert t0 == 2 and clip.obj_ids.tolist() == [1, 2]  # starts on empty frames 0, 1 never drawn
    assert len(starts) > 1


def test_davis_deterministic_and_max_objects(tmp_path):
    root = make_davis(tmp_path)
    a = open_dataset(root, clip_len=4, max_objects=1, seed=3)
    b = open_dataset(root, clip_len=4, max_objects=1, seed=3)
    for i in range(6):
        ca, cb = a[i], b[i]
        assert ca.frame_files == cb.frame_files and ca.obj_ids.tolist() == cb.obj_ids.tolist()
        assert np.array_equal(ca.masks, cb.masks) and len(ca.obj_ids) == 1
    draws = {(a[0].frame_files[0], int(a[0].obj_ids[0]))}
    for e in range(1, 8):
        a.set_epoch(e)
        draws.add((a[0].frame_files[0], int(a[0].obj_ids[0])))
    assert len(draws) > 1  # the epoch changes the draw
    b.samples = 5
    assert len(b) == 5 and b[4].video == "v1"
    full = a.full_video(1)
    assert len(full.frames) == 10 and full.obj_ids.tolist() == [1, 2] and not full.masks[:2].any()


def test_davis_splits(tmp_path):
    root = make_davis(tmp_path)
    assert open_dataset(root, "val").names == ["v1"]  # every 5th video, sorted
    sets = root / "ImageSets" / "2017"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("v2\n")
    assert open_dataset(root, "train").names == ["v2"]
    msg = error_of(open_dataset, root, "val")
    assert "val.txt" in msg and "not found" in msg
    (sets / "val.txt").write_text("v1\nnope\n")
    msg = error_of(open_dataset, root, "val")
    assert "val.txt:2" in msg and "nope" in msg


# ----------------------------------------------------------------------------- errors


def test_yolo_errors(tmp_path):
    y = make_yolo(tmp_path)
    lab = tmp_path / "labels" / "train" / "b.txt"
    good = lab.read_text()

    def check_error(text):
        lab.write_text(text)
        return error_of(lambda: check_dataset(open_dataset(y)))

    msg = check_error(good + "0 0.1 0.1 1.2 0.1 0.5 0.5\n")
    assert f"{lab}:3" in msg and "outside 0..1" in msg
    msg = check_error(good.splitlines()[0] + "\n0 0.1 0.1 0.2 0.2\n")
    assert f"{lab}:2" in msg and "fewer than 3" in msg
    msg = check_error("7 0.1 0.1 0.2 0.1 0.2 0.2\n")
    assert f"{lab}:1" in msg and "class 7 is not in names" in msg
    msg = check_error("0 0.1 0.1 0.2 0.1 0.2\n")
    assert f"{lab}:1" in msg and "odd number" in msg
    msg = check_error("0 0.1 zero 0.2 0.1 0.2 0.3\n")
    assert f"{lab}:1" in msg and "'zero'" in msg
    lab.write_text(good)
    # the same parser guards __getitem__ during training
    lab.write_text("5 0.1 0.1 0.2 0.1 0.2 0.2\n")
    assert f"{lab}:1" in error_of(lambda: open_dataset(y)[1])
    lab.write_text(good)

    # missing split folder: names data.yaml and the line of the key
    y.write_text(f"path: {tmp_path}\ntrain: images/train\nval: images/missing\nnames: [a, b]\n")
    msg = error_of(open_dataset, y, "val")
    assert f"{y}:3" in msg and "does not exist" in msg
    y.write_text(f"path: {tmp_path}\ntrain: images/train\nnames: [a, b]\n")
    msg = error_of(open_dataset, y, "val")
    assert str(y) in msg and "no 'val' split" in msg
    y.write_text(f"path: {tmp_path}\ntrain: images/train\n")
    assert "no 'names'" in error_of(open_dataset, y)
    y.write_text("path: [unclosed\ntrain: x\n")
    assert f"{y}:" in error_of(open_dataset, y) and "invalid YAML" in error_of(open_dataset, y)
    assert "not found" in error_of(open_dataset, tmp_path / "nope.yaml")
    assert "unknown dataset format" in error_of(open_dataset, lab)


def test_empty_datasets(tmp_path):
    y = make_yolo(tmp_path)
    for f in (tmp_path / "labels" / "train").iterdir():
        f.write_text("")
    msg = error_of(lambda: check_dataset(open_dataset(y)))
    assert str(y) in msg and "no labelled object" in msg
    (tmp_path / "images" / "empty").mkdir()
    y.write_text(f"path: {tmp_path}\ntrain: images/empty\nval: images/val\nnames: [a]\n")
    msg = error_of(lambda: check_dataset(open_dataset(y)))
    assert str(y) in msg and "no images" in msg
    j = tmp_path / "c" / "empty.json"
    j.parent.mkdir()
    j.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    assert "no images" in error_of(lambda: check_dataset(open_dataset(j)))
    d = tmp_path / "davis"
    (d / "JPEGImages").mkdir(parents=True)
    (d / "Annotations").mkdir()
    assert "no videos" in error_of(lambda: check_dataset(open_dataset(d)))


def test_coco_errors(tmp_path):
    p = make_coco(tmp_path)
    data = json.loads(p.read_text())

    def check_error(mutate):
        d = json.loads(json.dumps(data))
        mutate(d)
        p.write_text(json.dumps(d))
        return error_of(lambda: check_dataset(open_dataset(p)))

    def ann(d, i=0):
        return d["annotations"][i]

    msg = check_error(lambda d: ann(d).update(category_id=7))
    assert str(p) in msg and "annotations[0] (id 1)" in msg and "category_id 7" in msg
    msg = check_error(lambda d: ann(d).update(segmentation=[[1, 1, 5, 5]]))
    assert "annotations[0]" in msg and "fewer than 3" in msg
    msg = check_error(lambda d: ann(d).update(segmentation=[[1, 1, 500, 1, 5, 5]]))
    assert "outside the 40x32 image" in msg
    msg = check_error(lambda d: ann(d).update(segmentation=mask_to_rle(np.ones((10, 10), bool))))
    assert "annotations[0]" in msg and "10x10" in msg and "40x32" in msg
    msg = check_error(lambda d: ann(d, 1).update(segmentation=uncompressed_rle(np.ones((H, W + 1), bool))))
    assert "annotations[1] (id 2)" in msg
    msg = check_error(lambda d: ann(d).update(image_id=42))
    assert "image_id 42" in msg
    msg = check_error(lambda d: d["images"][0].update(file_name="missing.png"))
    assert str(p) in msg and "missing.png" in msg and "not found" in msg
    msg = check_error(lambda d: d["images"][0].update(width=64))
    assert "64x32" in msg
    msg = check_error(lambda d: [a.update(iscrowd=1) for a in d["annotations"]])
    assert "no labelled object" in msg  # crowd objects do not count
    p.write_text('{"images": [\n  {"id": 1,\n  oops}\n]}')
    msg = error_of(open_dataset, p)
    assert f"{p}:3" in msg and "invalid JSON" in msg


def test_davis_errors(tmp_path):
    root = make_davis(tmp_path)
    png = root / "Annotations" / "v2" / "00004.png"
    save_mask_pngs(png.parent, "00004", rect_mask(1, 1, 5, 5, h=H + 2)[None], [1], mode="palette")
    msg = error_of(lambda: check_dataset(open_dataset(root)))
    assert str(png) in msg and f"{W}x{H + 2}" in msg and f"{W}x{H}" in msg
    # the same guard when a clip is loaded
    ds = open_dataset(root, clip_len=8)  # v2's clip is always frames 2..9
    assert str(png) in error_of(lambda: ds[1])
    save_mask_pngs(png.parent, "00004", rect_mask(1, 1, 5, 5)[None], [1], mode="palette")
    check_dataset(open_dataset(root))
    msg = error_of(lambda: check_dataset(open_dataset(root, clip_len=11)))
    assert "fewer than clip_len=11" in msg
    msg = error_of(lambda: check_dataset(open_dataset(root, clip_len=9)))  # v2: only starts 0, 1, both empty
    assert "v2" in msg and "starts on a frame with an object" in msg
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(png)  # RGB, not a palette
    msg = error_of(lambda: check_dataset(open_dataset(root)))
    assert str(png) in msg and "palette" in msg
    save_mask_pngs(png.parent, "00004", rect_mask(1, 1, 5, 5)[None], [1], mode="palette")
    extra = root / "Annotations" / "v1" / "00042.png"
    save_mask_pngs(extra.parent, "00042", rect_mask(1, 1, 5, 5)[None], [1], mode="palette")
    msg = error_of(lambda: check_dataset(open_dataset(root)))
    assert str(extra) in msg and "no frame" in msg
    extra.unlink()
    (root / "JPEGImages" / "v3").mkdir()
    msg = error_of(open_dataset, root)
    assert "v3" in msg and "mask folder" in msg


# ----------------------------------------------------------------------------- one reader for val and train


def make_void_davis(root: Path, sub: tuple = ()) -> dict:
    """Two videos whose objects carry a 2-pixel void (255) border, as DAVIS draws them; on the last
    frame of "dog" its object 4 is gone but its void border stays. Frames and masks under
    ``JPEGImages/<sub>`` and ``Annotations/<sub>``. -> {video: per frame {obj id: (H, W) bool}}."""
    truth = {}
    for vi, video in enumerate(("cat", "dog")):
        frames = []
        for t in range(4):
            write_image(root.joinpath("JPEGImages", *sub, video, f"{t:05d}.jpg"), seed=10 * vi + t)
            lab = np.zeros((H, W), np.uint8)
            objs = {}
            for oid, (x0, y0, x1, y1) in ((1, (3 + t, 3, 12 + t, 14)), (3 + vi, (20, 12, 34, 26))):
                lab[y0 - 2:y1 + 3, x0 - 2:x1 + 3] = VOID
                if not (video == "dog" and oid == 4 and t == 3):
                    lab[y0:y1 + 1, x0:x1 + 1] = oid
                    objs[oid] = rect_mask(x0, y0, x1, y1)
            png = Image.fromarray(lab, mode="P")
            png.putpalette(davis_palette())
            path = root.joinpath("Annotations", *sub, video, f"{t:05d}.png")
            path.parent.mkdir(parents=True, exist_ok=True)
            png.save(path)
            frames.append(objs)
        truth[video] = frames
    return truth


@pytest.mark.parametrize("sub", [(), ("480p",)], ids=["plain", "480p"])
def test_void_border_gives_val_and_train_the_same_objects(tmp_path, sub):
    """`sam2 val`'s reader and `sam2 train`'s dataset see the same objects (ids and masks) on a
    void-bordered DAVIS folder: 255 is no object, and its pixels are in no object's mask."""
    truth = make_void_davis(tmp_path, sub)
    videos = open_vos(tmp_path)
    ds = open_dataset(tmp_path, "train", clip_len=4, max_objects=None)
    check_dataset(ds)
    assert [v.name for v in videos] == ds.names == ["cat", "dog"]
    for v, video in enumerate(videos):
        expected = truth[video.name]
        clip = ds.full_video(v)
        assert video.obj_ids == clip.obj_ids.tolist() == sorted(expected[0]) and VOID not in video.obj_ids
        assert [str(video.frames[t]) for t in video.annotated] == clip.frame_files
        assert all(Path(f).parent.parent.name == (sub[0] if sub else "JPEGImages") for f in clip.frame_files)
        for k in range(len(video.annotated)):
            seen = video.read_truth(k)
            assert sorted(seen) == sorted(expected[k])
            for n, oid in enumerate(clip.obj_ids.tolist()):
                want = expected[k].get(oid, np.zeros((H, W), bool))
                assert np.array_equal(clip.masks[k, n], want)
                if want.any():
                    assert np.array_equal(seen[oid], want)
                else:
                    assert oid not in seen  # absent: val has no mask, train an empty one
        assert ds.frame_ids(v) == [tuple(sorted(f)) for f in expected]
    dog = ds[1]  # a random clip: the same masks again
    assert dog.video == "dog" and dog.obj_ids.tolist() == [1, 4] and not dog.masks[3, 1].any()


def test_480p_without_annotations_480p_falls_back_for_both(tmp_path):
    """JPEGImages/480p with plain Annotations/: both readers pair them the same way."""
    truth = make_void_davis(tmp_path, ("480p",))
    (tmp_path / "Annotations" / "480p").rename(tmp_path / "ann")
    for video in ("cat", "dog"):
        (tmp_path / "ann" / video).rename(tmp_path / "Annotations" / video)
    ds = open_dataset(tmp_path, clip_len=4, max_objects=None)
    check_dataset(ds)
    assert ds.jpeg_dir == tmp_path / "JPEGImages" / "480p" and ds.ann_dir == tmp_path / "Annotations"
    assert [v.obj_ids for v in open_vos(tmp_path)] == [sorted(truth["cat"][0]), sorted(truth["dog"][0])]


def test_sav_layout_trains_on_its_annotated_frames(tmp_path):
    """An SA-V folder (one binary PNG per object and annotated frame) gives training clips of the
    annotated frames only, with the masks `sam2 val` reads."""
    truth = make_void_davis(tmp_path / "davis")
    for video, frames in truth.items():
        for t in range(4):
            (tmp_path / "JPEGImages_24fps" / video).mkdir(parents=True, exist_ok=True)
            (tmp_path / "JPEGImages_24fps" / video / f"{t:05d}.jpg").symlink_to(
                tmp_path / "davis" / "JPEGImages" / video / f"{t:05d}.jpg")
        for t in (0, 2, 3):  # frame 1 not annotated
            for oid in sorted(frames[0]):
                d = tmp_path / "Annotations_6fps" / video / f"{oid:03d}"
                d.mkdir(parents=True, exist_ok=True)
                m = frames[t].get(oid, np.zeros((H, W), bool))
                Image.fromarray(m.astype(np.uint8) * 255).save(d / f"{t:05d}.png")
    ds = open_dataset(tmp_path, clip_len=3, max_objects=None)
    check_dataset(ds)
    videos = open_vos(tmp_path)
    for v, video in enumerate(videos):
        clip = ds.full_video(v)
        assert [Path(f).stem for f in clip.frame_files] == ["00000", "00002", "00003"]
        assert clip.obj_ids.tolist() == video.obj_ids
        for k, t in enumerate((0, 2, 3)):
            for n, oid in enumerate(video.obj_ids):
                want = truth[video.name][t].get(oid, np.zeros((H, W), bool))
                assert np.array_equal(clip.masks[k, n], want)


def test_yolo_split_of_video_subfolders(tmp_path):
    """What video auto-annotation writes: images/<video>/<frame>.jpg, labels/<video>/<frame>.txt
    and one data.yaml whose splits are the images folder; `sam2 val`'s reader reads the same."""
    rects = {}
    for vi, video in enumerate(("clipA", "clipB")):
        for t in range(2):
            rel = Path(video) / f"{t:05d}"
            write_image(tmp_path / "images" / rel.with_suffix(".jpg"), seed=20 + 2 * vi + t)
            rects[rel.as_posix()] = (vi, 2 + t, 3, 15 + vi, 20)
            lab = (tmp_path / "labels" / rel).with_suffix(".txt")
            lab.parent.mkdir(parents=True, exist_ok=True)
            lab.write_text(yolo_line(*rects[rel.as_posix()]) + "\n")
    (tmp_path / "data.yaml").write_text("path: .\ntrain: images\nval: images\nnames: {0: a, 1: b}\n")
    ds = open_dataset(tmp_path / "data.yaml")
    check_dataset(ds)
    evals = open_eval_images(tmp_path / "data.yaml")
    assert [Path(f).relative_to(tmp_path / "images").with_suffix("").as_posix() for f in ds.files] == sorted(rects)
    for i, key in enumerate(sorted(rects)):
        c, *r = rects[key]
        s, e = ds[i], evals[i]
        assert s.classes.tolist() == [c] and iou(s.masks[0], rect_mask(*r)) > 0.95
        assert s.file == e.file and np.array_equal(s.masks, e.masks)
