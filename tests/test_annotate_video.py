"""`sam2 annotate` on videos: generated clips with ground truth and per-frame detection files.

The demo model runs at 128 px here (structure, resume, identity of files); the quality test runs
it at its own 384 px on two clips. Detections come from `det_labels/<video>/<frame>.txt`.
"""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from rich.console import Console

from sam2cli.cli.args import options_from, resolve
from sam2cli.engine.annotate.job import run_annotate
from sam2cli.engine.annotate.video_data import list_media
from sam2cli.engine.annotate.video_match import TrackBook, box_iou, plan_frame
from sam2cli.engine.options import AnnotateOptions
from sam2cli.errors import UsageError
from sam2cli.train.scenes_tracks import write_track_videos

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "weights" / "sam2_demo.pt"
SAM_IMGSZ = 128
SIZE = (96, 128)


@pytest.fixture(autouse=True)
def one_thread_and_cached_sam(monkeypatch):
    """Load each SAM once for the module, and run torch on one thread (as a Ray actor here does:
    the same arithmetic, so files compare byte for byte)."""
    from sam2cli.engine import loader
    real = loader.load_model

    def cached(model, device=None, imgsz=None):
        key = (str(model), str(device), imgsz)
        if key not in _SAM:
            _SAM[key] = real(model, device, imgsz)
        return _SAM[key]

    monkeypatch.setattr(loader, "load_model", cached)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


_SAM: dict = {}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """3 frame folders of 12 frames (clip0..clip2) with detections on every frame, and the truth."""
    root = tmp_path_factory.mktemp("clips")
    write_track_videos(root, n_videos=3, size=SIZE, n_frames=12, n_objects=3)
    return root


@pytest.fixture(scope="module")
def reference(clips, tmp_path_factory):
    """The files of one uninterrupted run on the clips (save_json=True, save=False)."""
    out = tmp_path_factory.mktemp("reference") / "ds"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rc, log = run(clips, out, "save_json=True", "save=False")
    finally:
        torch.set_num_threads(threads)
    assert rc == 0, log
    return out


def run(root, out, *argv, data=None, sam_imgsz=SAM_IMGSZ):
    buf = io.StringIO()
    args = resolve([f"data={data or root / 'videos'}", f"sam_model={DEMO}", "device=cpu",
                    f"det_labels={root / 'det_labels'}", f"output_dir={out}", "det_stride=5", *argv])
    rc = run_annotate(options_from(AnnotateOptions, args), Console(file=buf, width=400), sam_imgsz=sam_imgsz)
    return rc, buf.getvalue()


def files(root, hidden=False):
    root = Path(root)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and (hidden or not any(s.startswith(".") for s in p.relative_to(root).parts))}


# ----------------------------------------------------------------------------- pure rules

def test_plan_frame_starts_matches_reprompts_and_takes():
    tracked = {1: ([10, 10, 50, 50], 0), 2: ([60, 10, 100, 50], 1), 3: ([0, 60, 40, 100], 2)}
    boxes = np.array([[12, 10, 50, 52],     # class 0 on track 1, IoU ~0.9: matched, no re-prompt
                      [60, 10, 90, 40],     # class 1 on track 2, IoU 0.56: matched, re-prompted
                      [60, 10, 100, 50],    # class 0 where track 2 (class 1) is: not covered, new
                      [14, 14, 50, 50],     # class 0, a worse copy of detection 0: covered, paired with nothing
                      [0, 60, 40, 100]],    # class 1 on track 3 (class 2): new; takes track 3
                     np.float64)
    cls = np.array([0, 1, 0, 0, 1])
    p = plan_frame(boxes, cls, tracked, new_iou=0.5, reprompt_iou=0.7)
    assert [(d, t) for d, t, _ in p.matched] == [(0, 1), (1, 2)]
    assert p.reprompt == [(1, 2)]
    assert p.new == [2, 4] and p.covered == [3]
    assert p.taken == [3]  # unmatched, and detection 4 (another object's) covers its mask box
    assert plan_frame(boxes[:1], cls[:1], {}, 0.5, 0.7).new == [0]
    dup = plan_frame(np.array([[0, 0, 10, 10], [0, 0, 10, 11]]), np.array([4, 4]), {}, 0.5, 0.7)
    assert dup.new == [0] and dup.covered == []  # a duplicate detection starts no second object
    np.testing.assert_allclose(box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [5, 5, 6, 6], [0, 0, 0, 0]]),
                               [[1 / 7, 0, 0]])


