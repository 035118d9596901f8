"""`sam2 annotate … engine=ray` on videos: whole videos to Ray actors on a local 2-CPU Ray; the
local engine's files on the same clips are the reference, byte for byte."""

import io
from pathlib import Path

import pytest
import torch
from rich.console import Console

from sam2cli.cli.args import options_from, resolve
from sam2cli.engine.annotate.job import run_annotate
from sam2cli.engine.options import AnnotateOptions
from sam2cli.train.scenes_tracks import write_track_videos

ray = pytest.importorskip("ray", reason='ray is not installed (optional: pip install "sam2cli[ray]")')

DEMO = Path(__file__).resolve().parents[1] / "weights" / "sam2_demo.pt"
SAM_IMGSZ = 128


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    if started:
        ray.shutdown()


def run(root, out, *argv):
    buf = io.StringIO()
    args = resolve([f"data={root / 'videos'}", f"sam_model={DEMO}", "device=cpu", f"det_labels={root / 'det_labels'}",
                    f"output_dir={out}", "det_stride=4", "save=False", "save_json=True", *argv])
    rc = run_annotate(options_from(AnnotateOptions, args), Console(file=buf, width=400), sam_imgsz=SAM_IMGSZ)
    return rc, buf.getvalue()


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(Path(root).rglob("*"))
            if p.is_file() and p.name != "data.yaml"}


def test_ray_writes_the_local_engines_files(tmp_path):
    write_track_videos(tmp_path / "clips", n_videos=3, size=(96, 128), n_frames=8, n_objects=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what each actor runs with here (0.75 CPU each)
    try:
        rc, log = run(tmp_path / "clips", tmp_path / "local")
    finally:
        torch.set_num_threads(threads)
    assert rc == 0, log
    rc, log = run(tmp_path / "clips", tmp_path / "ray", "engine=ray", "workers=2")
    assert rc == 0, log
    assert "ray: 3 video(s), 24 frame(s)" in log and "3 video(s) annotated" in log, log
    local, got = files(tmp_path / "local"), files(tmp_path / "ray")
    labels = [k for k in local if k.startswith("labels/")]
    assert len(labels) == 24 and any(local[k] for k in labels)
    assert got.keys() == local.keys() and got == local
    rc, log = run(tmp_path / "clips", tmp_path / "ray", "engine=ray", "workers=2")
    assert rc == 0 and "3 already done" in log and "0 video(s) annotated" in log, log
