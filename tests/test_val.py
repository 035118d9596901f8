"""`sam2 val` as users run it: the DAVIS protocol and files on generated videos (scores recomputed
from the written PNGs), the image and interactive protocols, SA-V and mask-folder layouts, the same
numbers as `sam2 train`'s validation, and bad input in one line (exit 2). Small scenes at
imgsz=128 with the demo model keep it fast."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam2cli.cli.app import main
from sam2cli.engine.clicks import curve_auc
from sam2cli.engine.metrics import boundary_f, iou
from sam2cli.engine.val.vos import VosScorer, global_stats, lowest_id_on_top, paired_difference
from sam2cli.io.mask_pngs import read_palette_png
from sam2cli.train.scenes import write_davis_dataset, write_yolo_dataset

MODEL = "sam2_demo.pt"


def run(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return main(["val", f"model={MODEL}", "device=cpu", "imgsz=128", *args])


def rows(path: Path) -> list:
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def davis(tmp_path_factory) -> Path:
    """3 val videos of 8 frames at 64 px; keep only those whose objects are all on frame 0 (as in
    DAVIS 2017), so `sam2 train`'s clips are the same videos."""
    from sam2cli.io.datasets import open_vos
    root = tmp_path_factory.mktemp("davis") / "scenes"
    write_davis_dataset(root, 6, n_frames=8, size=64, seed=5, n_val=3)
    keep = [v.name for v in open_vos(root) if set(v.first_seen.values()) == {0}]
    assert keep
    (root / "ImageSets" / "2017" / "val.txt").write_text("\n".join(keep) + "\n")
    return root


@pytest.fixture(scope="module")
def yolo(tmp_path_factory) -> Path:
    return write_yolo_dataset(tmp_path_factory.mktemp("yolo") / "scenes", 1, 3, size=64, seed=5)


def test_scorer_known_answers():
    """A square tracked with known shifts: frames 0 and 9 (first, last) are not scored; object 2
    appears on frame 4, so frames 1-3 score it empty against empty (1)."""
    def sq(x, n=20):
        m = np.zeros((64, 64), bool)
        m[10:10 + n, x:x + n] = True
        return m
    shifts = [0, 0, 0, 0, 0, 10, 10, 10, 10, 0]  # J = 1, or 10/30 = 1/3 for a 10 px shift of a 20 px square
    scorer = VosScorer("v", [1, 2], list(range(10)))
    for t, d in enumerate(shifts):
        truth = {1: sq(5)}
        pred = {1: sq(5 + d)}
        if t >= 4:
            truth[2] = pred[2] = sq(40, 10)
        scorer.add(t, truth, pred)
    one, two = scorer.objects[1], scorer.objects[2]
    assert len(one.J) == 8 and one.J == pytest.approx([1, 1, 1, 1, 1 / 3, 1 / 3, 1 / 3, 1 / 3])
    s = one.stats()
    assert s["J-Mean"] == pytest.approx(2 / 3) and s["J-Recall"] == 0.5
    assert s["J-Decay"] == pytest.approx(1 - 1 / 3)  # quarters [0:3] and [5:8] of the 8 scored frames
    assert two.J == [1.0] * 8 and two.F == [1.0] * 8
    g = global_stats([one, two])
    assert g["J-Mean"] == pytest.approx((2 / 3 + 1) / 2)
    assert g["J&F-Mean"] == pytest.approx((g["J-Mean"] + g["F-Mean"]) / 2)