def test_track_book_ends_objects_and_cuts_their_labels():
    book = TrackBook(max_lost=20, det_stride=10)  # 2 unmatched detection frames end an object
    a, b, c, d = book.start(0, 3, 0.9), book.start(0, 1, 0.5), book.start(0, 2, 0.4), book.start(0, 5, 0.8)
    at = {a: [0, 0, 10, 10], d: [50, 50, 60, 60]}
    for frame in range(1, 41):
        present = {a: True, b: frame < 5, c: True, d: True}
        if frame % 10 == 0:
            dets = [[0, 0, 10, 10]] + ([[50, 50, 60, 60]] if frame != 40 else [])  # d is missed on frame 40
            plan = plan_frame(np.array(dets), np.array([3, 5][:len(dets)]), {t: (at[t], book.tracks[t].cls)
                              for t in (a, d)}, 0.5, 0.7)
            book.detected(frame, plan, np.array(dets), np.array([0.7, 0.6][:len(dets)]),
                          {t: present[t] for t in book.live})
        book.seen(frame, {t: present[t] for t in book.live})
        for t in book.due(frame):
            book.end(t, frame)
    ta, tb, tc, td = (book.tracks[t] for t in (a, b, c, d))
    assert ta.ended is None and ta.hits == 5 and ta.conf == pytest.approx((0.9 + 4 * 0.7) / 5)
    assert tb.ended == 24  # absent from frame 5: ends max_lost frames after frame 4
    assert tc.ended == 20 and tc.misses == 2  # present but unmatched on frames 10 and 20
    assert td.ended is None and td.misses == 1
    kept = {t: [f for f in range(41) if book.labelled(t, f)] for t in (a, b, c, d)}
    assert kept[a] == kept[b] == list(range(41)) and not book.cut(a)
    assert kept[c] == [0] and kept[d] == list(range(31))  # c: a false detection; d: missed at the end


def test_a_lost_object_is_re_found_by_a_detection_of_its_class():
    book = TrackBook(max_lost=30, det_stride=10)
    a = book.start(0, 2, 0.9, [10, 10, 20, 20])
    b = book.start(0, 2, 0.9, [80, 10, 90, 20])
    c = book.start(0, 4, 0.9, [40, 40, 50, 50])
    # frame 10: a has drifted (its mask is elsewhere), c is absent; two class-2 boxes and a class-4 one
    dets, cls = np.array([[30, 10, 40, 20], [82, 12, 92, 22], [60, 60, 70, 70]], np.float64), np.array([2, 2, 4])
    tracked = {a: ([0, 60, 8, 70], 2), b: ([81, 11, 91, 21], 2)}
    plan = plan_frame(dets, cls, tracked, 0.5, 0.7, book.live_boxes())
    assert [(d, t) for d, t, _ in plan.matched] == [(1, b)] and plan.new == []
    assert plan.refind == [(0, a), (2, c)]  # nearest live object of the class, drifted or absent
    book.detected(10, plan, dets, np.array([0.8, 0.8, 0.5]), {a: True, b: True})
    assert book.tracks[a].hits == 2 and book.tracks[a].misses == 0 and book.tracks[c].last_hit == 10
    assert [f for f in range(12) if book.labelled(a, f)] == [0, 10, 11]  # its frames in between were on something else
    assert [f for f in range(12) if book.labelled(c, f)] == list(range(12))  # c was only hidden
    assert plan_frame(dets[:1], cls[:1], {}, 0.5, 0.7, {}).new == [0]


def test_media_listing(tmp_path):
    d = tmp_path / "data"
    for rel in ("a.mp4", "sub/b.mkv", "frames/00000.jpg", "frames/00001.jpg", "photos/1.jpg", "photos/3.jpg",
                "x.png", ".hidden/c.mp4"):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(b"")
    videos, images = list_media(d)
    assert [(v.index, v.name, v.path.relative_to(d).as_posix()) for v in videos] == [
        (0, "a", "a.mp4"), (1, "frames", "frames"), (2, "sub/b", "sub/b.mkv")]
    assert [p.as_posix() for p in images] == ["photos/1.jpg", "photos/3.jpg", "x.png"]  # 1, 3: not a frame run
    assert list_media(d / "a.mp4")[0][0].name == "a"


# ----------------------------------------------------------------------------- end to end

