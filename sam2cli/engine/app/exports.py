"""The app's exports, written by the project's writers into the run folder (RunOutputs' layout):

    labels/<tag>.txt, images/<tag>.jpg, data.yaml   YOLO segmentation, class names in data.yaml
    predictions.json                                COCO RLE records, as `sam2 track save_json=True`
    instances.json                                  a COCO instances file (images/, RLE, categories)
    davis/JPEGImages/<video>/, davis/Annotations/<video>/   DAVIS palette PNGs (video)
    masks/<stem>.png                                palette PNGs (images)
    <video>.mp4 / overlays/<stem>.jpg               overlays
    prompts.json (+ prompt_masks/), track.yaml      what `sam2 track prompts=... ` replays (video):
                                                    `sam2 track cfg=runs/app/track.yaml model=...`

`<tag>` is `<video>_<frame:06d>` for a video (as `sam2 track` names labels) and the image's stem
for images. Only frames (images) with a mask are exported, except the overlay video and the
DAVIS frames, which hold every frame. The browser names kinds, never paths.
"""

import json
import shutil
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import yaml

from sam2cli.core.results import Results
from sam2cli.errors import UsageError
from sam2cli.io.atomic import write_text_atomic
from sam2cli.io.coco_rle import mask_to_rle, rle_to_mask
from sam2cli.io.mask_pngs import save_mask_pngs
from sam2cli.io.overlay import save_image
from sam2cli.engine.options import OutputOptions
from sam2cli.engine.outputs import RunOutputs

KINDS = {"video": ("yolo", "coco", "davis", "overlay", "prompts"), "images": ("yolo", "coco", "masks", "overlay")}


