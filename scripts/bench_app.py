"""`sam2 app` in a real browser: click-to-mask latency, and propagation against `sam2 track`.

    python scripts/bench_app.py                                   # the demo model on the sample clip
    python scripts/bench_app.py model=sam2.1_hiera_t imgsz=1024   # 2.1 tiny, random weights (a config name)
    python scripts/bench_app.py sample                            # rewrite scripts/samples/shapes_clip.mp4

Starts the app in-process on a free port, drives Debian's chromium with Playwright (the mouse,
as a user), and prints one JSON line: click latency (median, p95, ms from the click to the mask
drawn, and to the next paint) after the frame is embedded, the mask payload size, and seconds
per frame of Track in the app against the same propagation through `sam2 track` (TrackingSession
via run_track, outputs off) on the same clip and prompts.
"""

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT / "scripts" / "samples" / "shapes_clip.mp4"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


def make_sample(path: Path = SAMPLE) -> Path:
    """48 frames, 384x384, 12 fps, three shapes moving on a still background (generated scenes,
    seed 3: every object visible on every frame), written by the project's video writer."""
    import numpy as np
    from sam2cli.io.video_writer import VideoWriter
    from sam2cli.train.scenes import make_video
    frames, _, _ = make_video(np.random.default_rng(3), size=(384, 384), n_frames=48, n_objects=(3, 3),
                              p_cross=0.0, camera=False)
    with VideoWriter(path, 12, 384, 384) as w:
        for f in frames:
            w.write(f)
    return path


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main(argv):
    if argv[:1] == ["sample"]:
        print(make_sample())
        return 0
    from playwright.sync_api import sync_playwright
    from sam2cli.cli.args import load_defaults, options_from, resolve
    from sam2cli.engine.app import serve
    from sam2cli.engine.options import AppOptions, TrackOptions
    kv = dict(a.split("=", 1) for a in argv)
    clicks = int(kv.pop("clicks", 20))
    model = kv.pop("model", "sam2_demo.pt")
    imgsz = kv.pop("imgsz", None)
    tmp = Path(tempfile.mkdtemp(prefix="bench_app_"))
    args = [f"model={model}", f"source={SAMPLE}", f"project={tmp}", "port=0"] + ([f"imgsz={imgsz}"] if imgsz else [])
    opts = options_from(AppOptions, resolve(args, load_defaults()))
    app = serve(opts)
    out = {"model": model, "imgsz": imgsz or "model's own"}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(app.url)
            page.wait_for_function("window.sam2app && window.sam2app.ready === true", timeout=120_000)
            box = page.locator("#view").bounding_box()
            scale = page.evaluate("() => [window.sam2app.data.hw, 0]")[0]
            h, w = scale
            s = min(box["width"] / w, box["height"] / h)
            ox, oy = box["x"] + (box["width"] - w * s) / 2, box["y"] + (box["height"] - h * s) / 2

            def click(x, y, button="left"):
                page.mouse.click(ox + x * s, oy + y * s, button=button)

            page.keyboard.press("n")
            page.wait_for_function("window.sam2app.obj !== null")
            time.sleep(2.0)  # the frame embedded ahead (/api/view)
            click(140, 130)  # warm-up: the first decode builds caches
            page.wait_for_function("window.sam2app.latencies.length >= 1", timeout=120_000)
            page.evaluate("() => { window.sam2app.latencies.length = 0; }")
            for i in range(clicks):  # alternate a click and its undo: the same state, every time
                if i % 2 == 0:
                    click(150 + (i % 7), 130 + (i % 5))
                else:
                    page.keyboard.press("Control+z")
                page.wait_for_function(f"window.sam2app.latencies.length >= {i + 1}", timeout=120_000)
            lat = page.evaluate("() => window.sam2app.latencies")
            drawn = [x["drawn"] for x in lat]
            painted = [x["painted"] for x in lat]
            out["click_ms"] = {"median": round(statistics.median(drawn), 1), "p95": round(percentile(drawn, 0.95), 1),
                               "painted_median": round(statistics.median(painted), 1), "n": len(drawn)}
            rle = page.evaluate("() => JSON.stringify(window.sam2app.data.masks).length")
            out["mask_payload_bytes"] = rle
            # Track: one object prompted on frame 0, all 48 frames, timed from the page's events
            click(150, 130)
            page.wait_for_function(f"window.sam2app.latencies.length >= {clicks + 1}", timeout=120_000)
            t0 = time.perf_counter()
            page.click("#track")
            page.wait_for_function("window.sam2app.lastTrack && !window.sam2app.tracking", timeout=600_000)
            app_s = time.perf_counter() - t0
            n = page.evaluate("() => window.sam2app.trackedFrames.length")
            out["app_track_s_per_frame"] = round(app_s / n, 4)
            browser.close()
        state = json.loads((app.app.store.dir / "session.json").read_text())["document"]["prompts"]
        entry = state[0]
        prompts = tmp / "bench_prompts.json"
        prompts.write_text(json.dumps([{"frame": entry["frame"], "obj_id": entry["obj_id"], "points": entry["points"],
                                        "labels": entry["labels"]}]))
    finally:
        app.stop()
    from rich.console import Console
    from sam2cli.engine.track import run_track
    targs = [f"model={model}", f"source={SAMPLE}", f"prompts={prompts}", "save=False"] + ([f"imgsz={imgsz}"] if imgsz else [])
    topts = options_from(TrackOptions, resolve(targs, load_defaults()))
    t0 = time.perf_counter()
    run_track(topts, Console(stderr=True, quiet=True))
    track_s = (time.perf_counter() - t0) / n
    out["sam2_track_s_per_frame"] = round(track_s, 4)
    out["app_over_track"] = round(out["app_track_s_per_frame"] / track_s, 3)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
