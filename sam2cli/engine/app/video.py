"""Video mode of `sam2 app`: the lead's TrackingSession, driven so that what the page shows is
what `sam2 track prompts=<exported prompts.json>` computes.

* A change of an object's prompts replays that object alone: it is removed from the session and
  its prompts are added again, each frame's clicks in one call (no previous-mask input), as a
  prompts file replays them. Its masks on its prompted frames are written at once; its tracked
  masks become stale (a new generation) and the object needs tracking.
* Track propagates only the objects that need it, from the earliest prompted frame of all
  objects (where `sam2 track` starts every object), forward, then back from there when
  `backward` is on. The other objects' masks stay. Moving the earliest prompted frame, or
  switching the direction, makes every object need tracking.
* Cancel stops after the current frame and keeps the frames done; the objects still need
  tracking (a later Track redoes them from a fresh start, so the result never depends on where
  a run stopped).

The session keeps a few frames' features beyond its own two, so a replay does not re-encode the
frames an object is prompted on; the tracker keeps only what it can still attend to.
"""

import time
from collections import OrderedDict
from contextlib import nullcontext
from typing import Callable, Dict, Iterable, List, Optional

import numpy as np

from sam2cli.io.coco_rle import rle_to_mask
from sam2cli.engine.session import TrackingSession
from .base import Engine

FEATURES = 8  # frames whose image features the app keeps (prompted frames replay without re-encoding)


class AppTrackingSession(TrackingSession):
    """A TrackingSession whose feature cache holds FEATURES frames instead of two."""

    def __init__(self, *args, cache: int = FEATURES, **kw):
        super().__init__(*args, **kw)
        self.cache = cache
        self._kept: "OrderedDict[int, object]" = OrderedDict()

    def features(self, frame: int, image: Optional[np.ndarray] = None):
        feats = self._kept.get(frame)
        if feats is None:
            feats = super().features(frame, image)
            self._kept[frame] = feats
            while len(self._kept) > self.cache:
                self._kept.popitem(last=False)
        else:
            self._kept.move_to_end(frame)
        return feats

    def reset(self) -> None:
        super().reset()
        self._kept.clear()


