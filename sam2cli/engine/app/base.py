"""What the images and the video engines of `sam2 app` share: masks of a frame as the page gets
them, "segment everything" seeds, and the bookkeeping of mask generations.

An engine owns the model (it runs only on the app's worker thread), the document and the store.
`prompt_changed(frame, obj_id)` is called after every change of an object's prompts: it makes
the object's masks on disk match its prompts again.
"""

from dataclasses import asdict
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from sam2cli.errors import UsageError
from sam2cli.io.coco_rle import mask_to_rle, rle_to_mask
from .document import Document
from .store import Entry, Store

MAX_SEEDS = 100  # "segment everything" proposals offered at once (largest first)


class Engine:
    mode = "images"

    def __init__(self, model, doc: Document, store: Store, *, half: bool = False, everything=None):
        self.model, self.doc, self.store, self.half = model, doc, store, bool(half)
        self.everything_params = asdict(everything) if everything is not None else {}
        self.seeds: Optional[Dict[str, Any]] = None  # {"frame", "items": [{"id", "rle", "score"}]}

    # ------------------------------------------------------------------ frames (subclasses)
    @property
    def num_frames(self) -> int:
        raise NotImplementedError

    def hw(self, frame: int) -> Tuple[int, int]:
        raise NotImplementedError

    def image(self, frame: int) -> np.ndarray:
        raise NotImplementedError

    def path_of(self, frame: int) -> str:
        raise NotImplementedError

    def prompt_changed(self, frame: int, oid: int) -> None:
        raise NotImplementedError

    def prefetch(self, frame: int) -> None:
        """Embed a frame (the server asks for the viewed one, then the next) while the worker is
        idle, so a click only decodes."""

    def embedded(self, frame: int):
        """An image predictor holding this frame's embedding (images mode keeps a few)."""
        return self.image_predictor(frame)

    def image_predictor(self, frame: int):
        from sam2cli.engine.image_predictor import ImagePredictor
        p = ImagePredictor(self.model, half=self.half)
        p.set_image(self.image(frame))
        return p

    # ------------------------------------------------------------------ masks
    def bump(self, oid: int) -> Tuple[int, int]:
        """A new generation for an object's masks: (old, new)."""
        old = self.doc.gens.get(oid, 0)
        self.doc.gens[oid] = old + 1
        return old, old + 1

    def visible(self, frame: int) -> List[Dict[str, Any]]:
        return [{"obj_id": oid, "score": round(c, 6), "rle": r}
                for oid, c, r in self.store.visible(frame, self.doc.gens) if oid in self.doc.objects]

    def masks_of(self, frame: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The current masks of a frame: (N, H, W) bool, confidences (N,), object ids (N,)."""
        vis = self.store.visible(frame, self.doc.gens)
        vis = [v for v in vis if v[0] in self.doc.objects]
        h, w = self.hw(frame)
        masks = np.stack([rle_to_mask(r) for _, _, r in vis]) if vis else np.zeros((0, h, w), bool)
        return masks, np.array([c for _, c, _ in vis], np.float32), np.array([o for o, _, _ in vis], int)

    @staticmethod
    def entry(gen: int, mask: np.ndarray, conf: float) -> Optional[Entry]:
        """What the store keeps of one mask (None for an empty one: no object there)."""
        return (gen, float(conf), mask_to_rle(mask)) if mask.any() else None

    # ------------------------------------------------------------------ segment everything
    def everything(self, frame: int) -> Dict[str, Any]:
        """Proposals on a frame, from the image predictor's segment-everything; kept until the
        user keeps some as objects or drops them."""
        from sam2cli.engine.everything import generate_masks
        image = self.image(frame)
        crops = self.everything_params.get("crop_n_layers", 0) > 0  # crops re-embed: not on a kept embedding
        pred = self.image_predictor(frame) if crops else self.embedded(frame)
        masks, scores = generate_masks(pred, image, image_is_set=True, **self.everything_params)
        order = np.argsort(-masks.reshape(len(masks), -1).sum(1), kind="stable")[:MAX_SEEDS]
        self.seeds = {"frame": frame, "items": [{"id": i + 1, "rle": mask_to_rle(masks[k]), "score": float(scores[k])}
                                                for i, k in enumerate(order)]}
        return self.seeds

    def keep_seeds(self, ids: Any, cls: Optional[str] = None) -> List[int]:
        """Make objects of the chosen seeds (each prompted by its mask); drop the others."""
        if self.seeds is None:
            raise UsageError("there are no proposals: press 'Segment everything' first")
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise UsageError("keep must be a list of proposal ids")
        by_id = {s["id"]: s for s in self.seeds["items"]}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise UsageError(f"unknown proposal id(s) {unknown[:5]}")
        frame, made = self.seeds["frame"], []
        for i in dict.fromkeys(ids):
            oid = self.doc.add_object(cls=cls)
            self.doc.set_mask(frame, oid, by_id[i]["rle"], by_id[i]["score"])
            self.prompt_changed(frame, oid)
            made.append(oid)
        self.seeds = None
        return made

    def delete_object(self, oid: int) -> None:
        frames = self.doc.delete_object(oid)
        for f in frames:
            self.store.write(f, {oid: None})
