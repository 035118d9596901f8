"""`sam2 app` in a real browser (Debian's chromium through Playwright, mouse and keyboard), on the
demo model: the image view against `sam2 predict`, the video view against `sam2 track`, the
exports read back by pycocotools, `sam2 val` and the dataset reader.

Screenshots of both views go to $SAM2_APP_SCREENSHOTS when set (scripts/samples/ holds the
README's), else to the test's temporary folder."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from test_app_common import CLIP, Page, inner_point, iou, launch, records, sam2, scene_images, served


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = launch(p)  # no chromium: the tests fail here, they are not skipped
        yield b
        b.close()


def shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("SAM2_APP_SCREENSHOTS") or tmp_path)


def predict_mask(tmp_path, path, points, labels, name):
    """sam2 predict's mask for one object's clicks (the command line, as a user runs it)."""
    assert sam2("predict", "model=sam2_demo.pt", f"source={path}", f"points={[points]}", f"labels={[labels]}",
                "save=False", "save_json=True", f"project={tmp_path}", f"name={name}") == 0
    return records(tmp_path / name / "predictions.json")[(None, 1)]


def removing_click(scenes):
    """A scene, an object's inner pixel and a pixel of that click's mask whose negative click
    removes a region containing it (found with the Python API: the demo model is small)."""
    import cv2
    from sam2cli.engine.sam import SAM
    sam = SAM("sam2_demo.pt")
    for i, (path, masks) in enumerate(scenes):
        for m in masks:
            pos = inner_point(m)
            first = sam(str(path), points=[[list(pos)]], labels=[[1]])[0].masks.data[0]
            d = cv2.distanceTransform(first.astype(np.uint8), cv2.DIST_L2, 5)
            ys, xs = np.nonzero(d >= 3)
            for k in np.argsort(-((xs - pos[0]) ** 2 + (ys - pos[1]) ** 2))[:3]:
                neg = (int(xs[k]), int(ys[k]))
                second = sam(str(path), points=[[list(pos), list(neg)]], labels=[[1, 0]])[0].masks.data[0]
                if not second[neg[1], neg[0]] and second.sum() < first.sum():
                    return i, pos, neg
    raise AssertionError("no negative click removes a region in these scenes")


def test_images_click_is_sam2_predicts_mask_and_undo_restores_it(tmp_path, browser):
    scenes = scene_images(tmp_path / "imgs", 3)
    i, pos, neg = removing_click(scenes)
    with served(f"source={tmp_path / 'imgs'}", f"project={tmp_path / 'runs'}") as app:
        page = Page(browser, app.url)
        assert page.js("window.sam2app.info.mode") == "images" and page.js("window.sam2app.info.num_frames") == 3
        for _ in range(i):
            page.key("ArrowRight")
        page.wait(f"window.sam2app.data && window.sam2app.data.frame === {i}")
        path = scenes[i][0]
        page.click(*pos)  # no object selected yet: the click makes object 1
        first = page.masks()[1]
        assert np.array_equal(first, predict_mask(tmp_path, path, [list(pos)], [1], "p1"))  # IoU 1.0
        page.click(*neg, button="right")
        second = page.masks()[1]
        assert not second[neg[1], neg[0]] and second.sum() < first.sum()  # the region is gone
        assert np.array_equal(second, predict_mask(tmp_path, path, [list(pos), list(neg)], [1, 0], "p2"))
        page.key("Control+z", wait_clicks=True)
        assert np.array_equal(page.masks()[1], first)  # undo: the previous mask, exactly
        page.key("Control+Shift+z", wait_clicks=True)
        assert np.array_equal(page.masks()[1], second)
        page.key("n")
        page.wait("window.sam2app.info.objects.length === 2")
        big = scenes[i][1][np.argmax([(m & ~first).sum() for m in scenes[i][1]])]
        ys, xs = np.nonzero(big)
        page.drag(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        assert set(page.masks()) == {1, 2}
        page.page.screenshot(path=str(shots(tmp_path) / "app_images.png"))
        page.key("Escape", wait_clicks=True)  # clears object 2's box on this image
        assert set(page.masks()) == {1}
        page.page.locator("#objects .del").nth(1).click()  # object 2's delete button in the list
        page.wait("window.sam2app.info.objects.length === 1")
        assert page.js("window.sam2app.info.objects.map((o) => o.id)") == [1] and set(page.masks()) == {1}
        assert page.errors == [] and page.js("window.sam2app.errors") == []


def test_segment_everything_proposals_become_objects(tmp_path, browser):
    scene_images(tmp_path / "imgs", 1)
    with served(f"source={tmp_path / 'imgs' / 'scene_0.png'}", f"project={tmp_path / 'runs'}",
                "points_per_side=16") as app:
        page = Page(browser, app.url)
        page.page.click("#everything")
        page.wait("window.sam2app.seeds && window.sam2app.seeds.items.length > 0", 120)
        seeds = page.js("window.sam2app.seeds.items.map((s) => [s.id, s.rle])")
        from sam2cli.io.coco_rle import rle_to_mask
        first = rle_to_mask(seeds[0][1])
        x, y = inner_point(first)
        page.page.mouse.click(*page.screen(x + 0.5, y + 0.5))
        page.wait("window.sam2app.keep.size === 1")
        page.page.click("#seeds-keep")
        page.wait("window.sam2app.seeds === null && window.sam2app.info.objects.length === 1")
        shown = page.masks()
        assert len(shown) == 1 and iou(next(iter(shown.values())), first) == 1.0
        assert page.errors == []


def _clip_truth():
    """The sample clip's objects (its generator, seed 3): masks (T, N, H, W)."""
    from sam2cli.train.scenes import make_video
    _, masks, _ = make_video(np.random.default_rng(3), size=(384, 384), n_frames=48, n_objects=(3, 3),
                             p_cross=0.0, camera=False)
    return masks