def test_paired_difference_is_the_mean_gap_with_an_interval_over_videos():
    """A tracker's J&F against sam2's: the mean over objects of the per-object gap, and an interval
    that is wide when one video carries the whole gap and tight when every video agrees."""
    base = {(f"v{v}", o): 0.8 for v in range(10) for o in (1, 2)}
    same = paired_difference(base, dict(base))
    assert (same["delta"], same["low"], same["high"], same["videos"]) == (0.0, 0.0, 0.0, 10)
    everywhere = paired_difference(base, {k: s + 0.01 for k, s in base.items()})
    assert everywhere["delta"] == pytest.approx(0.01)
    assert everywhere["low"] == pytest.approx(0.01) and everywhere["high"] == pytest.approx(0.01)
    # one video of 10 loses 0.1 on each of its 10 objects: a third of the resamples leave it out, so
    # the interval reaches 0 (resampling the 100 objects one by one would almost never miss all 10)
    many = {(f"v{v}", o): 0.8 for v in range(10) for o in range(10)}
    one_video = paired_difference(many, {k: s - 0.1 * (k[0] == "v0") for k, s in many.items()})
    assert one_video["delta"] == pytest.approx(-0.01)
    assert one_video["high"] == 0.0 and one_video["low"] < -0.015
    # objects, not videos, are averaged (as the DAVIS mean is): 3 objects at +0.03 and 1 at -0.01
    uneven = {("a", 1): 0.5, ("a", 2): 0.5, ("a", 3): 0.5, ("b", 1): 0.5}
    gap = paired_difference(uneven, {k: s + (0.03 if k[0] == "a" else -0.01) for k, s in uneven.items()})
    assert gap["delta"] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="same"):
        paired_difference(base, {("v0", 1): 0.8})


def test_overlaps_go_to_the_lowest_id():
    a = np.zeros((4, 4), bool)
    a[:, :3] = True
    b = np.zeros((4, 4), bool)
    b[:, 1:] = True
    out = lowest_id_on_top({2: b, 1: a})
    assert out[1].sum() == 12 and out[2].sum() == 4 and not (out[1] & out[2]).any()


def test_vos_davis_files_and_scores_recomputed_from_the_pngs(davis, tmp_path, monkeypatch, capsys):
    rc = run([f"data={davis}", "save_masks=True", "format=jsonl"], tmp_path, monkeypatch)
    out, err = capsys.readouterr()
    assert rc == 0, err
    record = json.loads(out)  # exactly one JSON line on stdout
    assert record["task"] == "vos" and 0 <= record["J&F-Mean"] <= 1
    run_dir = tmp_path / "runs" / "val"
    glob, per = rows(run_dir / "global_results.csv"), rows(run_dir / "per-sequence_results.csv")
    assert glob[0] == ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    assert per[0] == ["Sequence", "J-Mean", "F-Mean"]
    assert float(glob[1][1]) == pytest.approx(np.mean([float(r[1]) for r in per[1:]]), abs=2e-3)
    assert float(glob[1][0]) == pytest.approx((float(glob[1][1]) + float(glob[1][4])) / 2, abs=1e-3)
    assert (run_dir / "summary.json").is_file() and (run_dir / "jf_per_sequence.png").is_file()
    # the DAVIS evaluation of the written PNGs gives the CSV's numbers
    scores = {}
    for video in (davis / "ImageSets" / "2017" / "val.txt").read_text().split():
        gts = sorted((davis / "Annotations" / video).glob("*.png"))
        for gt_path in gts[1:-1]:
            gt = read_palette_png(gt_path)
            pred = read_palette_png(run_dir / "masks" / video / gt_path.name)
            assert pred.shape == gt.shape
            for oid in np.unique(read_palette_png(gts[0])):
                if oid:
                    j, f = scores.setdefault(f"{video}_{oid}", ([], []))
                    j.append(iou(pred == oid, gt == oid))
                    f.append(boundary_f(pred == oid, gt == oid))
    assert sorted(scores) == sorted(r[0] for r in per[1:])
    for name, jm, fm in per[1:]:
        assert float(jm) == pytest.approx(np.mean(scores[name][0]), abs=6e-4)
        assert float(fm) == pytest.approx(np.mean(scores[name][1]), abs=6e-4)


