"""What the `sam2 app` tests share (the server in a thread, the browser, scenes), and the unit
tests of the app's plain parts: the document (prompts, undo/redo), the store, the page's RLE."""

import contextlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sam2cli.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "scripts" / "samples" / "shapes_clip.mp4"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def app_options(*argv):
    from sam2cli.cli.args import load_defaults, options_from, resolve
    from sam2cli.engine.options import AppOptions
    return options_from(AppOptions, resolve(["model=sam2_demo.pt", "port=0", *argv], load_defaults()))


@contextlib.contextmanager
def served(*argv):
    """The app in a thread of this process: yields the Running app (url, app, stop)."""
    from sam2cli.engine.app import serve
    running = serve(app_options(*argv))
    try:
        yield running
    finally:
        running.stop()


def scene_images(folder: Path, n: int = 3, size=(240, 320)):
    """n generated scenes as PNGs; returns [(path, masks (N, H, W))]."""
    from sam2cli.io.overlay import save_image
    from sam2cli.train.scenes import make_image
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        img, masks, _ = make_image(np.random.default_rng(100 + i), size=size, n_objects=(2, 3))
        path = save_image(folder / f"scene_{i}.png", img)
        out.append((path, masks))
    return out


def inner_point(mask: np.ndarray):
    """A pixel deep inside a mask (the maximum of its distance transform), as (x, y)."""
    import cv2
    d = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(d.argmax()), d.shape)
    return int(x), int(y)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return 1.0 if u == 0 else float(np.logical_and(a, b).sum() / u)


def records(path: Path):
    """predictions.json -> {(frame, obj_id): mask}."""
    from sam2cli.io.coco_rle import rle_to_mask
    return {(r["frame"], r["obj_id"]): rle_to_mask(r["segmentation"]) for r in json.loads(Path(path).read_text())}


