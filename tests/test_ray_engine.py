"""`sam2 annotate … engine=ray`: the Ray Data engine on a local 2-CPU Ray, with a random-weight SAM.

Ray starts once for the module (a few seconds); each run still starts its actors, which load SAM.
The local engine's output on the same dataset is the reference: the Ray engine must write the
same files, byte for byte.
"""

import io
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from rich.console import Console

from sam2cli.cli.args import options_from, resolve
from sam2cli.engine.annotate import job as ann
from sam2cli.engine.options import AnnotateOptions

ray = pytest.importorskip("ray", reason='ray is not installed (optional: pip install "sam2cli[ray]")')
from sam2cli.engine.annotate import ray_engine  # noqa: E402

SAM_IMGSZ = 128
N_IMAGES = 8


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    """ds/images: 8 PNGs of 64-96 px (two in a subfolder) and a corrupt one; ds/boxes: YOLO detection labels."""
    root = tmp_path_factory.mktemp("rayds")
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        h, w = (int(v) for v in rng.integers(64, 97, 2))
        img = np.full((h, w, 3), 40, np.uint8)
        for _ in range(2):
            x, y = rng.integers(0, w // 2), rng.integers(0, h // 2)
            img[y:y + h // 3, x:x + w // 3] = rng.integers(60, 255, 3)
        rel = f"sub/im{i}" if i >= 6 else f"im{i}"
        (root / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "images" / f"{rel}.png"), img)
        (root / "boxes" / rel).parent.mkdir(parents=True, exist_ok=True)
        boxes = "" if i % 4 == 0 else f"{i % 3} 0.4 0.4 0.3 0.3\n1 0.6 0.6 0.4 0.3 0.8\n"
        (root / "boxes" / f"{rel}.txt").write_text(boxes)
    (root / "images" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return root


def run(ds, ckpt, out, *argv):
    buf = io.StringIO()
    args = resolve([f"data={ds / 'images'}", f"sam_model={ckpt}", "device=cpu", f"det_labels={ds / 'boxes'}",
                    f"output_dir={out}", "save_json=True", *argv])
    rc = ann.run_annotate(options_from(AnnotateOptions, args), Console(file=buf, width=400), sam_imgsz=SAM_IMGSZ)
    return rc, buf.getvalue()


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(ds, tiny_ckpt, tmp_path_factory):
    """What the local engine writes (labels, COCO sidecars, annotations.json)."""
    out = tmp_path_factory.mktemp("local") / "labels"
    rc, log = run(ds, tiny_ckpt, out)
    assert rc == 1 and f"{N_IMAGES} image(s) annotated" in log and "1 failure(s)" in log, log
    got = files(out)
    assert sum(k.endswith(".txt") for k in got) == N_IMAGES and any(got[k] for k in got if k.endswith(".txt"))
    return out, got


def test_same_files_as_the_local_engine(ds, tiny_ckpt, reference, tmp_path):
    rc, log = run(ds, tiny_ckpt, tmp_path / "labels", "engine=ray", "workers=2")
    assert rc == 1, log  # the corrupt image: reported and skipped
    assert "skipped bad.png" in log and f"{N_IMAGES} image(s) annotated" in log and "1 failure(s)" in log, log
    assert files(tmp_path / "labels") == reference[1]  # byte for byte, COCO files included
    assert f"ray: {N_IMAGES} image(s) in" in log and "with 2 worker(s)" in log and "img/s total" in log, log
    assert "worker 1 (" in log and "img/s busy" in log, log


def test_resume_skips_what_is_done(ds, tiny_ckpt, reference, tmp_path):
    out = tmp_path / "labels"
    shutil.copytree(reference[0], out)
    (out / "im1.txt").unlink()
    (out / "sub" / "im7.txt").unlink()
    kept = {p: p.stat().st_mtime_ns for p in out.rglob("*.txt")}
    (out / ".im1.tmp0badc0de.txt").write_text("0 0.1 0.1")  # what a killed atomic write leaves
    rc, log = run(ds, tiny_ckpt, out, "engine=ray", "workers=2")
    assert rc == 1 and "2 image(s) annotated" in log and f"{N_IMAGES - 2} already labelled" in log, log
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # done work untouched
    assert files(out) == reference[1]  # the temp file is gone too


def test_killed_worker_is_retried(ds, tiny_ckpt, reference, tmp_path, monkeypatch):
    """SIGKILL the only worker mid-run: Ray restarts it, retries its batch, and the run completes."""
    out, pids = tmp_path / "labels", tmp_path / "pids"
    pids.mkdir()
    monkeypatch.setattr(ray_engine, "_TEST_HOOKS", {"delay": 0.4, "pid_dir": str(pids)})
    killed = []

    def killer():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (list(out.rglob("*.txt")) and list(pids.iterdir())):
            time.sleep(0.05)
        for p in pids.iterdir():  # the worker has written its first label: work remains
            os.kill(int(p.name), signal.SIGKILL)
            killed.append(int(p.name))

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    rc, log = run(ds, tiny_ckpt, out, "engine=ray", "workers=1")
    t.join(timeout=5)
    assert len(killed) == 1, log
    assert rc == 1 and f"{N_IMAGES} image(s) annotated" in log and "1 failure(s)" in log, log  # each once
    restarted = {int(p.name) for p in pids.iterdir()} - set(killed)
    assert restarted, "the killed actor was not restarted"
    assert "restarted)" in log, log
    assert files(out) == reference[1]  # every image labelled, no partial or temp file left
    with pytest.raises(OSError):
        os.kill(killed[0], 0)


def test_missing_extra_says_how_to_install(ds, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    from sam2cli.cli.app import main
    rc = main(["annotate", f"data={ds / 'images'}", f"det_labels={ds / 'boxes'}", "engine=ray", "device=cpu"])
    err = capsys.readouterr().err
    assert rc == 2
    assert 'engine=ray needs the ray extra: pip install "sam2cli[ray]"' in err
    assert len(err.strip().splitlines()) == 1
