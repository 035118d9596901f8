"""What a new user met (issue 19, section 3): the demo model on small images and a short h264
clip, driven the way the README shows. Each test pins one of the rough edges found then."""

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from sam2cli.cli.app import main
from media import write_mp4

DEMO = str(Path(__file__).resolve().parents[1] / "weights" / "sam2_demo.pt")
EVERYTHING_FAST = ["points_per_side=4", "pred_iou_thresh=0.0", "stability_score_thresh=0.0"]


def scene(i: int = 0, w: int = 192, h: int = 160) -> np.ndarray:
    """A red disc moving right (3 px a frame) and a fixed blue square on green, RGB."""
    img = np.full((h, w, 3), (60, 100, 60), np.uint8)
    cv2.circle(img, (40 + 3 * i, 100), 25, (230, 30, 30), -1)
    cv2.rectangle(img, (120, 20), (170, 70), (30, 30, 230), -1)
    return img


def write_clip(path: Path, n: int = 30) -> Path:
    return write_mp4(path, (scene(i) for i in range(n)))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clip") / "vid.mp4")


def run(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return main(args)


# ---------------------------------------------------------------- 1. predict on a video, no prompts

@pytest.mark.parametrize("extra, frames", [(["max_frames=1"], [0]), (["max_frames=3", "vid_stride=4"], [0, 4, 8])])
def test_predict_video_everything_honours_max_frames_and_stride(extra, frames, clip, tmp_path, monkeypatch,
                                                                capsys):
    rc = run(["predict", f"model={DEMO}", f"source={clip}", "save_json=True", *EVERYTHING_FAST, *extra],
             tmp_path, monkeypatch)
    err = capsys.readouterr().err
    assert rc == 0, err
    out = tmp_path / "runs" / "predict"
    records = json.loads((out / "predictions.json").read_text())
    assert sorted({r["frame"] for r in records}) == frames
    with av.open(str(out / "vid.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == len(frames)
    assert f"{len(frames)} frame(s)" in err and "s/frame" in err  # the rate, per frame


def test_predict_progress_is_reported_when_stderr_is_not_a_terminal(clip, tmp_path, monkeypatch, capsys):
    """A log or a pipe gets plain progress lines (a terminal gets the bar): done/total and s/frame."""
    import sam2cli.engine.progress as progress
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)
    rc = run(["predict", f"model={DEMO}", f"source={clip}", "max_frames=2", "save=False", *EVERYTHING_FAST],
             tmp_path, monkeypatch)
    err = capsys.readouterr().err
    assert rc == 0, err
    lines = [ln for ln in err.splitlines() if ln.startswith("predict ")]
    assert len(lines) == 2 and "1/2" in lines[0] and "2/2" in lines[1] and "/frame" in lines[1], err


def test_interrupted_predict_keeps_the_finished_frames(clip, tmp_path, monkeypatch, capsys):
    """Ctrl-C (or SIGTERM) after 2 frames: the outputs of those frames are committed, the message
    says where, no hidden temp file is left, and the exit code is 130."""
    from sam2cli.engine.sam import SAM
    real, calls = SAM.predict_image, []

    def interrupted_on_third(self, *a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(SAM, "predict_image", interrupted_on_third)
    rc = run(["predict", f"model={DEMO}", f"source={clip}", "save_json=True", "save_txt=True", *EVERYTHING_FAST],
             tmp_path, monkeypatch)
    err = capsys.readouterr().err
    out = tmp_path / "runs" / "predict"
    assert rc == 130
    assert "interrupted after 2 frame(s)" in err and "saved in runs/predict" in err.replace("\n", ""), err
    assert sorted({r["frame"] for r in json.loads((out / "predictions.json").read_text())}) == [0, 1]
    with av.open(str(out / "vid.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 2
    assert not [p for p in out.rglob(".*")]


# ---------------------------------------------------------------- 2. multimask_output with save_masks

def test_multimask_saves_every_candidate_and_colours_them_apart(tmp_path, monkeypatch, capsys):
    from sam2cli import SAM
    from sam2cli.io.overlay import object_color
    cv2.imwrite(str(tmp_path / "img0.png"), scene()[..., ::-1])
    rc = run(["predict", f"model={DEMO}", "source=img0.png", "points=[80,100]", "labels=[1]",
              "multimask_output=True", "save_masks=True", "save_json=True"], tmp_path, monkeypatch)
    assert rc == 0, capsys.readouterr().err
    out = tmp_path / "runs" / "predict"
    expected = SAM(DEMO, device="cpu")(str(tmp_path / "img0.png"), points=[80, 100], labels=[1],
                                       multimask_output=True)[0].masks.data  # (3, H, W)
    pngs = sorted(p.name for p in (out / "masks").glob("*.png"))
    assert pngs == ["img0_1_c0.png", "img0_1_c1.png", "img0_1_c2.png"]
    for k, mask in enumerate(expected):
        assert np.array_equal(cv2.imread(str(out / "masks" / f"img0_1_c{k}.png"), cv2.IMREAD_GRAYSCALE) > 0, mask)
    records = json.loads((out / "predictions.json").read_text())
    assert [(r["obj_id"], r["candidate"]) for r in records] == [(1, 0), (1, 1), (1, 2)]
    drawn = cv2.imread(str(out / "img0.png"))[..., ::-1].reshape(-1, 3)
    outline_colours = {k for k in range(1, 10) if (drawn == object_color(k)).all(1).any()}
    assert len(outline_colours) >= 2, outline_colours  # not one colour for all three


def test_palette_masks_with_multimask_write_one_png_per_candidate(tmp_path, monkeypatch, capsys):
    from sam2cli.io.mask_pngs import read_palette_png
    cv2.imwrite(str(tmp_path / "img0.png"), scene()[..., ::-1])
    rc = run(["predict", f"model={DEMO}", "source=img0.png", "points=[[80,100],[145,45]]", "labels=[1,1]",
              "multimask_output=True", "save_masks=True", "mask_format=palette", "save=False"], tmp_path,
             monkeypatch)
    assert rc == 0, capsys.readouterr().err
    masks = tmp_path / "runs" / "predict" / "masks"
    assert sorted(p.name for p in masks.glob("*.png")) == ["img0_c0.png", "img0_c1.png", "img0_c2.png"]
    for png in masks.glob("*.png"):
        assert set(np.unique(read_palette_png(png))) == {0, 1, 2}  # both objects in every candidate file


# ---------------------------------------------------------------- 3, 4. sam2 track: both directions, max_frames

@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("short") / "short.mp4", 12)


TRACK = ["points=[[58,100]]", "labels=[1]", "frame=6", "imgsz=128", "save=False", "format=jsonl"]


def test_track_both_directions_writes_each_frame_once_in_order(short_clip, tmp_path, monkeypatch, capsys):
    rc = run(["track", f"model={DEMO}", f"source={short_clip}", *TRACK, "direction=both", "save_json=True"],
             tmp_path, monkeypatch)
    out, err = capsys.readouterr()
    assert rc == 0, err
    lines = [json.loads(ln) for ln in out.splitlines()]
    assert [rec["frame"] for rec in lines] == list(range(12))  # stdout: one line per frame, in order
    records = json.loads((tmp_path / "runs" / "track" / "predictions.json").read_text())
    frames = [r["frame"] for r in records]
    assert frames == sorted(frames) and len(frames) == len(set(frames)) and 6 in frames
    assert "12 frame(s)" in err


@pytest.mark.parametrize("direction, frames", [("forward", range(6, 9)), ("backward", range(4, 7)),
                                               ("both", range(4, 9))])
def test_track_max_frames_counts_frames_from_the_prompted_one(direction, frames, short_clip, tmp_path,
                                                               monkeypatch, capsys):
    rc = run(["track", f"model={DEMO}", f"source={short_clip}", *TRACK, f"direction={direction}", "max_frames=3"],
             tmp_path, monkeypatch)
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert [json.loads(ln)["frame"] for ln in out.splitlines()] == list(frames)


def test_python_video_predictor_honours_max_frames(short_clip):
    from sam2cli.engine.video_predictor import SAM2VideoPredictor
    predictor = SAM2VideoPredictor(overrides=dict(model=DEMO, device="cpu", imgsz=128, max_frames=3))
    assert [r.frame for r in predictor(str(short_clip), points=[[40, 100]], labels=[1])] == [0, 1, 2]
    assert [r.frame for r in predictor(str(short_clip), points=[[58, 100]], labels=[1], frame=6)] == [6, 7, 8]
    assert len(list(predictor(str(short_clip), points=[[58, 100]], labels=[1], frame=6, max_frames=2))) == 2


# ---------------------------------------------------------------- 5. dynamic interactive predictor, first image

SAMPLE = Path(__file__).resolve().parents[1] / "scripts" / "samples" / "shapes.jpg"
CLICKS = [[322, 233], [291, 263], [20, 6], [414, 195], [144, 152]]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_dynamic_predictor_first_prompt_agrees_with_the_image_predictor():
    """With no memory, the bank's first image is segmented as SAM(...) segments it (same resize):
    one click gives SAM's best-scored of the 3 candidates (the reference video predictor's rule for
    a first click), two clicks or a box give SAM's single mask. Hole filling (8 px on the low-res
    logits) is the only difference left."""
    from sam2cli import SAM
    from sam2cli.engine.interactive import SAM2DynamicInteractivePredictor
    sam = SAM(DEMO, device="cpu")
    dyn = SAM2DynamicInteractivePredictor(overrides=dict(model=DEMO, device="cpu"), model=sam.model)
    img = cv2.imread(str(SAMPLE))[..., ::-1].copy()

    def first(**prompt) -> np.ndarray:
        dyn.reset()
        r = dyn(img, obj_ids=[1], **prompt)
        return r.masks.data[0] if len(r) else np.zeros(img.shape[:2], bool)

    for xy in CLICKS:
        cands = sam(img, points=[xy], labels=[1], multimask_output=True)[0]
        best = cands.masks.data[int(np.argmax(cands.boxes.conf))]
        assert iou(first(points=[xy], labels=[1]), best) > 0.98, xy
    two = dict(points=[[[150, 170], [160, 180]]], labels=[[1, 1]])
    assert iou(first(**two), sam(img, **two)[0].masks.data[0]) > 0.98
    box = dict(bboxes=[[100, 110, 210, 230]])
    assert iou(first(**box), sam(img, **box)[0].masks.data[0]) > 0.98


# ---------------------------------------------------------------- 6. an empty folder

def test_annotate_and_predict_on_an_empty_folder_both_exit_1(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "ds" / "images"
    empty.mkdir(parents=True)
    (empty / "notes.txt").write_text("not an image")
    (tmp_path / "boxes").mkdir()
    rc = run(["annotate", f"data={empty}", f"det_labels={tmp_path / 'boxes'}"], tmp_path, monkeypatch)
    err = capsys.readouterr().err.strip()
    assert rc == 1 and f"no images or videos found in {empty}" in err.replace("\n", ""), err
    assert len(err.splitlines()) == 1 and "labels" not in err
    assert not (tmp_path / "ds" / "labels").exists()
    rc = run(["predict", f"model={DEMO}", f"source={empty}"], tmp_path, monkeypatch)
    err = capsys.readouterr().err.strip()
    assert rc == 1 and f"no images or videos found in {empty}" in err.replace("\n", ""), err


# ---------------------------------------------------------------- 7. SAM.__call__ keyword arguments

@pytest.fixture(scope="module")
def demo_sam():
    from sam2cli import SAM
    return SAM(DEMO, device="cpu")


@pytest.mark.parametrize("kwargs, text", [
    (dict(hlaf=True), "unknown argument 'hlaf' for SAM(...); did you mean 'half'?"),
    (dict(points_per_sid=4), "did you mean 'points_per_side', "),
    (dict(conf=0.5), "unknown argument 'conf'"),
])
def test_sam_call_rejects_unknown_keywords_with_close_matches(kwargs, text, demo_sam):
    from sam2cli.errors import UsageError
    img = scene()
    with pytest.raises(UsageError) as e:
        demo_sam(img, points=[80, 100], labels=[1], **kwargs)
    assert text in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UsageError, match=text.split(";")[0].replace("(", r"\(").replace(")", r"\)")):
        demo_sam(img, **kwargs)  # segment everything: the same check


def test_sam_call_rejects_everything_options_with_prompts(demo_sam):
    from sam2cli.errors import UsageError
    with pytest.raises(UsageError, match="points_per_side applies only without prompts"):
        demo_sam(scene(), points=[80, 100], labels=[1], points_per_side=4)
    assert len(demo_sam(scene(), points_per_side=4)[0]) > 0  # without prompts it is used


def test_sam_call_takes_half_and_imgsz_per_call(demo_sam, monkeypatch):
    """Per call, as Ultralytics takes predict arguments: the call runs with them, the model keeps its own."""
    from sam2cli import SAM
    img, prompt = scene(), dict(points=[80, 100], labels=[1])
    at_256 = SAM(DEMO, device="cpu", imgsz=256)(img, **prompt)[0].masks.data
    assert np.array_equal(demo_sam(img, imgsz=256, **prompt)[0].masks.data, at_256)
    assert demo_sam.model.image_size == 384
    seen = []
    import sam2cli.engine.image_predictor as ip
    real = ip.autocast
    monkeypatch.setattr(ip, "autocast", lambda device, half: seen.append(half) or real(device, half))
    demo_sam(img, half=True, **prompt)
    demo_sam(img, **prompt)
    assert seen[0] is True and seen[-1] is False  # the half call re-embedded in half, the next in fp32


# ---------------------------------------------------------------- 8. a trained checkpoint's input size

def test_a_checkpoint_trained_at_128_runs_and_reports_128(tmp_path, monkeypatch, capsys):
    from sam2cli import SAM
    from test_train import make_yolo
    data = make_yolo(tmp_path / "yolo", n_train=4, n_val=1)
    assert run(["train", "model=sam2_demo", f"data={data}", "imgsz=128", "epochs=1", "batch=4", "n_correct=1",
                "val_samples=1", "project=runs"], tmp_path, monkeypatch) == 0
    best = tmp_path / "runs" / "train" / "weights" / "best.pt"
    capsys.readouterr()
    assert run(["info", f"model={best}"], tmp_path, monkeypatch) == 0
    assert "imgsz 128" in capsys.readouterr().err
    assert SAM(str(best), device="cpu").model.image_size == 128
    assert SAM(str(best), device="cpu", imgsz=256).model.image_size == 256  # imgsz= still wins
    assert SAM(DEMO, device="cpu").model.image_size == 384  # a file without a size: its config's


# ---------------------------------------------------------------- 8. what the README says is what runs

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_gives_the_demo_model_its_real_input_size():
    import re
    from sam2cli import SAM
    size = SAM(DEMO, device="cpu").model.image_size
    text = README.read_text() + (README.parent / "cfg" / "default.yaml").read_text()
    said = re.findall(r"(\d+) for the demo model|(\d+) px\) was trained|(\d+) demo\)", text)
    assert said and {int(next(g for g in m if g)) for m in said} == {size}, said


def test_jsonl_is_per_image_and_predictions_json_per_mask_as_the_readme_says(tmp_path, monkeypatch, capsys):
    from sam2cli.core.results import Masks
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"im{i}.png"), scene(i)[..., ::-1])
    rc = run(["predict", f"model={DEMO}", "source=im*.png", "points=[[80,100],[145,45]]", "labels=[1,1]",
              "format=jsonl", "save_json=True", "save=False"], tmp_path, monkeypatch)
    out, err = capsys.readouterr()
    assert rc == 0, err
    lines = [json.loads(ln) for ln in out.splitlines()]
    records = json.loads((tmp_path / "runs" / "predict" / "predictions.json").read_text())
    assert len(lines) == 2 and [len(ln["objects"]) for ln in lines] == [2, 2] and len(records) == 4
    assert [o["segmentation"] for ln in lines for o in ln["objects"]] == [r["segmentation"] for r in records]
    readme = " ".join(README.read_text().split())
    assert "`format=jsonl` prints one line per image or frame" in readme
    assert "`predictions.json` holds one record per mask" in readme
    assert isinstance(Masks(np.zeros((1, 2, 2), bool)).data, np.ndarray)
    assert "`masks.data` is a numpy array" in readme


def test_interrupted_track_keeps_the_tracked_frames(short_clip, tmp_path, monkeypatch, capsys):
    """As predict: Ctrl-C or SIGTERM mid-way commits the frames tracked so far, in frame order,
    overlay included, and says where; exit 130."""
    from sam2cli.engine.session import TrackingSession
    real, calls = TrackingSession.step, []

    def interrupted_on_fourth(self, *a, **k):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(TrackingSession, "step", interrupted_on_fourth)
    rc = run(["track", f"model={DEMO}", f"source={short_clip}", "points=[[58,100]]", "labels=[1]", "frame=6",
              "imgsz=128", "direction=both", "save_json=True"], tmp_path, monkeypatch)
    err = capsys.readouterr().err
    out = tmp_path / "runs" / "track"
    assert rc == 130 and "interrupted after 3 tracked frame(s)" in err and "runs/track" in err, err
    assert [r["frame"] for r in json.loads((out / "predictions.json").read_text())] == [6, 7, 8]
    with av.open(str(out / "short.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 3
    assert not [p for p in out.rglob(".*")]