class VideoEngine(Engine):
    mode = "video"

    def __init__(self, model, doc, store, reader, *, tracker: str = "sam2", fill_hole_area: int = 8, **kw):
        super().__init__(model, doc, store, **kw)
        self.reader = reader
        self.name = reader.name
        self.fps = reader.fps
        self.session = AppTrackingSession(model, reader=reader, half=self.half, tracker=tracker,
                                          fill_hole_area=fill_hole_area)
        self.replayed: set = set()  # objects whose session state is their prompts, replayed

    @property
    def num_frames(self) -> int:
        return len(self.reader)

    def hw(self, frame: int):
        return self.reader.height, self.reader.width

    def image(self, frame: int) -> np.ndarray:
        return self.reader[frame]

    def path_of(self, frame: int) -> str:
        return self.reader.path_of(frame)

    def prefetch(self, frame: int) -> None:
        if 0 <= frame < self.num_frames:
            self.session.features(frame)

    # ------------------------------------------------------------------ prompts
    def replay(self, oid: int) -> None:
        """The object's session state from its prompts alone (a fresh replay)."""
        self.session.remove_object(oid)
        for f in self.doc.frames_of(oid):
            s = self.doc.state(f, oid)
            if s["mask"] is not None:
                self.session.add_mask(f, oid, rle_to_mask(s["mask"]))
            else:
                self.session.add_points(f, oid, s["points"] or None, s["labels"] or None, box=s["box"])
        self.replayed.add(oid)

    def prompt_changed(self, frame: int, oid: int) -> None:
        old_start = (self.doc.tracked or {}).get("start")
        _, gen = self.bump(oid)
        self.replay(oid)
        self.doc.dirty.add(oid)
        self.store.write(frame, {oid: None})  # the frame's prompt may be gone
        self._write(self.doc.frames_of(oid), [oid])
        if self.doc.tracked is not None and self.doc.start() != old_start:
            self.invalidate()  # sam2 track starts every object at the earliest prompted frame

    def _write(self, frames: Iterable[int], oids: List[int], logits=None, image: Optional[np.ndarray] = None) -> None:
        """Store the session's current masks of these objects on these frames (`image`: the
        frame's pixels when there is one frame and the caller has them)."""
        oids = [o for o in oids if o in self.session.objects]
        if not oids:
            return
        for f in frames:
            lg = self.session.frame_logits(f, oids) if logits is None else logits
            r = self.session.results(f, lg, self.image(f) if image is None else image, obj_ids=oids)
            got = {int(i): (m, float(c)) for i, m, c in zip(r.boxes.id, r.masks.data, r.boxes.conf)}
            self.store.write(f, {o: self.entry(self.doc.gens[o], *got[o]) if o in got else None for o in oids})

    def invalidate(self) -> None:
        """Every object needs tracking again: its tracked masks become stale, its prompted
        frames' masks are carried over to the new generation."""
        for oid in self.doc.objects:
            frames = self.doc.frames_of(oid)
            if not frames:
                continue
            old, new = self.bump(oid)
            self.store.retag(frames, oid, old, new)
            self.doc.dirty.add(oid)
        self.doc.tracked = None

    def set_backward(self, backward: bool) -> None:
        if bool(backward) != self.doc.backward:
            self.doc.backward = bool(backward)
            if self.doc.tracked is not None:
                self.invalidate()

    def delete_object(self, oid: int) -> None:
        super().delete_object(oid)
        self.session.remove_object(oid)
        self.replayed.discard(oid)

    # ------------------------------------------------------------------ tracking
    def plan(self) -> Dict[str, object]:
        """What Track would do: the objects to track, the start frame, the frames to visit."""
        todo = sorted(o for o in self.doc.dirty if o in self.doc.objects and self.doc.frames_of(o))
        start = self.doc.start()
        if not todo or start is None:
            return {"objects": [], "start": start, "total": 0}
        total = self.num_frames - start + (start + 1 if self.doc.backward and start > 0 else 0)
        return {"objects": todo, "start": start, "total": total}

    def track(self, cancelled: Callable[[], bool], emit: Callable[[Dict], None], lock=None,
              decoded: Optional[Callable[[int, np.ndarray], None]] = None) -> Dict[str, object]:
        """Propagate the objects that need it; `emit` gets each frame as it is done, and `decoded`
        (frame, its RGB pixels) before that, for the page. `lock` (the document's) is held while
        the document and the store change, not while the model runs."""
        lock = lock or nullcontext()
        with lock:
            plan = self.plan()
            todo, start, total = plan["objects"], plan["start"], plan["total"]
            if not todo:
                return {"done": 0, "total": 0, "cancelled": False, "objects": []}
            for oid in todo:
                if oid in self.replayed:
                    self.session.reset_tracking([oid])
                else:
                    self.replay(oid)
        done, t0 = 0, time.perf_counter()
        passes = [False, True] if self.doc.backward else [False]
        for reverse in passes:
            for frame, logits in self.session.propagate(reverse=reverse, start=start, obj_ids=todo):
                image = self.image(frame)  # the reader's cached copy of what the tracker just read
                if decoded is not None:
                    decoded(frame, image)
                with lock:
                    self._write([frame], todo, logits, image)
                    done += 1
                    emit({"type": "tracked", "frame": frame, "done": done, "total": total,
                          "fps": round(done / max(time.perf_counter() - t0, 1e-9), 2), "masks": self.visible(frame)})
                if cancelled():
                    return {"done": done, "total": total, "cancelled": True, "objects": todo}
        with lock:
            self.doc.dirty -= set(todo)
            self.doc.tracked = {"start": start, "backward": self.doc.backward}
        return {"done": done, "total": total, "cancelled": False, "objects": todo}
