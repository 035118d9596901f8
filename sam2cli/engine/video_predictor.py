"""SAM2VideoPredictor: the interactive video API (init_state / add prompts / propagate), the
reference's semantics on a streaming, bounded state.

    predictor = SAM2VideoPredictor(overrides=dict(model="sam2.1_t.pt"))
    state = predictor.init_state("video.mp4")
    predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=[[210, 350]], labels=[1])
    for frame_idx, obj_ids, logits in predictor.propagate_in_video(state):
        masks = logits > 0            # (N, 1, H, W)
"""

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from sam2cli.core.prompts import object_prompt
from sam2cli.errors import UsageError
from sam2cli.model.sam2 import NO_OBJ_LOGIT, ImageFeatures
from .device import autocast
from .loader import load_model
from .postprocess import non_overlapping
from .tracker import ObjectTrack, Tracker
from .transforms import binary_mask_prompt, point_prompt, preprocess


@dataclass
class VideoState:
    """Everything one video session holds: the frame reader, a tiny feature cache, the objects."""
    reader: object
    num_frames: Optional[int]
    height: int
    width: int
    objects: "OrderedDict[int, ObjectTrack]" = field(default_factory=OrderedDict)
    features: "OrderedDict[int, ImageFeatures]" = field(default_factory=OrderedDict)
    keep_all: bool = False

    @property
    def obj_ids(self) -> List[int]:
        return list(self.objects)


