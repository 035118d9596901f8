"""`sam2 track` and the video/interactive predictors as users drive them: prompts files and
their errors, outputs per frame, bounded memory on long videos, the dynamic interactive bank."""

import json
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from sam2cli.cli.app import main
from sam2cli.io.mask_pngs import read_palette_png
from media import write_mp4


def moving_disc(i: int, w: int = 96, h: int = 64) -> np.ndarray:
    img = np.full((h, w, 3), (60, 100, 60), np.uint8)
    cv2.circle(img, (10 + (i * 3) % (w - 20), h // 2), 10, (230, 30, 30), -1)
    return img


def write_video(path: Path, n: int, w: int = 96, h: int = 64) -> Path:
    return write_mp4(path, (moving_disc(i, w, h) for i in range(n)))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("vid") / "clip.mp4", 12)


def run(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return main(args)


@pytest.mark.parametrize("entries, text", [
    ([{"frame": 0, "obj_id": 1, "bbox": [1, 2, 3, 4]}], "unknown key 'bbox'"),
    ([{"frame": 40, "obj_id": 1, "points": [[10, 10]]}], "frame 40 is past the end"),
    ([{"frame": 0, "points": [[10, 10], [20, 20]], "labels": [1]}], "label"),
])
def test_bad_prompt_entries_exit_2_naming_the_entry(entries, text, clip, tiny_ckpt, tmp_path, monkeypatch, capsys):
    (tmp_path / "prompts.json").write_text(json.dumps(entries))
    rc = run(["track", f"model={tiny_ckpt}", f"source={clip}", "prompts=prompts.json", "imgsz=128"],
             tmp_path, monkeypatch)
    err = capsys.readouterr().err
    assert rc == 2 and text in err and "entry 1" in err or text in err, err
    assert len(err.strip().splitlines()) == 1


def test_track_without_prompts_is_a_usage_error(clip, tmp_path, monkeypatch, capsys):
    assert run(["track", f"source={clip}"], tmp_path, monkeypatch) == 2
    assert "needs prompts" in capsys.readouterr().err


def test_track_writes_every_frame_in_order(clip, tiny_ckpt, tmp_path, monkeypatch, capsys):
    (tmp_path / "p.yaml").write_text("- {frame: 4, obj_id: 3, points: [[22, 32]], labels: [1]}\n"
                                     "- {frame: 6, obj_id: 5, box: [30, 20, 60, 44]}\n")
    rc = run(["track", f"model={tiny_ckpt}", f"source={clip}", "prompts=p.yaml", "imgsz=128", "direction=both",
              "save_json=True", "save_masks=True", "mask_format=palette", "save_txt=True"], tmp_path, monkeypatch)
    assert rc == 0, capsys.readouterr().err
    out = tmp_path / "runs" / "track"
    with av.open(str(out / "clip.mp4")) as c:  # the overlay covers the whole clip, in order
        assert sum(1 for _ in c.decode(video=0)) == 12
    assert len(list((out / "masks").glob("clip_*.png"))) == 12  # forward 4..11, backward 4..0
    assert len(list((out / "labels").glob("clip_*.txt"))) == 12
    for png in (out / "masks").glob("*.png"):
        assert set(np.unique(read_palette_png(png))) <= {0, 3, 5}
    records = json.loads((out / "predictions.json").read_text())
    assert all(r["obj_id"] in (3, 5) and 0 <= r["frame"] < 12 for r in records)
    assert not list(out.glob(".*"))  # no spool or temp left behind


def test_memory_state_is_bounded(tiny_ckpt, tmp_path):
    """Recent outputs are evicted: only frames within the pointer window of the tracking front or
    of a prompted frame (where a reverse pass would start) are kept."""
    from sam2cli.engine.video_predictor import SAM2VideoPredictor
    video = write_video(tmp_path / "long.mp4", 60)
    p = SAM2VideoPredictor(overrides=dict(model=str(tiny_ckpt), imgsz=128, device="cpu"))
    s = p.init_state(str(video))
    p.add_new_points_or_box(s, 0, 1, points=[[10, 32]], labels=[1])
    w = p.model.cfg.max_obj_ptrs
    for frame, _, _ in p.propagate_in_video(s):
        assert len(s.objects[1].recent) <= 2 * (w + 1)
    assert all(t <= w or t >= 59 - w for t in s.objects[1].recent) and list(s.objects[1].cond) == [0]


RSS_SCRIPT = """
import resource, sys
from sam2cli.cli.app import main
rc = main(["track", "model=" + sys.argv[1], "source=" + sys.argv[2], "points=[[10,32]]", "imgsz=128",
           "device=cpu", "save_json=True", "project=" + sys.argv[3]])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(rc)
"""


@pytest.mark.slow  # two subprocesses tracking 150 and 600 frames; the bound itself: test_memory_state_is_bounded
def test_peak_memory_does_not_grow_with_video_length(tiny_ckpt, tmp_path):
    peaks = {}
    for n in (150, 600):
        video = write_video(tmp_path / f"v{n}.mp4", n)
        r = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(tiny_ckpt), str(video), str(tmp_path / "runs")],
                           capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr
        peaks[n] = int(r.stdout.strip().splitlines()[-1])
    assert peaks[600] <= 1.10 * peaks[150], peaks


def test_dynamic_interactive_predictor(tiny_ckpt):
    from sam2cli.engine.interactive import SAM2DynamicInteractivePredictor
    from sam2cli.errors import UsageError
    p = SAM2DynamicInteractivePredictor(overrides=dict(model=str(tiny_ckpt), imgsz=128, device="cpu"), max_obj_num=3)
    img = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    with pytest.raises(UsageError, match="no object is registered"):
        p(img)
    with pytest.raises(UsageError, match="obj_id 3 is out of range"):
        p(img, bboxes=[[5, 5, 40, 40]], obj_ids=[3])
    p(img, bboxes=[[5, 5, 40, 40]], obj_ids=[0])
    p(img, points=[[60, 30]], labels=[1], obj_ids=[2])  # a second object, registered later
    for _ in range(12):
        r = p(img)
    assert set(p.objects) == {0, 2} and set(r.boxes.id.tolist()) <= {0, 2}
    for _ in range(10):
        p(img, points=[[20, 20]], obj_ids=[0])  # refinements: the prompted bank is bounded too
    assert all(len(o.recent) <= 6 and len(o.cond) <= p.max_cond for o in p.objects.values())


def test_interactive_query_without_memory_update_leaves_the_bank_as_it_was(tiny_ckpt):
    from sam2cli.engine.interactive import SAM2DynamicInteractivePredictor
    p = SAM2DynamicInteractivePredictor(overrides=dict(model=str(tiny_ckpt), imgsz=128, device="cpu"))
    rng = np.random.default_rng(1)
    imgs = [rng.integers(0, 255, (64, 96, 3), dtype=np.uint8) for _ in range(4)]
    p(imgs[0], bboxes=[[5, 5, 40, 40]], obj_ids=[0])
    p(imgs[1])

    def bank():
        o = p.objects[0]
        return sorted(o.cond), sorted(o.recent), sorted(o.tracked), sorted(o.waiting)

    before = bank()
    assert before[0] == [0] and before[1] == [1] and before[3] == []
    p(imgs[2], update_memory=False)                                            # a query
    p(imgs[3], points=[[20, 20]], labels=[1], obj_ids=[0], update_memory=False)  # a prompt
    assert bank() == before
    for _ in range(20):
        p(imgs[2])
    assert len(p.objects[0].tracked) <= 6  # the frames it remembers, not every query