def launch(playwright):
    """Debian's chromium, headless; a browser that cannot start fails the test (never skipped)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


class Page:
    """A page of the app, driven with the mouse and the keyboard as a user drives it."""

    def __init__(self, browser, url: str, width: int = 1200, height: int = 760):
        # bypass_csp: Playwright evaluates its wait conditions as strings, which the app's CSP forbids
        self.page = browser.new_page(viewport={"width": width, "height": height}, bypass_csp=True)
        self.errors = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)
        self.wait("window.sam2app && window.sam2app.ready === true", 120)

    def wait(self, condition: str, timeout_s: float = 60):
        self.page.wait_for_function(condition, timeout=timeout_s * 1000)

    def js(self, expr: str):
        return self.page.evaluate(f"() => ({expr})")

    def screen(self, x: float, y: float):
        """Page coordinates of image point (x, y), through the view's zoom and pan."""
        box = self.page.locator("#view").bounding_box()
        s, ox, oy = self.js("[window.sam2appView.scale, window.sam2appView.ox, window.sam2appView.oy]")
        return box["x"] + ox + x * s, box["y"] + oy + y * s

    def clicks(self) -> int:
        return self.js("window.sam2app.latencies.length")

    def click(self, x, y, button="left", shift=False):
        n = self.clicks()
        px, py = self.screen(x + 0.5, y + 0.5)
        if shift:
            self.page.keyboard.down("Shift")
        self.page.mouse.click(px, py, button=button)
        if shift:
            self.page.keyboard.up("Shift")
        self.wait(f"window.sam2app.latencies.length > {n}")

    def drag(self, x1, y1, x2, y2):
        n = self.clicks()
        a, b = self.screen(x1 + 0.5, y1 + 0.5), self.screen(x2 + 0.5, y2 + 0.5)
        self.page.mouse.move(*a)
        self.page.mouse.down()
        for t in (0.3, 0.7, 1.0):
            self.page.mouse.move(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
        self.page.mouse.up()
        self.wait(f"window.sam2app.latencies.length > {n}")

    def key(self, key: str, wait_clicks: bool = False):
        n = self.clicks()
        self.page.keyboard.press(key)
        if wait_clicks:
            self.wait(f"window.sam2app.latencies.length > {n}")

    def masks(self):
        """{obj_id: (H, W) bool} of what the page shows now."""
        from sam2cli.io.coco_rle import rle_to_mask
        return {m["obj_id"]: rle_to_mask(m["rle"]) for m in self.js("window.sam2app.data.masks")}

    def goto(self, frame: int):
        self.page.evaluate(f"() => window.sam2appGoto({frame})")
        self.wait(f"window.sam2app.frame === {frame} && window.sam2app.data.frame === {frame}")


def sam2(*argv) -> int:
    from sam2cli.cli.app import main
    return main([*argv])


def cli_process(*argv):
    """`sam2 ...` as a subprocess (stderr piped), for tests that kill the server."""
    import sys
    code = "import sys; from sam2cli.cli.app import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *argv], cwd=ROOT, stderr=subprocess.PIPE, text=True)


# ---------------------------------------------------------------------- unit tests of the plain parts
def test_document_history_per_object_and_frame():
    from sam2cli.engine.app.document import Document
    d = Document(10)
    a, b = d.add_object(), d.add_object("dog", "animal")
    d.add_point(2, a, 10, 20, 1, (100, 100))
    d.add_point(2, a, 30, 40, 0, (100, 100))
    d.set_box(5, b, [1, 2, 50, 60], (100, 100))
    assert d.state(2, a)["points"] == [[10, 20], [30, 40]] and d.state(2, a)["labels"] == [1, 0]
    assert d.step_history(2, a) and d.state(2, a)["points"] == [[10, 20]]
    assert d.state(5, b)["box"] == [1, 2, 50, 60]  # another object's history is its own
    assert d.step_history(2, a, redo=True) and d.state(2, a)["points"] == [[10, 20], [30, 40]]
    assert not d.step_history(2, a, redo=True)
    assert d.clear(2, a) and d.state(2, a) is None and d.prompted_frames() == [5]
    assert d.step_history(2, a) and len(d.state(2, a)["points"]) == 2  # clearing is undone too
    assert d.classes() == ["object", "animal"] and d.class_index(b) == 1
    back = Document.from_json(json.loads(json.dumps(d.to_json())), 10)
    assert back.to_json() == d.to_json()


@pytest.mark.parametrize("call, fragment", [
    (lambda d: d.add_point(0, 1, 101, 5, 1, (100, 100)), "outside"),
    (lambda d: d.add_point(0, 1, float("nan"), 5, 1, (100, 100)), "finite"),
    (lambda d: d.add_point(0, 1, 5, 5, 2, (100, 100)), "label"),
    (lambda d: d.set_box(0, 1, [50, 50, 10, 10], (100, 100)), "no area"),
    (lambda d: d.set_box(0, 1, [1, 2, 3], (100, 100)), "x1, y1, x2, y2"),
    (lambda d: d.frame(10), "out of range"),
    (lambda d: d.obj(7), "unknown object"),
    (lambda d: d.update_object(1, name="x" * 500), "printable"),
])
def test_document_rejects_bad_prompts(call, fragment):
    from sam2cli.engine.app.document import Document
    d = Document(10)
    d.add_object()
    with pytest.raises(UsageError, match=fragment):
        call(d)
    assert d.prompts == {}


def test_document_caps_the_clicks_of_a_frame():
    from sam2cli.engine.app.document import MAX_POINTS, Document
    d = Document(1)
    d.add_object()
    for i in range(MAX_POINTS):
        d.add_point(0, 1, i % 50, 3, 1, (100, 100))
    with pytest.raises(UsageError, match="at most"):
        d.add_point(0, 1, 1, 1, 1, (100, 100))


def test_store_keeps_current_generations_only(tmp_path):
    from sam2cli.engine.app.store import Store
    from sam2cli.io.coco_rle import mask_to_rle
    s = Store(tmp_path)
    m = np.zeros((4, 5), bool)
    m[1:3, 2:4] = True
    s.write(3, {1: (0, 0.9, mask_to_rle(m)), 2: (4, 0.5, mask_to_rle(~m))})
    assert [o for o, _, _ in s.visible(3, {1: 0, 2: 4})] == [1, 2]
    assert [o for o, _, _ in s.visible(3, {1: 1, 2: 4})] == [2]  # object 1's prompts changed since
    s.retag([3], 1, 0, 1)
    assert [o for o, _, _ in s.visible(3, {1: 1, 2: 4})] == [1, 2]
    s.write(3, {1: None, 2: None})
    assert s.frames_with_masks() == []


def test_the_pages_rle_decoder_matches_pycocotools(tmp_path):
    """static/js/rle.js run by node when there is one, else by chromium (never skipped)."""
    from sam2cli.io.coco_rle import mask_to_rle
    rng = np.random.default_rng(0)
    masks = [rng.random((37, 53)) > 0.5, np.ones((300, 700), bool), np.zeros((8, 9), bool)]
    big = np.zeros((1500, 2000), bool)
    big[100:1400, 7:1999] = True
    masks.append(big)
    rles = [mask_to_rle(m) for m in masks]
    src = (ROOT / "sam2cli/engine/app/static/js/rle.js").read_text().replace("export function", "function")
    script = src + f"\nconst R = {json.dumps(rles)};\nR.map((r) => Array.from(paintRle(r, new Uint8Array(r.size[0] * r.size[1]), 1)).join(''));"
    node = shutil.which("node")
    if node:
        out = subprocess.run([node, "-e", f"console.log(JSON.stringify(eval({json.dumps(script)})))"],
                             capture_output=True, text=True, check=True).stdout
        got = json.loads(out)
    else:
        from playwright.sync_api import sync_playwright
        with sync_playwright() as p:
            b = launch(p)
            got = b.new_page().evaluate(f"() => eval({json.dumps(script)})")
            b.close()
    for m, g in zip(masks, got):
        assert np.array_equal(np.frombuffer(g.encode(), np.uint8).reshape(m.shape) == ord("1"), m)


def test_frame_server_encodes_offered_frames_and_keeps_a_few():
    """An offered frame is encoded without a read, as a read would be; only the newest OFFERED
    are kept (bounded memory), an older one is read again; one already encoded is not replaced."""
    from sam2cli.engine.app.frames import OFFERED, FrameServer
    rng = np.random.default_rng(0)
    pixels = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(OFFERED + 3)]
    reads = []

    def read(i):
        reads.append(i)
        return pixels[i]
    fs, plain = FrameServer(read, len(pixels)), FrameServer(pixels.__getitem__, len(pixels))
    assert fs.jpeg(0) == plain.jpeg(0) and reads == [0]
    for i, px in enumerate(pixels):
        fs.offer(i, px if i else np.zeros_like(px))  # frame 0 is encoded already: the offer is ignored
    newest = range(len(pixels) - OFFERED, len(pixels))
    assert [fs.jpeg(i) for i in newest] == [plain.jpeg(i) for i in newest] and reads == [0]
    assert fs.jpeg(0) == plain.jpeg(0) and fs.jpeg(1) == plain.jpeg(1) and reads == [0, 1]


