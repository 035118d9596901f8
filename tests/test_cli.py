"""The `sam2` command as users meet it: subprocess and Typer's runner, exit codes, one-line
errors, writers whose files decode back to the masks, and the kinds of source."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from sam2cli.cli.app import main
from sam2cli.io.coco_rle import rle_to_mask
from sam2cli.io.mask_pngs import read_palette_png

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "scripts" / "samples" / "shapes.jpg"


def sam2(*args, cwd=None, stdin=None, env=None):
    """Run the installed console script in a subprocess."""
    full_env = {**os.environ, "SAM2CLI_DOWNLOAD_BASE": "http://127.0.0.1:1/", **(env or {})}
    return subprocess.run([sys.executable, "-c", "from sam2cli.cli.app import entry; entry()", *args],
                          cwd=cwd, input=stdin, capture_output=True, text=True, env=full_env, timeout=300)


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `sam2 ...` in this process (as `entry` does, without the exit): rc, stdout, stderr."""
    from types import SimpleNamespace
    from sam2cli.cli.app import main
    monkeypatch.setenv("SAM2CLI_DOWNLOAD_BASE", "http://127.0.0.1:1/")
    capsys.readouterr()

    def run(*args):
        rc = main(list(args))
        out = capsys.readouterr()
        return SimpleNamespace(returncode=rc, stdout=out.out, stderr=out.err)
    return run


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_help_for_one_command():
    r = sam2("help", "track")
    assert r.returncode == 0 and "Track prompted objects" in r.stdout


def test_usage_errors_never_name_an_exception_class(cli):
    r = cli("predcit")
    assert "UsageError" not in r.stderr and "verbose=True" not in r.stderr


def test_no_arguments_prints_help():
    r = sam2()
    assert r.returncode == 0 and "predict" in r.stdout and "cfg" in r.stdout


def test_cfg_lists_every_default(cli):
    r = cli("cfg")
    assert r.returncode == 0 and "points_per_side: 32" in r.stdout and "model: sam2.1_b.pt" in r.stdout


@pytest.mark.parametrize("args, code, text", [
    (["predict", "modle=x.pt"], 2, "Similar: model="),
    (["predict", "half=maybe"], 2, "half=maybe"),
    (["predict", "imgsz=1000"], 2, "multiple of 16"),
    (["predict", "oops"], 2, "key=value"),
    (["predict", "model=x.pt"], 2, "source= is required"),
    (["predict", "source=missing.jpg", "points=[[1,2]]"], 1, "source not found: missing.jpg"),
    (["predict", f"source={SAMPLE}", "points=[[1,2],[3,4]]", "labels=[1]"], 2, "label"),
    (["predict", f"source={SAMPLE}", "points=[[1,2,3]]"], 2, "point"),
    (["predcit", "model=x", "source=y"], 2, "error: no command 'predcit'; did you mean 'predict'?"),
    (["xyzzy"], 2, "the commands are: annotate, "),
    (["help", "predcit"], 2, "no command 'predcit'; did you mean 'predict'?"),
    (["--foo"], 2, "no such option: --foo"),
    (["predict", "--foo"], 2, "'--foo' is not a key=value argument"),
    (["cfg", "extra"], 2, "unexpected extra argument"),
    (["predict", "model=", f"source={SAMPLE}"], 2, "no model given"),
    (["predict", "imgsz=", f"source={SAMPLE}"], 2, "imgsz=''"),
])
def test_usage_and_runtime_errors_are_one_line(cli, args, code, text):
    r = cli(*args)
    assert r.returncode == code, r.stderr
    assert text in one_line(r.stderr)
    assert r.stdout == ""


def test_offline_default_model_gives_the_download_hint(tmp_path):
    r = sam2("predict", f"source={SAMPLE}", "points=[[150,170]]", env={"SAM2CLI_WEIGHTS_DIR": str(tmp_path)})
    line = one_line(r.stderr)
    assert r.returncode == 1
    assert "could not download sam2.1_b.pt" in line and str(tmp_path / "sam2.1_b.pt") in line
    assert not list(tmp_path.iterdir())  # no half-written file


def test_corrupt_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "sam2.1_t.pt"
    bad.write_bytes(b"PK\x03\x04" + os.urandom(300))
    r = sam2("predict", f"model={bad}", f"source={SAMPLE}", "points=[[150,170]]")
    assert r.returncode == 1 and str(bad) in one_line(r.stderr)


def test_prompt_outside_the_image_exits_2(tiny_ckpt, tmp_path):
    r = sam2("predict", f"model={tiny_ckpt}", f"source={SAMPLE}", "points=[[5000,170]]", "imgsz=256",
             cwd=tmp_path)
    assert r.returncode == 2 and "5000" in one_line(r.stderr)


