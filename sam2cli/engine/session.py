"""TrackingSession: one video's tracking, the one loop every driver runs.

The video predictor (and so `sam2 track`), `sam2 val`'s VOS loop, video auto-annotation and the
web app all hold one session per video. It owns the frames (a reader, or images passed in), the
tracker with its policy (`tracker=`), the objects, a tiny feature cache, and the per-frame
outputs turned into masks and `Results`:

    s = TrackingSession(model, reader=open_frames("video.mp4"))
    s.add_points(0, obj_id=1, points=[[210, 350]], labels=[1])
    for frame, logits in s.propagate():              # (N, 1, H, W) logits at video resolution
        r = s.results(frame, logits, s.reader[frame])

A streaming driver (frames read once, objects appearing as they come) steps frame by frame:

    logits = s.step(t, image=img)                     # the objects it already has
    s.add_mask(t, new_id, mask, image=img); s.commit()
    masks = s.masks(t)                                # {obj_id: (H, W) bool}, new objects included

Semantics are the reference video predictor's: a prompt on a frame an object was not tracked on
starts a conditioning frame, which conditions the object over the whole video; propagation runs
from the earliest one. The tracker keeps per object only what it can still attend to (unless
keep_all), so memory does not grow with the video.
"""

from collections import OrderedDict
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from sam2cli.core.prompts import object_prompt
from sam2cli.errors import UsageError
from sam2cli.model.sam2 import NO_OBJ_LOGIT, ImageFeatures
from .device import autocast
from .postprocess import non_overlapping
from .tracker import ObjectTrack, Tracker
from .transforms import binary_mask_prompt, point_prompt, preprocess, upsample_logits

FEATURE_CACHE = 2  # frames whose backbone features are kept (the current and the next)