def test_tracked_events_go_to_the_page_in_chunks_and_the_end_at_once():
    """Events reach the page in order and all of them; "tracked" ones wait at most COALESCE_S to
    share a chunk (fewer wake-ups of the browser), the first after a quiet spell and any other
    event do not wait."""
    import asyncio
    from sam2cli.engine.app.worker import coalesce

    async def scenario():
        loop, q = asyncio.get_running_loop(), asyncio.Queue()
        t0 = loop.time()
        assert await coalesce(q, {"type": "tracked", "frame": 0}, last_sent=t0 - 10, interval=0.5) == [
            {"type": "tracked", "frame": 0}]                                  # after a quiet spell: at once
        assert loop.time() - t0 < 0.4
        for f in (2, 3):
            q.put_nowait({"type": "tracked", "frame": f})
        loop.call_later(0.1, q.put_nowait, {"type": "tracked", "frame": 4})
        t1 = loop.time()
        got = await coalesce(q, {"type": "tracked", "frame": 1}, last_sent=t1, interval=0.5)
        assert [e["frame"] for e in got] == [1, 2, 3, 4] and loop.time() - t1 >= 0.45  # one chunk
        loop.call_later(0.1, q.put_nowait, {"type": "track_done"})
        loop.call_later(0.3, q.put_nowait, {"type": "tracked", "frame": 9})
        t2 = loop.time()
        got = await coalesce(q, {"type": "tracked", "frame": 5}, last_sent=t2, interval=0.5)
        assert got == [{"type": "tracked", "frame": 5}, {"type": "track_done"}] and loop.time() - t2 < 0.4
        assert await coalesce(q, {"type": "overflow"}, last_sent=loop.time()) == [{"type": "overflow"}]
        await asyncio.sleep(0.3)
        assert q.get_nowait() == {"type": "tracked", "frame": 9}             # left for the next chunk
    asyncio.run(scenario())