def test_models_run_at_their_own_input_size_unless_imgsz_is_given(tiny_ckpt):
    """imgsz= defaults to the model's own size: the demo model is not blown up to 1024 px."""
    from sam2cli.model.registry import get_config
    demo = get_config("sam2_demo").image_size
    assert demo < 1024
    for args, size in ((["model=sam2_demo.pt"], demo), ([f"model={tiny_ckpt}"], 1024),
                       (["model=sam2_demo.pt", "imgsz=512"], 512)):
        r = sam2("info", *args)
        assert r.returncode == 0 and f"imgsz {size}," in r.stderr, r.stderr


def test_verbose_shows_the_traceback():
    r = sam2("predict", "source=missing.jpg", "points=[[1,2]]", "verbose=True")
    assert r.returncode == 1 and "Traceback" in r.stderr


def test_writers_decode_back_to_the_masks(tiny_ckpt, tmp_path, monkeypatch, capsys):
    """In-process run with every writer; the JSON/PNG/TXT outputs describe the API's masks."""
    from sam2cli import SAM
    monkeypatch.chdir(tmp_path)
    args = ["predict", f"model={tiny_ckpt}", f"source={SAMPLE}", "imgsz=256", "points=[[150,170],[350,130]]",
            "labels=[1,1]", "save_txt=True", "save_json=True", "save_masks=True", "mask_format=palette",
            "format=jsonl", "project=out", "name=exp"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    run = tmp_path / "out" / "exp"
    expected = SAM(str(tiny_ckpt), device="cpu", imgsz=256)(str(SAMPLE), points=[[150, 170], [350, 130]],
                                                            labels=[1, 1])[0]
    records = json.loads((run / "predictions.json").read_text())
    assert [r["obj_id"] for r in records] == [1, 2]
    for rec, mask in zip(records, expected.masks.data):
        assert np.array_equal(rle_to_mask(rec["segmentation"]), mask)
        assert rec["area"] == int(mask.sum()) and rec["frame"] is None
    line = json.loads(out.strip().splitlines()[0])  # stdout: only the jsonl record
    assert len(out.strip().splitlines()) == 1 and len(line["objects"]) == 2
    ids = read_palette_png(run / "masks" / "shapes.png")
    assert set(np.unique(ids)) <= {0, 1, 2}
    assert (run / "shapes.jpg").is_file() and (run / "labels" / "shapes.txt").is_file()
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]
    assert "1 image(s)" in err


def test_directory_glob_and_stdin_sources(tiny_ckpt, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    img = cv2.imread(str(SAMPLE))
    for i in range(2):
        cv2.imwrite(str(folder / f"im{i}.png"), img)
    (folder / "broken.jpg").write_bytes(b"not an image")
    common = [f"model={tiny_ckpt}", "imgsz=256", "bboxes=[10,10,200,200]", "save=False", "format=jsonl"]
    r = sam2("predict", f"source={folder}", *common, cwd=tmp_path)
    assert r.returncode == 1, r.stderr  # the corrupt file fails the run but not the others
    assert len(r.stdout.strip().splitlines()) == 2 and "broken.jpg" in r.stderr
    r = sam2("predict", f"source={folder}/im*.png", *common, cwd=tmp_path)
    assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 2
    r = sam2("predict", "source=-", *common, cwd=tmp_path, stdin=f"{folder / 'im1.png'}\n")
    assert r.returncode == 0 and json.loads(r.stdout)["file"].endswith("im1.png")


def test_video_without_prompts_segments_everything_per_frame(tiny_ckpt, tmp_path):
    import av
    video = tmp_path / "clip.mp4"
    c = av.open(str(video), "w")
    s = c.add_stream("libx264", rate=5)
    s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
    for i in range(4):
        img = np.full((64, 96, 3), 90, np.uint8)
        cv2.rectangle(img, (10 + 5 * i, 10), (50 + 5 * i, 50), (230, 40, 40), -1)
        for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    r = sam2("predict", f"model={tiny_ckpt}", f"source={video}", "imgsz=256", "points_per_side=4",
             "pred_iou_thresh=0.0", "stability_score_thresh=0.0", "save_json=True", "vid_stride=2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with av.open(str(tmp_path / "runs" / "predict" / "clip.mp4")) as out:
        assert sum(1 for _ in out.decode(video=0)) == 2  # frames 0 and 2
    records = json.loads((tmp_path / "runs" / "predict" / "predictions.json").read_text())
    assert {rec["frame"] for rec in records} == {0, 2} and all(rec["file"].endswith("clip.mp4") for rec in records)


def test_prompted_video_in_predict_points_to_track(tiny_ckpt, tmp_path):
    import av
    video = tmp_path / "v.mp4"
    c = av.open(str(video), "w")
    s = c.add_stream("libx264", rate=5)
    s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
    for p in s.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")):
        c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    r = sam2("predict", f"model={tiny_ckpt}", f"source={video}", "points=[[10,10]]")
    assert r.returncode == 2 and "sam2 track" in one_line(r.stderr)