def test_val_and_train_validation_agree(davis, yolo, tmp_path, monkeypatch, capsys):
    """`sam2 train`'s per-epoch validation runs the same code: on whole videos (clip_len = video
    length) with every object, and on the same val images, it gives `sam2 val`'s numbers."""
    from sam2cli.engine.loader import load_model
    from sam2cli.io.datasets import open_dataset
    from sam2cli.train.evaluate import evaluate
    model, _ = load_model(MODEL, "cpu", 128)
    videos = open_dataset(davis, "val", clip_len=8, max_objects=None)
    train_v = evaluate(model, videos, True, max_samples=len(videos))
    train_i = evaluate(model, open_dataset(yolo, "val"), False, max_samples=100, max_objects=100)
    assert run([f"data={davis}", "format=jsonl"], tmp_path, monkeypatch) == 0
    val_v = json.loads(capsys.readouterr().out)
    assert run([f"data={yolo}", "format=jsonl"], tmp_path, monkeypatch) == 0
    val_i = json.loads(capsys.readouterr().out)
    assert train_v["JF"] == pytest.approx(val_v["J&F-Mean"], abs=1e-6)
    assert train_v["J"] == pytest.approx(val_v["J-Mean"], abs=1e-6)
    for k in ("miou_click", "miou_box", "miou_box_click"):
        assert train_i[k] == pytest.approx(val_i[k], abs=1e-6)


def test_image_and_interactive_protocols(yolo, tmp_path, monkeypatch, capsys):
    assert run([f"data={yolo}", "format=jsonl"], tmp_path, monkeypatch) == 0
    img = json.loads(capsys.readouterr().out)
    objects = rows(tmp_path / "runs" / "val" / "objects.csv")
    assert objects[0] == ["image", "object", "iou_click", "iou_box", "iou_box_click"]
    assert len(objects) - 1 == img["objects"] > 0
    assert img["miou_box"] == pytest.approx(np.mean([float(r[3]) for r in objects[1:]]), abs=1e-4)
    assert img["miou_box"] > 0.5  # the demo model finds the shapes from their boxes

    assert run([f"data={yolo}", "task=interactive", "format=jsonl"], tmp_path, monkeypatch) == 0
    rec = json.loads(capsys.readouterr().out)
    run_dir = tmp_path / "runs" / "val2"
    clicks = rows(run_dir / "clicks.csv")
    assert clicks[0] == ["clicks", "mIoU"] and len(clicks) == 21
    miou = [float(r[1]) for r in clicks[1:]]
    assert rec["AUC"] == pytest.approx(curve_auc(miou), abs=1e-3)
    assert rec["miou@1"] == pytest.approx(img["miou_click"], abs=1e-6)  # click 1 is the one-click protocol
    per = rows(run_dir / "objects.csv")
    noc90 = [int(r[3]) for r in per[1:]]
    assert all(1 <= n <= 20 for n in noc90) and rec["NoC@90"] == pytest.approx(np.mean(noc90))
    for r in per[1:]:  # NoC@90 is the first click reaching 0.90, else 20
        ious = [float(v) for v in r[4:]]
        first = next((k + 1 for k, v in enumerate(ious) if v >= 0.90), 20)
        assert int(r[3]) == first
    assert rec["NoC@85"] <= rec["NoC@90"] and (run_dir / "miou_vs_clicks.png").is_file()