def test_videos_become_a_training_set(clips, tmp_path, monkeypatch):
    out = tmp_path / "ds"
    rc, log = run(clips, out, "save_json=True", "save_masks=True", "vid_stride=2")
    assert rc == 0, log
    assert "3 video(s) annotated" in log and "36 frame(s) tracked, 18 written" in log, log
    for v in ("clip0", "clip1", "clip2"):
        stems = sorted(p.stem for p in (out / "images" / v).iterdir())
        assert stems == [f"{i:05d}" for i in range(0, 12, 2)]
        assert sorted(p.stem for p in (out / "labels" / v).iterdir()) == stems
        assert sorted(p.stem for p in (out / "masks" / v).iterdir()) == stems
        assert (out / "overlays" / f"{v}.mp4").stat().st_size > 0
    assert not (out / ".partial").exists() or not any((out / ".partial").rglob("*tmp*"))
    names = yaml.safe_load((out / "data.yaml").read_text())["names"]
    assert names[0] == "circle"  # det_labels/classes.txt

    vis = json.loads((out / "annotations.json").read_text())
    assert [v["id"] for v in vis["videos"]] == [1, 2, 3] and vis["videos"][0]["length"] == 6
    assert vis["videos"][0]["file_names"][1] == "clip0/00002.jpg"
    from pycocotools import mask as mask_utils
    assert vis["annotations"], "no tracks"
    for a in vis["annotations"]:
        v = vis["videos"][a["video_id"] - 1]
        assert len(a["segmentations"]) == len(a["bboxes"]) == len(a["areas"]) == v["length"]
        assert 0 < a["score"] <= 1 and a["category_id"] in names
        for seg, box, area in zip(a["segmentations"], a["bboxes"], a["areas"]):
            if seg is None:
                assert box is None and area is None
                continue
            rle = {"size": seg["size"], "counts": seg["counts"].encode()}
            m = mask_utils.decode(rle)
            assert m.shape == (v["height"], v["width"]) and int(m.sum()) == area == int(mask_utils.area(rle))
            np.testing.assert_allclose(mask_utils.toBbox(rle), box, atol=1)  # pycocotools: x, y, w, h
            assert mask_utils.encode(np.asfortranarray(m))["counts"].decode() == seg["counts"]

    from sam2cli.io.datasets.yolo import YoloDataset  # the project's own reader
    ds = YoloDataset(out / "data.yaml", "train")
    assert len(ds) == 18
    n_lines = sum(len(p.read_text().splitlines()) for p in (out / "labels").rglob("*.txt"))
    assert sum(len(ds[i].masks) for i in range(len(ds))) == n_lines > 0

    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ultralytics"))
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    ultra = pytest.importorskip("ultralytics.data.dataset", reason='ultralytics is not installed (pip install "sam2cli[yolo]")')
    from ultralytics.data.utils import check_det_dataset
    cfg = check_det_dataset(str(out / "data.yaml"))
    yd = ultra.YOLODataset(img_path=cfg["train"], imgsz=64, augment=False, data=cfg, task="segment")
    assert len(yd.labels) == 18 and sum(len(lb["segments"]) for lb in yd.labels) == n_lines


def test_palette_masks_hold_track_ids(clips, tmp_path):
    out, data = tmp_path / "ds", tmp_path / "one"
    data.mkdir()
    os.symlink(clips / "videos" / "clip1", data / "clip1")  # a folder of frame folders (one)
    rc, log = run(clips, out, "save_json=True", "save_masks=True", "save=False", data=data)
    assert rc == 0 and "1 video(s) annotated" in log and not (out / "overlays").exists(), log
    from sam2cli.io.coco_rle import rle_to_mask
    from sam2cli.io.mask_pngs import read_palette_png
    vis = json.loads((out / "annotations.json").read_text())
    for k, name in enumerate(vis["videos"][0]["file_names"]):
        ids = read_palette_png(out / "masks" / Path(name).with_suffix(".png"))
        for a in vis["annotations"]:
            if a["segmentations"][k] is not None:
                m = rle_to_mask(a["segmentations"][k])
                assert (ids[m] == a["track_id"]).mean() > 0.5  # overlaps go to one of the objects


