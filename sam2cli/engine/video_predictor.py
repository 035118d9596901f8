"""SAM2VideoPredictor: the interactive video API (init_state / add prompts / propagate), the
reference's semantics on a streaming, bounded state.

    predictor = SAM2VideoPredictor(overrides=dict(model="sam2.1_t.pt"))
    state = predictor.init_state("video.mp4")
    predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=[[210, 350]], labels=[1])
    for frame_idx, obj_ids, logits in predictor.propagate_in_video(state):
        masks = logits > 0            # (N, 1, H, W)
"""

from dataclasses import fields
from typing import Iterator, List, Optional

import numpy as np
import torch

from sam2cli.errors import UsageError
from sam2cli.model.sam2 import ImageFeatures
from .loader import load_model
from .options import ModelOptions, VideoOptions
from .session import TrackingSession

VideoState = TrackingSession  # the reference calls it the inference state


def video_options(overrides: Optional[dict]) -> VideoOptions:
    """The Ultralytics-style `overrides=` dict -> VideoOptions (an unknown key is one line)."""
    o = dict(overrides or {})
    net_keys = {f.name for f in fields(ModelOptions)}
    own = {f.name for f in fields(VideoOptions)} - {"net"}
    unknown = sorted(set(o) - net_keys - own)
    if unknown:
        raise UsageError(f"unknown video predictor option(s) {unknown}: use {sorted(net_keys | own)}")
    net = ModelOptions(**{k: o[k] for k in net_keys if k in o})
    return VideoOptions(net=net, **{k: o[k] for k in own if k in o})


class SAM2VideoPredictor:
    """The reference's video API over a TrackingSession. Options: `options=VideoOptions(...)`, or
    the Ultralytics-style dict `overrides=` (model, device, half, imgsz, vid_stride, max_frames,
    non_overlap, tracker, fill_hole_area); `model=` an already loaded backend."""

    def __init__(self, overrides: Optional[dict] = None, model=None, *, options: Optional[VideoOptions] = None):
        self.options = opts = options if options is not None else video_options(overrides)
        net = opts.net
        self.model = model if model is not None else load_model(net.model, net.device, net.imgsz)[0]
        self.max_frames = None if opts.max_frames is None else int(opts.max_frames)
        if self.max_frames is not None and self.max_frames < 1:
            raise UsageError(f"max_frames must be >= 1 (or None for all), got {self.max_frames}")

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ------------------------------------------------------------------ session
    def init_state(self, source, keep_all_outputs: bool = False) -> TrackingSession:
        """Open a video file, frame folder or image sequence for interactive tracking.

        keep_all_outputs=True keeps every frame's output, as the reference does, so that a later
        click anywhere sees exactly the reference's memory; by default only what tracking can
        still attend to is kept (bounded memory on long videos)."""
        from sam2cli.io.sources import FrameReader, open_frames
        o = self.options
        reader = source if isinstance(source, FrameReader) else open_frames(source, o.vid_stride)
        return TrackingSession(self.model, reader=reader, half=o.net.half, non_overlap=o.non_overlap,
                               fill_hole_area=o.fill_hole_area, keep_all=keep_all_outputs, tracker=o.tracker)

    def reset_state(self, state: TrackingSession) -> None:
        state.reset()

    def remove_object(self, state: TrackingSession, obj_id: int) -> List[int]:
        return state.remove_object(obj_id)

    def features(self, state: TrackingSession, frame: int, image: Optional[np.ndarray] = None) -> ImageFeatures:
        return state.features(frame, image)

    # ------------------------------------------------------------------ prompts
    def add_new_points_or_box(self, state: TrackingSession, frame_idx: int, obj_id: int, points=None, labels=None,
                              clear_old_points: bool = True, box=None, image: Optional[np.ndarray] = None):
        """Clicks (pixels of the original frame) and/or a box for one object on one frame.
        Returns (frame_idx, obj_ids, logits (N, 1, H, W)) for every object on that frame."""
        logits = state.add_points(frame_idx, obj_id, points, labels, box, clear_old=clear_old_points, image=image)
        return frame_idx, state.obj_ids, logits

    def add_new_mask(self, state: TrackingSession, frame_idx: int, obj_id: int, mask,
                     image: Optional[np.ndarray] = None):
        """A binary (H, W) mask for one object on one frame."""
        logits = state.add_mask(frame_idx, obj_id, mask, image=image)
        return frame_idx, state.obj_ids, logits

    # ------------------------------------------------------------------ propagation
    def propagate_in_video(self, state: TrackingSession, start_frame_idx: Optional[int] = None,
                           max_frame_num_to_track: Optional[int] = None,
                           reverse: bool = False) -> Iterator:
        """Yield (frame_idx, obj_ids, logits (N, 1, H, W)) frame by frame, forward from the
        earliest prompted frame (or back from it with reverse=True). As in the reference,
        max_frame_num_to_track counts the frames after the start: it yields up to that many + 1."""
        span = None if max_frame_num_to_track is None else max_frame_num_to_track + 1
        for frame, logits in state.propagate(reverse=reverse, start=start_frame_idx, max_frames=span):
            yield frame, state.obj_ids, logits

    # ------------------------------------------------------------------ high level
    def frame_results(self, state: TrackingSession, frame: int, logits: torch.Tensor, image: np.ndarray):
        """Results for one frame: objects with a non-empty mask; conf = sigmoid(object score)."""
        return state.results(frame, logits, image)

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
        for i, image, logits in state.stream(entries, limit):
            if logits is not None:
                yield self.frame_results(state, i, logits, image)