class TrackingSession:
    """One video: its frames, the tracker, the objects and their outputs.

    Args (keyword-only after `model`):
        reader: a FrameReader (`sam2cli.io.sources.open_frames`); without one, every call that
            needs a frame is given `image=` ((H, W, 3) uint8 RGB) and `size=(H, W)` is required.
        num_frames: the video's length when there is no reader (None: unknown, a stream).
        half: bf16/fp16 autocast where the hardware computes it natively.
        non_overlap: each pixel keeps only its highest-scoring object in `frame_logits`.
        fill_hole_area: holes of at most this many low-res pixels are filled (the reference's 8).
        keep_all: keep every frame's output, as the reference does (unbounded memory).
        tracker: the tracking policy, `sam2` (the reference, exact), `samurai` or `dam4sam`.
        resample: `bicubic` (the reference video loader) or `bilinear` (the image predictor).
    """

    def __init__(self, model, *, reader=None, num_frames: Optional[int] = None,
                 size: Optional[Tuple[int, int]] = None, half: bool = False, non_overlap: bool = False,
                 fill_hole_area: int = 8, keep_all: bool = False, tracker: str = "sam2",
                 resample: str = "bicubic"):
        self.model = model
        self.tracker = Tracker(model, fill_hole_area=fill_hole_area, **_policy(tracker))
        self.reader = reader
        if reader is not None:
            num_frames = len(reader) if reader.seekable else None
            size = (reader.height, reader.width)
        if size is None:
            raise UsageError("a TrackingSession without a reader needs size=(height, width)")
        self.num_frames = num_frames
        self.height, self.width = int(size[0]), int(size[1])
        self.half, self.non_overlap, self.keep_all, self.resample = bool(half), bool(non_overlap), keep_all, resample
        self.objects: "OrderedDict[int, ObjectTrack]" = OrderedDict()
        self._features: "OrderedDict[int, ImageFeatures]" = OrderedDict()

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def obj_ids(self) -> List[int]:
        return list(self.objects)

    # ------------------------------------------------------------------ frames
    @torch.inference_mode()
    def features(self, frame: int, image: Optional[np.ndarray] = None) -> ImageFeatures:
        """Backbone features of a frame, encoded under autocast (the last FEATURE_CACHE kept)."""
        if frame not in self._features:
            if image is None:
                if self.reader is None:
                    raise UsageError(f"frame {frame} is not encoded yet and this session has no reader: pass image=")
                image = self.reader[frame]
            x = preprocess(image, self.model.image_size, self.device, resample=self.resample)
            with autocast(self.device, self.half):
                self._features[frame] = self.model.encode_image(x)
            while len(self._features) > FEATURE_CACHE:
                self._features.popitem(last=False)
        return self._features[frame]

    def check_frame(self, frame: int) -> None:
        if self.num_frames is not None and not 0 <= frame < self.num_frames:
            raise UsageError(f"frame {frame} is outside the video (0..{self.num_frames - 1})")

    # ------------------------------------------------------------------ objects and prompts
    def _object(self, obj_id: int) -> ObjectTrack:
        obj_id = int(obj_id)
        if obj_id not in self.objects:
            self.objects[obj_id] = ObjectTrack(obj_id)
        return self.objects[obj_id]

    @torch.inference_mode()
    def add_points(self, frame: int, obj_id: int, points=None, labels=None, box=None, *, clear_old: bool = True,
                   image: Optional[np.ndarray] = None) -> torch.Tensor:
        """Clicks (pixels of the original frame) and/or an xyxy box for one object on one frame;
        `clear_old=False` adds the clicks to those given on this frame before. Returns the
        frame's (N, 1, H, W) logits for every object."""
        self.check_frame(frame)
        if points is None and box is None:
            raise UsageError("give points (with labels) or a box")
        p = object_prompt(points, labels, box)  # core's checks, as for images and prompt files
        pts = point_prompt(p.points, p.labels, p.box, (self.height, self.width), self.model.image_size, self.device)
        return self._prompt(frame, obj_id, image, points=pts, add_to_clicks=not clear_old)

    @torch.inference_mode()
    def add_mask(self, frame: int, obj_id: int, mask, *, image: Optional[np.ndarray] = None) -> torch.Tensor:
        """A binary (H, W) mask for one object on one frame; returns the frame's logits."""
        self.check_frame(frame)
        m = np.asarray(mask)
        if m.ndim != 2:
            raise UsageError(f"a mask prompt must be (H, W), got shape {m.shape}")
        return self._prompt(frame, obj_id, image, mask=binary_mask_prompt(m, self.model.image_size, self.device))

    def add_entry(self, entry, image: Optional[np.ndarray] = None) -> torch.Tensor:
        """One PromptEntry (`sam2cli.io.prompt_file`): a mask, or clicks and/or a box."""
        if entry.mask is not None:
            return self.add_mask(entry.frame, entry.obj_id, entry.mask, image=image)
        return self.add_points(entry.frame, entry.obj_id, entry.points, entry.labels, box=entry.box, image=image)

    def _prompt(self, frame: int, obj_id: int, image, **prompt) -> torch.Tensor:
        obj = self._object(obj_id)
        feats = self.features(frame, image)
        with autocast(self.device, self.half):
            self.tracker.prompt(feats, obj, frame, num_frames=self.num_frames, **prompt)
        return self.frame_logits(frame)

    def remove_object(self, obj_id: int) -> List[int]:
        """Forget an object (it stops costing memory attention); returns the remaining ids."""
        self.objects.pop(int(obj_id), None)
        return self.obj_ids

    def reset(self) -> None:
        """Forget every object (the frames stay open)."""
        self.objects.clear()
        self._features.clear()

    def reset_tracking(self, obj_ids: Optional[Iterable[int]] = None) -> None:
        """Forget what tracking produced for these objects (all by default): their recent
        memories and tracked frames. Their prompted frames stay, so propagating again gives what
        replaying the same prompts on a fresh session gives, and a later prompt on any frame is a
        first prompt there (a conditioning frame), as `prompts.json` replays it."""
        for oid in self.obj_ids if obj_ids is None else [int(i) for i in obj_ids]:
            self.tracker.forget_tracking(self.objects[oid])

    @torch.inference_mode()
    def commit(self) -> None:
        """Encode the memories of the prompts given since the last step (before propagating)."""
        if not self.objects:
            raise UsageError("no object has a prompt yet: add points, a box or a mask first")
        for obj in self.objects.values():
            if obj.waiting:
                with autocast(self.device, self.half):
                    self.tracker.commit(obj, self.features)
            if not obj.prompted:
                raise UsageError(f"object {obj.obj_id} has no prompt on any frame")

    # ------------------------------------------------------------------ tracking
    def _chosen(self, obj_ids: Optional[Sequence[int]]) -> List[ObjectTrack]:
        if obj_ids is None:
            return list(self.objects.values())
        missing = [i for i in obj_ids if int(i) not in self.objects]
        if missing:
            raise UsageError(f"unknown object id(s) {missing}: the session has {self.obj_ids}")
        return [self.objects[int(i)] for i in obj_ids]

    @torch.inference_mode()
    def step(self, frame: int, *, reverse: bool = False, image: Optional[np.ndarray] = None,
             obj_ids: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Track the objects (all, or `obj_ids`) on one frame from their memories; returns the
        frame's (N, 1, H, W) logits for those objects. A frame is encoded only when an object is
        not conditioned there already."""
        objs = self._chosen(obj_ids)
        for obj in objs:
            feats = None if frame in obj.cond else self.features(frame, image)
            with autocast(self.device, self.half):
                self.tracker.track(feats, obj, frame, reverse=reverse, num_frames=self.num_frames)
            if not self.keep_all:
                self.tracker.evict(obj, frame)
        return self.frame_logits(frame, [o.obj_id for o in objs])

    @torch.inference_mode()
    def propagate(self, *, reverse: bool = False, start: Optional[int] = None, max_frames: Optional[int] = None,
                  obj_ids: Optional[Sequence[int]] = None) -> Iterator[Tuple[int, torch.Tensor]]:
        """Yield (frame, logits) frame by frame, forward from `start` (default: the earliest
        prompted frame of the objects tracked), or back from it with reverse=True; at most
        max_frames frames, the start included."""
        if self.num_frames is None:
            raise UsageError("propagate needs a seekable video (a file or a frame folder); streams use stream()")
        self.commit()
        objs = self._chosen(obj_ids)
        if start is None:
            start = min(f for obj in objs for f in obj.cond)
        span = self.num_frames if max_frames is None else max_frames
        order = range(start, max(start - span, -1), -1) if reverse else range(start, min(start + span, self.num_frames))
        if reverse and start == 0:
            order = range(0)  # as the reference: nothing before the first frame
        for frame in order:
            yield frame, self.step(frame, reverse=reverse, obj_ids=obj_ids)

    def stream(self, entries, max_frames: Optional[int] = None) -> Iterator[Tuple[int, np.ndarray, Optional[torch.Tensor]]]:
        """Frames in order, read once (live streams, or any source read once), prompts taking
        effect from their frame on: yields (frame, image, logits or None while no object is
        prompted), stopping after max_frames tracked frames (from the first prompted one)."""
        by_frame: Dict[int, list] = {}
        for e in entries:
            by_frame.setdefault(e.frame, []).append(e)
        tracked = 0
        for i, image in self.reader:
            if max_frames is not None and tracked >= max_frames:
                break
            for e in by_frame.get(i, []):
                self.add_entry(e, image=image)
            if not self.objects:
                yield i, image, None
                continue
            self.commit()
            logits = self.step(i, image=image)
            tracked += 1
            yield i, image, logits

    # ------------------------------------------------------------------ outputs
    def frame_logits(self, frame: int, obj_ids: Optional[Sequence[int]] = None) -> torch.Tensor:
        """(N, 1, H, W) float logits at video resolution of the objects (all, or `obj_ids`, in
        that order); NO_OBJ_LOGIT for an object with nothing on this frame."""
        s = self.model.mask_input_size
        lows = []
        for obj in self._chosen(obj_ids):
            o = obj.output(frame)
            lows.append(o.logits if o is not None else torch.full((1, 1, s, s), NO_OBJ_LOGIT, device=self.device))
        if not lows:
            return torch.zeros((0, 1, self.height, self.width))
        logits = upsample_logits(torch.cat(lows), (self.height, self.width))
        return non_overlapping(logits) if self.non_overlap else logits

    def masks(self, frame: int, logits: Optional[torch.Tensor] = None,
              obj_ids: Optional[Sequence[int]] = None) -> Dict[int, np.ndarray]:
        """{obj_id: (H, W) bool} on a frame (from `logits` of those objects, when given)."""
        ids = self.obj_ids if obj_ids is None else [int(i) for i in obj_ids]
        logits = self.frame_logits(frame, ids) if logits is None else logits
        return dict(zip(ids, (logits[:, 0] > 0).cpu().numpy()))

    def scores(self, frame: int, obj_ids: Optional[Sequence[int]] = None) -> Dict[int, Optional[float]]:
        """{obj_id: object-presence logit on the frame} (None where the object has no output)."""
        out = {}
        for obj in self._chosen(obj_ids):
            o = obj.output(frame)
            out[obj.obj_id] = None if o is None else float(o.obj_score.reshape(-1)[0])
        return out

    def results(self, frame: int, logits: torch.Tensor, image: np.ndarray,
                obj_ids: Optional[Sequence[int]] = None):
        """Results for one frame from its logits (of all objects, or `obj_ids`)."""
        objs = self._chosen(obj_ids)
        path = self.reader.path_of(frame) if self.reader is not None else None
        return frame_results(image, logits, [o.obj_id for o in objs], [o.output(frame) for o in objs],
                             frame=frame, path=path)


def frame_results(image: np.ndarray, logits: torch.Tensor, obj_ids: Sequence[int], outputs: Sequence,
                  *, frame: Optional[int] = None, path: Optional[str] = None):
    """The one way tracked logits become Results: (N, 1, H, W) logits of `obj_ids`, with their
    FrameOuts (None where an object has none) -> the objects with a non-empty mask, conf =
    sigmoid(object score)."""
    from sam2cli.core.results import Results
    masks = (logits[:, 0] > 0).cpu().numpy()
    conf = np.array([float(torch.sigmoid(o.obj_score).reshape(-1)[0]) if o is not None else 0.0 for o in outputs],
                    np.float32)
    keep = masks.reshape(len(masks), -1).any(1)
    return Results.from_masks(image, masks[keep], conf[keep], path=path, frame=frame,
                              obj_ids=np.array(list(obj_ids), int)[keep])


def _policy(name: str) -> dict:
    """The Tracker's policy keyword for `tracker=`: none for the reference's own rule."""
    name = str(name or "sam2").lower()
    if name == "sam2":
        return {}
    from .policies import make_policy  # the training-free policies (issue 26)
    return {"policy": make_policy(name)}
