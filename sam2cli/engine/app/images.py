"""Images mode of `sam2 app` (a folder, glob or list of images, or one image): every image on its
own, segmented with the image predictor exactly as `sam2 predict` does (the same image loader,
`normalize_prompts` of the object's clicks and box, `ImagePredictor.predict_objects` with one
mask per object), so the same click gives the same mask. The embeddings of a few images (the
current one and the next, embedded ahead) are kept."""

from collections import OrderedDict
from pathlib import Path
from typing import List, Tuple

import numpy as np
from PIL import Image

from sam2cli.core.prompts import normalize_prompts
from sam2cli.io.coco_rle import rle_to_mask
from sam2cli.io.image import load_image
from .base import Engine

EMBEDDINGS = 3   # images whose embedding is kept (current, next, previous)
IMAGES = 4       # decoded images kept


class ImagesEngine(Engine):
    mode = "images"

    def __init__(self, model, doc, store, paths: List[Path], **kw):
        super().__init__(model, doc, store, **kw)
        self.paths = [Path(p) for p in paths]
        self.name = self.paths[0].parent.name or "images"
        self._hw: dict = {}
        self._images: "OrderedDict[int, np.ndarray]" = OrderedDict()
        self._predictors: "OrderedDict[int, object]" = OrderedDict()
        self.fps = None

    @property
    def num_frames(self) -> int:
        return len(self.paths)

    def path_of(self, frame: int) -> str:
        return str(self.paths[frame])

    def hw(self, frame: int) -> Tuple[int, int]:
        if frame not in self._hw:
            if frame in self._images:
                self._hw[frame] = self._images[frame].shape[:2]
            else:  # the header only; EXIF-rotated files: the size load_image gives
                with Image.open(self.paths[frame]) as im:
                    w, h = im.size
                    if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                        w, h = h, w
                self._hw[frame] = (int(h), int(w))
        return self._hw[frame]

    def image(self, frame: int) -> np.ndarray:
        img = self._images.get(frame)
        if img is None:
            img = load_image(self.paths[frame])  # what sam2 predict reads
            self._images[frame] = img
            self._hw[frame] = img.shape[:2]
            while len(self._images) > IMAGES:
                self._images.popitem(last=False)
        else:
            self._images.move_to_end(frame)
        return img

    def embedded(self, frame: int):
        return self.predictor(frame)

    def predictor(self, frame: int):
        p = self._predictors.get(frame)
        if p is None:
            p = self.image_predictor(frame)
            self._predictors[frame] = p
            while len(self._predictors) > EMBEDDINGS:
                self._predictors.popitem(last=False)
        else:
            self._predictors.move_to_end(frame)
        return p

    def prefetch(self, frame: int) -> None:
        if 0 <= frame < self.num_frames:
            self.predictor(frame)

    def prompt_changed(self, frame: int, oid: int) -> None:
        _, gen = self.bump(oid)
        s = self.doc.state(frame, oid)
        if s is None:
            self.store.write(frame, {oid: None})
            return
        if s["mask"] is not None:  # a kept proposal: the mask itself
            self.store.write(frame, {oid: self.entry(gen, rle_to_mask(s["mask"]), s.get("score", 1.0))})
            return
        mask, score = self.predict(frame, s)
        self.store.write(frame, {oid: self.entry(gen, mask, score)})

    def predict(self, frame: int, s) -> Tuple[np.ndarray, float]:
        """One object's mask from its clicks and/or box, as `sam2 predict` computes it."""
        pred = self.predictor(frame)
        objects = normalize_prompts([s["points"]] if s["points"] else None, [s["labels"]] if s["points"] else None,
                                    [s["box"]] if s["box"] is not None else None, None, image_hw=self.hw(frame))
        masks, scores = pred.predict_objects(objects, multimask_output=False)
        return masks[0, 0], float(scores[0, 0])