def test_sav_layout_and_mask_folders(davis, yolo, tmp_path, monkeypatch, capsys):
    # SA-V: one folder of binary PNGs per object
    sav = tmp_path / "sav"
    video = (davis / "ImageSets" / "2017" / "val.txt").read_text().split()[0]
    (sav / "JPEGImages_24fps").mkdir(parents=True)
    (sav / "JPEGImages_24fps" / video).symlink_to(davis / "JPEGImages" / video)
    pngs = sorted((davis / "Annotations" / video).glob("*.png"))[::2]  # every 2nd frame annotated
    ids = sorted(set().union(*(np.unique(read_palette_png(p)) for p in pngs)) - {0})
    for png in pngs:  # as in SA-V, every object has a (maybe empty) PNG on every annotated frame
        lab = read_palette_png(png)
        for oid in ids:
            d = sav / "Annotations_6fps" / video / f"{oid:03d}"
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray((lab == oid).astype(np.uint8) * 255).save(d / png.name)
    assert run([f"data={sav}", "save_masks=True", "format=jsonl"], tmp_path, monkeypatch) == 0
    rec = json.loads(capsys.readouterr().out)
    n_obj = len(list((sav / "Annotations_6fps" / video).iterdir()))
    assert len(rows(tmp_path / "runs" / "val" / "per-sequence_results.csv")) == 1 + n_obj
    written = sorted(p.relative_to(tmp_path / "runs" / "val" / "masks") for p in
                     (tmp_path / "runs" / "val" / "masks").rglob("*.png"))
    expected = sorted(p.relative_to(sav / "Annotations_6fps") for p in (sav / "Annotations_6fps").rglob("*.png"))
    assert written == expected
    per = {r[0]: float(r[1]) for r in rows(tmp_path / "runs" / "val" / "per-sequence_results.csv")[1:]}
    for obj_dir in (sav / "Annotations_6fps" / video).iterdir():  # recomputed from the binary PNGs
        gts = sorted(obj_dir.glob("*.png"))[1:-1]  # the first and last annotated frames are not scored
        pred_dir = tmp_path / "runs" / "val" / "masks" / video / obj_dir.name
        j = [iou(np.array(Image.open(pred_dir / g.name)) > 0, np.array(Image.open(g)) > 0) for g in gts]
        assert per[f"{video}_{int(obj_dir.name)}"] == pytest.approx(np.mean(j), abs=6e-4)
    assert rec["J-Mean"] == pytest.approx(np.mean(list(per.values())), abs=2e-3)
    # images/ + masks/ folders: instance-id PNGs
    folders = tmp_path / "folders"
    (folders / "images").mkdir(parents=True)
    (folders / "masks").mkdir()
    n = 0
    for png in sorted((davis / "Annotations" / video).glob("*.png"))[:2]:
        (folders / "images" / f"{png.stem}.jpg").symlink_to(davis / "JPEGImages" / video / f"{png.stem}.jpg")
        Image.fromarray(read_palette_png(png)).save(folders / "masks" / png.name)
        n += len(np.unique(read_palette_png(png))) - 1
    assert run([f"data={folders}", "format=jsonl"], tmp_path, monkeypatch) == 0
    assert json.loads(capsys.readouterr().out)["objects"] == n


def _val_video(root: Path) -> Path:
    return root / "Annotations" / (root / "ImageSets" / "2017" / "val.txt").read_text().split()[0]


def _no_annotations(root: Path) -> str:
    import shutil
    shutil.rmtree(root / "Annotations")
    return "has no Annotations/ folder"


def _wrong_size(root: Path) -> str:
    video = _val_video(root)
    png = sorted(video.glob("*.png"))[3]
    lab = read_palette_png(png)
    img = Image.fromarray(np.pad(lab, ((0, 2), (0, 0))))
    img.putpalette(Image.open(png).getpalette())
    img.save(png)
    return f"{png.name}: mask is 64x66 but its frame"


def _no_objects(root: Path) -> str:
    video = _val_video(root)
    for png in video.glob("*.png"):
        img = Image.fromarray(np.zeros_like(read_palette_png(png)))
        img.putpalette(Image.open(png).getpalette())
        img.save(png)
    return "has no annotated object on any frame"