def track_and_wait(page):
    page.page.evaluate("() => { window.sam2app.lastTrack = null; }")
    page.page.click("#track")
    page.wait("window.sam2app.lastTrack !== null && !window.sam2app.tracking", 300)
    return page.js("window.sam2app.lastTrack")


def export(page, kinds_button="#export-all"):
    page.page.evaluate("() => { window.sam2app.lastExport = null; }")
    page.page.click(kinds_button)
    page.wait("window.sam2app.lastExport !== null", 300)
    return page.js("window.sam2app.lastExport")


def same_as_sam2_track(tmp_path, run: Path, name: str):
    """sam2 track on the app's exported prompts.json gives the app's predictions.json."""
    assert sam2("track", "model=sam2_demo.pt", f"source={CLIP}", f"prompts={run / 'prompts.json'}", "save=False",
                "save_json=True", f"project={tmp_path}", f"name={name}") == 0
    want, got = records(tmp_path / name / "predictions.json"), records(run / "predictions.json")
    assert set(got) == set(want)
    worst = min(iou(got[k], want[k]) for k in want)
    assert worst >= 0.999, worst
    return got


def test_video_track_correct_export_equal_sam2_track(tmp_path, browser):
    truth = _clip_truth()
    run = tmp_path / "runs" / "app"
    with served(f"source={CLIP}", f"project={tmp_path / 'runs'}") as app:
        page = Page(browser, app.url)
        assert page.js("window.sam2app.info.mode") == "video"
        page.key("n")
        page.wait("window.sam2app.obj === 1")
        page.click(*inner_point(truth[0, 0]))                      # object 1: a click on frame 0
        for _ in range(10):
            page.key("ArrowRight")
        page.wait("window.sam2app.data.frame === 10")
        page.key("n")
        page.wait("window.sam2app.obj === 2")
        ys, xs = np.nonzero(truth[10, 2])
        page.drag(int(xs.min()) - 3, int(ys.min()) - 3, int(xs.max()) + 3, int(ys.max()) + 3)  # object 2: a box
        assert set(page.masks()) == {2}
        page.key("Home")
        page.wait("window.sam2app.data.frame === 0")
        page.key("p")                                              # the next prompted frame
        page.wait("window.sam2app.data.frame === 10")

        done = track_and_wait(page)
        assert done["cancelled"] is False and done["objects"] == [1, 2]
        assert sorted(page.js("window.sam2app.trackedFrames")) == list(range(48))  # every frame arrived
        # Follow (on by default) shows fewer frames than arrive, but ends on the last one tracked,
        # with the progress at its end
        page.wait("window.sam2app.data.frame === window.sam2app.trackedFrames.at(-1)")
        assert page.js("document.getElementById('fps').textContent").startswith(f"{done['done']} / {done['total']} frames")
        page.goto(24)
        assert set(page.masks()) == {1, 2}
        page.page.screenshot(path=str(shots(tmp_path) / "app_video.png"))
        written = export(page)["written"]
        assert {"prompts.json", "predictions.json", "instances.json", "data.yaml", "shapes_clip.mp4"} <= set(written)
        first = same_as_sam2_track(tmp_path, run, "t1")

        page.goto(30)                                              # a correction on a later frame
        page.key("1")
        page.wait("window.sam2app.obj === 1")
        page.click(*inner_point(truth[30, 0]))
        assert page.js("window.sam2app.info.objects.map((o) => o.dirty)") == [True, False]
        done = track_and_wait(page)
        assert done["objects"] == [1]                              # only the changed object is tracked again
        export(page)
        second = same_as_sam2_track(tmp_path, run, "t2")
        assert all(np.array_equal(second[k], first[k]) for k in first if k[1] == 2)
        assert page.errors == [] and page.js("window.sam2app.errors") == []

    # the exports, read back
    from pycocotools.coco import COCO
    coco = COCO(str(run / "instances.json"))
    by_key = {(coco.imgs[a["image_id"]]["frame"], a["obj_id"]): coco.annToMask(a).astype(bool) for a in coco.anns.values()}
    assert set(by_key) == set(second) and all(np.array_equal(by_key[k], second[k]) for k in second)
    from sam2cli.io.datasets import open_dataset
    ds = open_dataset(run / "data.yaml", split="val")
    assert len(ds) == len({k[0] for k in second})
    sample = ds[0]
    assert sample.masks.shape[0] == len([k for k in second if k[0] == 0]) and set(sample.classes.tolist()) == {0}
    val_dir = tmp_path / "val"
    assert sam2("val", "model=sam2_demo.pt", f"data={run / 'davis'}", "format=jsonl", f"project={val_dir}") == 0
    prompts = json.loads((run / "prompts.json").read_text())
    assert [(e["frame"], e["obj_id"]) for e in prompts] == [(0, 1), (30, 1), (10, 2)]