class SAM2VideoPredictor:
    """overrides: model (checkpoint), device, half, imgsz, fill_hole_area (8), non_overlap (False),
    vid_stride (1), max_frames (None: calling the predictor yields at most this many frames)."""

    def __init__(self, overrides: Optional[dict] = None, model=None):
        o = dict(overrides or {})
        self.model = model if model is not None else load_model(o.get("model", "sam2.1_b.pt"), o.get("device"),
                                                                o.get("imgsz"))[0]
        self.half = bool(o.get("half", False))
        self.non_overlap = bool(o.get("non_overlap", False))
        self.vid_stride = int(o.get("vid_stride", 1))
        self.max_frames = None if o.get("max_frames") is None else int(o["max_frames"])
        if self.max_frames is not None and self.max_frames < 1:
            raise UsageError(f"max_frames must be >= 1 (or None for all), got {self.max_frames}")
        self.tracker = Tracker(self.model, fill_hole_area=int(o.get("fill_hole_area", 8)))
        self.overrides = o

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------ session
    def init_state(self, source, keep_all_outputs: bool = False) -> VideoState:
        """Open a video file, frame folder or image sequence for interactive tracking.

        keep_all_outputs=True keeps every frame's output, as the reference does, so that a later
        click anywhere sees exactly the reference's memory; by default only what tracking can
        still attend to is kept (bounded memory on long videos)."""
        from sam2cli.io.sources import FrameReader, open_frames
        reader = source if isinstance(source, FrameReader) else open_frames(source, self.vid_stride)
        return VideoState(reader, len(reader) if reader.seekable else None, reader.height, reader.width,
                          keep_all=keep_all_outputs)

    def reset_state(self, state: VideoState) -> None:
        state.objects.clear()
        state.features.clear()

    def remove_object(self, state: VideoState, obj_id: int) -> List[int]:
        state.objects.pop(obj_id, None)
        return state.obj_ids

    @torch.inference_mode()
    def features(self, state: VideoState, frame: int, image: Optional[np.ndarray] = None) -> ImageFeatures:
        """Backbone features of a frame (the last two are cached)."""
        if frame not in state.features:
            img = image if image is not None else state.reader[frame]
            x = preprocess(img, self.model.image_size, self.device, resample="bicubic")
            with autocast(self.device, self.half):
                state.features[frame] = self.model.encode_image(x)
            while len(state.features) > 2:
                state.features.popitem(last=False)
        return state.features[frame]

    # ------------------------------------------------------------------ prompts
    def _object(self, state: VideoState, obj_id: int) -> ObjectTrack:
        if obj_id not in state.objects:
            state.objects[obj_id] = ObjectTrack(int(obj_id))
        return state.objects[obj_id]

    def _check_frame(self, state: VideoState, frame_idx: int) -> None:
        if state.num_frames is not None and not 0 <= frame_idx < state.num_frames:
            raise UsageError(f"frame {frame_idx} is outside the video (0..{state.num_frames - 1})")

    @torch.inference_mode()
    def add_new_points_or_box(self, state: VideoState, frame_idx: int, obj_id: int, points=None, labels=None,
                              clear_old_points: bool = True, box=None, image: Optional[np.ndarray] = None):
        """Clicks (pixels of the original frame) and/or a box for one object on one frame.
        Returns (frame_idx, obj_ids, logits (N, 1, H, W)) for every object on that frame."""
        self._check_frame(state, frame_idx)
        if points is None and box is None:
            raise UsageError("give points (with labels) or a box")
        p = object_prompt(points, labels, box)  # core's checks, as for images and prompt files
        pts, lab = point_prompt(p.points, p.labels, p.box, (state.height, state.width), self.model.image_size,
                                self.device)
        return self._prompt(state, obj_id, frame_idx, image, points=(pts, lab), add_to_clicks=not clear_old_points)

    @torch.inference_mode()
    def add_new_mask(self, state: VideoState, frame_idx: int, obj_id: int, mask, image: Optional[np.ndarray] = None):
        """A binary (H, W) mask for one object on one frame."""
        self._check_frame(state, frame_idx)
        m = np.asarray(mask)
        if m.ndim != 2:
            raise UsageError(f"a mask prompt must be (H, W), got shape {m.shape}")
        m_t = binary_mask_prompt(m, self.model.image_size, self.device)
        return self._prompt(state, obj_id, frame_idx, image, mask=m_t)

    def _prompt(self, state: VideoState, obj_id: int, frame: int, image, **prompt):
        obj = self._object(state, obj_id)
        feats = self.features(state, frame, image)
        with autocast(self.device, self.half):
            self.tracker.prompt(feats, obj, frame, num_frames=state.num_frames, **prompt)
        return frame, state.obj_ids, self._frame_logits(state, frame)

    def _frame_logits(self, state: VideoState, frame: int) -> torch.Tensor:
        """(N, 1, H, W) logits at video resolution; -1024 for objects with nothing on this frame."""
        lows = []
        for obj in state.objects.values():
            o = obj.output(frame)
            s = self.model.sam_prompt_encoder.mask_input_size
            lows.append(o.logits if o is not None else torch.full((1, 1, s, s), NO_OBJ_LOGIT, device=self.device))
        logits = F.interpolate(torch.cat(lows).float(), size=(state.height, state.width), mode="bilinear",
                               align_corners=False)
        return non_overlapping(logits) if self.non_overlap else logits

    # ------------------------------------------------------------------ propagation
    @torch.inference_mode()
    def preflight(self, state: VideoState) -> None:
        """Encode the memories of prompted frames (before any propagation)."""
        if not state.objects:
            raise UsageError("no object has a prompt yet: add points, a box or a mask first")
        for obj in state.objects.values():
            with autocast(self.device, self.half):
                self.tracker.commit(obj, lambda frame: self.features(state, frame))
            if not obj.prompted:
                raise UsageError(f"object {obj.obj_id} has no prompt on any frame")

    @torch.inference_mode()
    def propagate_in_video(self, state: VideoState, start_frame_idx: Optional[int] = None,
                           max_frame_num_to_track: Optional[int] = None,
                           reverse: bool = False) -> Iterator:
        """Yield (frame_idx, obj_ids, logits (N, 1, H, W)) frame by frame, forward from the
        earliest prompted frame (or back from it with reverse=True). As in the reference,
        max_frame_num_to_track counts the frames after the start: it yields up to that many + 1."""
        self.preflight(state)
        n = state.num_frames
        if start_frame_idx is None:
            start_frame_idx = min(f for obj in state.objects.values() for f in obj.cond)
        span = n if max_frame_num_to_track is None else max_frame_num_to_track
        if reverse:
            end = max(start_frame_idx - span, 0)
            order = range(start_frame_idx, end - 1, -1) if start_frame_idx > 0 else []
        else:
            end = min(start_frame_idx + span, n - 1)
            order = range(start_frame_idx, end + 1)
        for frame in order:
            yield frame, state.obj_ids, self.step(state, frame, reverse)

    def step(self, state: VideoState, frame: int, reverse: bool = False, image=None) -> torch.Tensor:
        """Track every object on one frame; returns (N, 1, H, W) logits at video resolution."""
        feats = None
        for obj in state.objects.values():
            if feats is None and frame not in obj.cond:
                feats = self.features(state, frame, image)
            with autocast(self.device, self.half):
                self.tracker.track(feats, obj, frame, reverse=reverse, num_frames=state.num_frames)
            if not state.keep_all:
                self.tracker.evict(obj, frame)
        return self._frame_logits(state, frame)

    # ------------------------------------------------------------------ high level
    def frame_results(self, state: VideoState, frame: int, logits: torch.Tensor, image: np.ndarray):
        """Results for one frame: objects with a non-empty mask; conf = sigmoid(object score)."""
        from sam2cli.core.results import Results
        masks = (logits[:, 0] > 0).cpu().numpy()
        scores = np.array([float(torch.sigmoid(o.output(frame).obj_score).reshape(-1)[0])
                           if o.output(frame) is not None else 0.0 for o in state.objects.values()], np.float32)
        keep = masks.reshape(len(masks), -1).any(1)
        ids = np.array(state.obj_ids)[keep]
        return Results.from_masks(image, masks[keep], scores[keep], path=state.reader.path_of(frame), frame=frame,
                                  obj_ids=ids)

    def add_prompt(self, state: VideoState, entry, image: Optional[np.ndarray] = None):
        """Add one PromptEntry (see sam2cli.io.prompt_file)."""
        if entry.mask is not None:
            return self.add_new_mask(state, entry.frame, entry.obj_id, entry.mask, image=image)
        return self.add_new_points_or_box(state, entry.frame, entry.obj_id, entry.points, entry.labels,
                                          box=entry.box, image=image)

    def stream(self, state: VideoState, entries, max_frames: Optional[int] = None) -> Iterator:
        """Frames in order, prompts taking effect from their frame on (live streams, or any source
        read once): yields (frame, image, logits or None when no object is prompted yet), stopping
        after max_frames tracked frames (counted from the first prompted one)."""
        by_frame: Dict[int, list] = {}
        for e in entries:
            by_frame.setdefault(e.frame, []).append(e)
        tracked = 0
        for i, image in state.reader:
            if max_frames is not None and tracked >= max_frames:
                break
            for e in by_frame.get(i, []):
                self.add_prompt(state, e, image=image)
            if not state.objects:
                yield i, image, None
                continue
            with torch.inference_mode():
                self.preflight(state)
                logits = self.step(state, i, image=image)
            tracked += 1
            yield i, image, logits

    def __call__(self, source, points=None, labels=None, bboxes=None, masks=None, frame: int = 0,
                 obj_ids=None, max_frames: Optional[int] = None) -> Iterator:
        """Track the prompted objects from `frame` on; yields one Results per frame, at most
        max_frames of them (default: overrides' max_frames, else every frame)."""
        from sam2cli.io.prompt_file import prompts_from_args, validate_prompts
        entries = prompts_from_args(points, labels, bboxes, frame, obj_ids)
        if masks is not None:
            from sam2cli.io.prompt_file import PromptEntry
            m = np.asarray(masks)
            m = m[None] if m.ndim == 2 else m
            ids = list(obj_ids) if obj_ids is not None else list(range(len(entries) + 1, len(entries) + 1 + len(m)))
            entries += [PromptEntry(frame, int(i), mask=mk.astype(bool), index=k) for k, (i, mk) in enumerate(zip(ids, m))]
        if not entries:
            raise UsageError("tracking needs prompts: points=, bboxes= or masks= on frame=")
        state = self.init_state(source)
        validate_prompts(entries, state.num_frames, state.height, state.width)
        limit = self.max_frames if max_frames is None else int(max_frames)
        for i, image, logits in self.stream(state, entries, limit):
            if logits is not None:
                yield self.frame_results(state, i, logits, image)