def test_resume_after_a_kill_redoes_only_the_unfinished_video(clips, reference, tmp_path):
    out = tmp_path / "out"
    argv = [f"data={clips / 'videos'}", f"sam_model={DEMO}", "device=cpu", "det_stride=5",
            f"det_labels={clips / 'det_labels'}", f"output_dir={out}", "save_json=True", "save=False"]
    code = ("import io, sys, torch\ntorch.set_num_threads(1)\nsys.path.insert(0, %r)\n"
            "from rich.console import Console\n"
            "from sam2cli.cli.args import options_from, resolve\n"
            "from sam2cli.engine.annotate import video\n"
            "from sam2cli.engine.annotate.job import run_annotate\n"
            "from sam2cli.engine.options import AnnotateOptions\n"
            "video._TEST_HOOKS['kill_at'] = ('clip1', 7)\n"
            "opts = options_from(AnnotateOptions, resolve(%r))\n"
            "sys.exit(run_annotate(opts, Console(file=io.StringIO()), sam_imgsz=%d))\n") % (str(REPO), argv, SAM_IMGSZ)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == -9, p.stderr[-2000:]  # SIGKILLed during video 2 of 3
    assert (out / ".done" / "clip0.json").is_file() and not (out / ".done" / "clip1.json").exists()
    assert list((out / ".partial").glob("clip1.tmp*"))  # what the kill left
    assert not (out / "images" / "clip1").exists()  # never in place as if complete
    kept = {p: p.stat().st_mtime_ns for p in (out / "labels" / "clip0").iterdir()}
    rc, log = run(clips, out, "save_json=True", "save=False")
    assert rc == 0 and "2 video(s) annotated" in log and "1 already done" in log, log
    assert {p: p.stat().st_mtime_ns for p in (out / "labels" / "clip0").iterdir()} == kept
    assert not list((out / ".partial").glob("clip1.tmp*"))
    got, want = files(out, hidden=True), files(reference, hidden=True)
    for f in (got, want):
        f["data.yaml"] = b"\n".join(ln for ln in f["data.yaml"].splitlines() if not ln.startswith(b"path:"))
    assert got.keys() == want.keys() and got == want


def test_shards_split_videos(clips, reference, tmp_path):
    for i in range(2):
        rc, log = run(clips, tmp_path / "ds", f"shard={i}/2", "save=False", "save_json=True")
        assert rc == 0 and "(shard %d/2)" % i in log, log
    got, want = files(tmp_path / "ds", hidden=True), files(reference, hidden=True)
    assert {k for k in got if k.startswith("annotations")} == {"annotations_shard0of2.json",
                                                              "annotations_shard1of2.json"}
    same = [k for k in want if not k.startswith(("annotations", "data.yaml"))]
    assert same and all(got[k] == want[k] for k in same)  # every video once, as in one run
    vis = [json.loads(got[f"annotations_shard{i}of2.json"]) for i in range(2)]
    ids = sorted(v["id"] for part in vis for v in part["videos"])
    assert ids == [1, 2, 3] and all(part["videos"] for part in vis)  # ids: positions in the whole list