@pytest.mark.parametrize("break_it", [_no_annotations, _wrong_size, _no_objects])
def test_bad_video_data_is_one_line_exit_2(break_it, tmp_path, monkeypatch, capsys):
    root = tmp_path / "bad"
    write_davis_dataset(root, 2, n_frames=6, size=64, seed=1, n_val=1)
    expected = break_it(root)
    assert run([f"data={root}"], tmp_path, monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()  # nothing written


def test_run_val_reads_yolo_and_coco_from_python(yolo, tmp_path):
    """`engine.val.job.run_val` opens YOLO and COCO data itself (no reader handed in by the CLI):
    a COCO json holding the YOLO val split's masks as RLE scores the same."""
    from io import StringIO

    from rich.console import Console

    from sam2cli.engine.options import ModelOptions, RunDirOptions, ValOptions
    from sam2cli.engine.val.job import run_val
    from sam2cli.io.coco_rle import mask_to_rle
    from sam2cli.io.datasets import open_dataset
    val = open_dataset(yolo, "val")
    images, anns = [], []
    for i in range(len(val)):
        s = val[i]
        images.append({"id": i + 1, "file_name": s.file, "height": s.image.shape[0], "width": s.image.shape[1]})
        anns += [{"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "segmentation": mask_to_rle(m),
                  "iscrowd": 0} for m in s.masks]
    coco = tmp_path / "coco" / "instances.json"
    coco.parent.mkdir()
    coco.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "shape"}]}))
    summaries = []
    for name, data in (("yolo", yolo), ("coco", coco)):
        opts = ValOptions(data=str(data), net=ModelOptions(model=MODEL, device="cpu", imgsz=128),
                          run_dir=RunDirOptions(project=str(tmp_path / "runs"), name=name))
        assert run_val(opts, Console(file=StringIO())) == 0
        summaries.append(json.loads((tmp_path / "runs" / name / "summary.json").read_text()))
    a, b = summaries
    assert a["objects"] == b["objects"] == len(anns) > 0 and a["images"] == b["images"] == len(val)
    for k in ("miou_click", "miou_box", "miou_box_click"):
        assert a[k] == pytest.approx(b[k], abs=1e-9)


def test_task_vos_on_images_and_missing_masks_are_one_line_exit_2(yolo, tmp_path, monkeypatch, capsys):
    assert run([f"data={yolo}", "task=vos"], tmp_path, monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert "task=vos needs a video dataset" in err and len(err.splitlines()) == 1
    (tmp_path / "imgs" / "images").mkdir(parents=True)
    assert run([f"data={tmp_path / 'imgs'}"], tmp_path, monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert "no masks/ folder" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_object_appearing_later_is_prompted_on_its_first_annotation(tmp_path, monkeypatch, capsys):
    """Object 2 is annotated from frame 3 on: nothing is predicted for it before, its prompt frame
    reproduces its mask, and DAVIS' void label (255) is background."""
    root = tmp_path / "late"
    (root / "JPEGImages" / "v").mkdir(parents=True)
    (root / "Annotations" / "v").mkdir(parents=True)
    for t in range(6):
        img = np.full((64, 64, 3), 30, np.uint8)
        lab = np.zeros((64, 64), np.uint8)
        img[10:30, 5 + 2 * t:25 + 2 * t] = (220, 40, 40)
        lab[10:30, 5 + 2 * t:25 + 2 * t] = 1
        if t >= 3:
            img[40:56, 40:56] = (40, 200, 60)
            lab[40:56, 40:56] = 2
        lab[:2, :] = 255  # void
        Image.fromarray(img).save(root / "JPEGImages" / "v" / f"{t:05d}.jpg", quality=95)
        p = Image.fromarray(lab)
        p.putpalette(list(range(256)) * 3)
        p.save(root / "Annotations" / "v" / f"{t:05d}.png")
    assert run([f"data={root}", "save_masks=True", "format=jsonl"], tmp_path, monkeypatch) == 0
    capsys.readouterr()
    masks = tmp_path / "runs" / "val" / "masks" / "v"
    preds = [read_palette_png(masks / f"{t:05d}.png") for t in range(6)]
    assert all(not (p == 2).any() for p in preds[:3]) and not any((p == 255).any() for p in preds)
    truth = np.zeros((64, 64), bool)
    truth[40:56, 40:56] = True
    assert iou(preds[3] == 2, truth) > 0.8
    per = {r[0] for r in rows(tmp_path / "runs" / "val" / "per-sequence_results.csv")[1:]}
    assert per == {"v_1", "v_2"}