def check_kinds(kinds: Any, mode: str) -> List[str]:
    allowed = KINDS[mode]
    if kinds == "all":
        return list(allowed)
    if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds):
        raise UsageError(f"kinds must be a list of export kinds ({', '.join(allowed)}) or \"all\"")
    bad = [k for k in kinds if k not in allowed]
    if bad:
        raise UsageError(f"unknown export kind {bad[0][:40]!r} in {mode} mode; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(kinds))


class Exporter:
    def __init__(self, engine, run_dir: Path, track_args: Dict[str, Any]):
        self.e, self.dir, self.track_args = engine, Path(run_dir), track_args
        self.video = engine.mode == "video"

    def annotated(self) -> List[int]:
        gens, objs = self.e.doc.gens, self.e.doc.objects
        return [f for f in self.e.store.frames_with_masks()
                if f < self.e.num_frames and any(o in objs for o, _, _ in self.e.store.visible(f, gens))]

    def results(self, frame: int, image: np.ndarray) -> Results:
        masks, conf, ids = self.e.masks_of(frame)
        doc = self.e.doc
        names = dict(enumerate(doc.classes()))
        return Results.from_masks(image, masks, conf, path=self.e.path_of(frame), frame=frame if self.video else None,
                                  obj_ids=ids, cls=np.array([doc.class_index(int(o)) for o in ids], int), names=names)

    def tag(self, frame: int) -> str:
        return f"{self.e.name}_{frame:06d}" if self.video else Path(self.e.path_of(frame)).stem

    def run(self, kinds: List[str]) -> List[str]:
        written: List[Path] = []
        for kind in kinds:
            written += getattr(self, f"_{kind}")()
        return sorted({p.relative_to(self.dir).as_posix() for p in written})

    def _outputs(self, where: Path, **opts) -> RunOutputs:
        out = RunOutputs(where, OutputOptions(**{"save": False, **opts}))
        out.video_name = self.e.name if self.video else None
        return out

    def _fresh(self, *names: str) -> None:
        for n in names:  # what an earlier export wrote there (the app's own run folder)
            shutil.rmtree(self.dir / n, ignore_errors=True)

    def _images(self, frames: List[int]) -> List[Path]:
        out = []
        for f in frames:
            out.append(save_image(self.dir / "images" / f"{self.tag(f)}.jpg", self.e.image(f)))
        return out

    # ------------------------------------------------------------------ kinds
    def _yolo(self) -> List[Path]:
        self._fresh("labels", "images")
        frames = self.annotated()
        out = self._outputs(self.dir, save_txt=True)
        for f in frames:
            out.write(self.results(f, self.e.image(f)))
        out.close()
        data = {"path": ".", "train": "images", "val": "images", "names": dict(enumerate(self.e.doc.classes()))}
        written = self._images(frames) + [write_text_atomic(self.dir / "data.yaml", yaml.safe_dump(data, sort_keys=False))]
        return written + sorted((self.dir / "labels").glob("*.txt"))

    def _coco(self) -> List[Path]:
        frames = self.annotated()
        out = self._outputs(self.dir, save_json=True)
        images, anns = [], []
        for f in frames:
            r = self.results(f, self.e.image(f))
            out.write(r)
            h, w = r.orig_shape
            images.append({"id": len(images) + 1, "file_name": f"images/{self.tag(f)}.jpg", "width": w, "height": h,
                           **({"frame": f} if self.video else {})})
            for m, box, c, oid, k in zip(r.masks.data, r.boxes.xyxy, r.boxes.conf, r.boxes.id, r.boxes.cls):
                x1, y1, x2, y2 = (float(v) for v in box)
                anns.append({"id": len(anns) + 1, "image_id": images[-1]["id"], "category_id": int(k) + 1,
                             "segmentation": mask_to_rle(m), "area": int(m.sum()), "bbox": [x1, y1, x2 - x1, y2 - y1],
                             "iscrowd": 0, "obj_id": int(oid), "score": round(float(c), 6)})
        out.close()
        cats = [{"id": i + 1, "name": n} for i, n in enumerate(self.e.doc.classes())]
        inst = write_text_atomic(self.dir / "instances.json",
                                 json.dumps({"images": images, "annotations": anns, "categories": cats}))
        written = [inst, self.dir / "predictions.json"]
        if not (self.dir / "images").is_dir() or len(list((self.dir / "images").glob("*.jpg"))) != len(frames):
            self._fresh("images")
            written += self._images(frames)
        return written

    def _davis(self) -> List[Path]:
        root = self.dir / "davis"
        shutil.rmtree(root, ignore_errors=True)
        written = []
        for f in range(self.e.num_frames):
            image = self.e.image(f)
            masks, conf, ids = self.e.masks_of(f)
            written.append(save_image(root / "JPEGImages" / self.e.name / f"{f:05d}.jpg", image))
            written += save_mask_pngs(root / "Annotations" / self.e.name, f"{f:05d}", masks, ids, "palette", conf)
        return written

    def _masks(self) -> List[Path]:
        self._fresh("masks")
        written = []
        for f in self.annotated():
            masks, conf, ids = self.e.masks_of(f)
            written += save_mask_pngs(self.dir / "masks", self.tag(f), masks, ids, "palette", conf)
        return written

    def _overlay(self) -> List[Path]:
        if not self.video:
            self._fresh("overlays")
            out = self._outputs(self.dir / "overlays", save=True)
            for f in self.annotated():
                out.write(self.results(f, self.e.image(f)))
            out.close()
            return sorted((self.dir / "overlays").iterdir()) if (self.dir / "overlays").is_dir() else []
        out = self._outputs(self.dir, save=True)
        for f in range(self.e.num_frames):
            out.write(self.results(f, self.e.image(f)), self.e.fps)
        out.close()
        return [self.dir / f"{self.e.name}.mp4"]

    def _prompts(self) -> List[Path]:
        """prompts.json in the format of sam2cli.io.prompt_file, objects in id order."""
        self._fresh("prompt_masks")
        doc, entries, written = self.e.doc, [], []
        for oid in sorted(doc.objects):
            for f in doc.frames_of(oid):
                s = doc.state(f, oid)
                e: Dict[str, Any] = {"frame": f, "obj_id": oid}
                if s["mask"] is not None:
                    png = save_mask_pngs(self.dir / "prompt_masks", f"{f:06d}", rle_to_mask(s["mask"])[None], [oid])[0]
                    e["mask"] = png.relative_to(self.dir).as_posix()
                    written.append(png)
                else:
                    if s["points"]:
                        e["points"] = [[_num(x), _num(y)] for x, y in s["points"]]
                        e["labels"] = [int(v) for v in s["labels"]]
                    if s["box"] is not None:
                        e["box"] = [_num(v) for v in s["box"]]
                entries.append(e)
        if not entries:
            raise UsageError("there are no prompts to export yet")
        path = write_text_atomic(self.dir / "prompts.json", json.dumps(entries, indent=1) + "\n")
        cfg = {**self.track_args, "prompts": str(path.resolve()),
               "direction": "both" if doc.backward else "forward", "save_json": True}
        return written + [path, write_text_atomic(self.dir / "track.yaml", yaml.safe_dump(cfg, sort_keys=False))]


def _num(v: float):
    return int(v) if float(v).is_integer() else float(v)