def test_bad_inputs_are_one_line_each(clips, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for v in ("clip0", "clip2"):
        os.symlink(clips / "videos" / v, data / v)
    (data / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    (clips / "det_labels" / "broken").mkdir(exist_ok=True)
    rc, log = run(clips, tmp_path / "ds", "save=False", data=data)
    assert rc == 1, log
    lines = [ln for ln in log.splitlines() if "broken" in ln]
    assert lines[0].startswith("skipped video broken:") and "2 video(s) annotated" in log, log
    assert (tmp_path / "ds" / ".done" / "clip2.json").is_file()

    (data / "broken.mp4").unlink()
    os.symlink(clips / "videos" / "clip1", data / "clip9")  # det_labels has no clip9/
    rc, log = run(clips, tmp_path / "ds2", "save=False", data=data)
    assert rc == 1
    assert [ln for ln in log.splitlines() if ln.startswith("skipped")] == [
        f"skipped video clip9: det_labels={clips / 'det_labels'} has no folder clip9/ for this video "
        f"(expected {clips / 'det_labels' / 'clip9'}/<frame>.txt)"]

    from sam2cli.cli.app import main
    for bad in ("det_stride=0", "new_iou=0", "max_lost=-1", "reprompt_iou=2"):
        assert main(["annotate", f"data={data}", f"det_labels={clips / 'det_labels'}", bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and bad.split("=")[0] in err[0], err
    with pytest.raises(UsageError, match="det_stride=1.5"):
        run(clips, tmp_path / "ds3", "det_stride=1.5", data=data)


def test_mixed_images_and_videos(clips, tmp_path):
    data = tmp_path / "mixed"
    data.mkdir()
    os.symlink(clips / "videos" / "clip0", data / "clip0")
    cv2.imwrite(str(data / "photo.png"), np.full((40, 50, 3), 90, np.uint8))
    (clips / "det_labels" / "photo.txt").write_text("0 0.5 0.5 0.4 0.4\n")
    rc, log = run(clips, tmp_path / "out", "save=False", data=data)
    assert rc == 0, log
    assert "1 image(s) annotated" in log and "1 video(s) annotated" in log
    assert (tmp_path / "out" / "photo.txt").is_file()  # the image: as today, into output_dir
    assert len(list((tmp_path / "out" / "labels" / "clip0").iterdir())) == 12


def test_torchvision_detector_on_a_video(clips, tmp_path):
    from sam2cli.engine.annotate.detectors import TorchvisionDetector
    name = "fasterrcnn_mobilenet_v3_large_320_fpn"
    torch.manual_seed(0)
    weights = tmp_path / "random.pth"
    torch.save(TorchvisionDetector(name, weights=None).model.state_dict(), weights)
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(clips / "videos" / "clip0", data / "clip0")
    buf = io.StringIO()
    args = resolve([f"data={data}", f"sam_model={DEMO}", "device=cpu", f"det_model={name}:{weights}",
                    "conf=0.0", "max_det=2", "det_stride=6", f"output_dir={tmp_path / 'ds'}", "save=False"])
    rc = run_annotate(options_from(AnnotateOptions, args), Console(file=buf, width=400), sam_imgsz=SAM_IMGSZ)
    assert rc == 0, buf.getvalue()
    assert len(list((tmp_path / "ds" / "labels" / "clip0").iterdir())) == 12
    assert "person" in (tmp_path / "ds" / "data.yaml").read_text()  # COCO names from torchvision


def test_identity_and_masks_on_generated_scenes(tmp_path):
    """The demo model at 384 px on 2 clips of 30 frames, detections every 10 frames: objects keep
    their track ids, and the masks on the detection frames match the per-image annotate's.

    Where the detector saw an object both have its box's mask (the video's through the tracker's
    prompt, on frames resized as the reference's video loader resizes them); tracking adds masks
    where it missed one. These 6 detection frames hold no miss, so the two differ by the resizing
    only, either way: within 0.01 here. That the video's is the higher is a claim over many
    misses: test_masks_beat_per_image_annotate (-m slow, the README's 8 clips of 60 frames)."""
    from sam2cli.engine.annotate.detectors import LabelsDetector
    from sam2cli.engine.annotate.image import annotate_image
    from sam2cli.engine.image_predictor import ImagePredictor
    from sam2cli.engine.loader import load_model
    from sam2cli.io.coco_rle import rle_to_mask
    from sam2cli.io.image import load_image
    from sam2cli.train.scenes_tracks import load_truth, score_video, summarize, vis_predictions

    root = tmp_path / "scenes"
    names = write_track_videos(root, n_videos=2, seed=1, size=(96, 128), n_frames=30, n_objects=3)
    rc, log = run(root, tmp_path / "ds", "save=False", "save_json=True", "det_stride=10", sam_imgsz=None)
    assert rc == 0, log
    preds = vis_predictions(tmp_path / "ds" / "annotations.json")
    predictor = ImagePredictor(load_model(str(DEMO), "cpu")[0])
    det = LabelsDetector(root / "det_labels")
    video, image, every = [], [], []
    for name in names:
        truth, _ = load_truth(root / "truth" / f"{name}.npz")
        frames = list(range(0, 30, 10))
        img = {}
        for t in frames:
            rel = Path(name) / f"{t:05d}.jpg"
            _, recs, _ = annotate_image(det, predictor, load_image(root / "videos" / rel), rel, save_json=True)
            img[t] = {k: rle_to_mask(r["segmentation"]) for k, r in enumerate(recs)}
        image.append(score_video(truth, img, frames))
        video.append(score_video(truth, preds[name], frames))
        every.append(score_video(truth, preds[name]))
    v, i, e = summarize(video), summarize(image), summarize(every)
    assert e["identity"] >= 0.95 and e["objects"] >= 4, e
    assert v["iou"] >= i["iou"] - 0.01, (v, i)


@pytest.mark.slow
def test_masks_beat_per_image_annotate(tmp_path):
    """The README's measurement (scripts/eval_annotate_video.py: 8 clips of 60 frames, seed 7,
    det_stride=10): identity >= 0.95, and on the detection frames the video's mean mask IoU is at
    least per-image annotate's on the same frames and detections."""
    out = tmp_path / "va.json"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "eval_annotate_video.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["identity"] >= 0.95 and r["objects"] >= 20, r
    assert r["iou_video"] >= r["iou_image"], r
