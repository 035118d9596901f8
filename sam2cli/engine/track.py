"""`sam2 track`: prompted objects through a video with SAM 2's memory.

Seekable sources (files, frame folders, image sequences) follow the reference semantics: every
prompted frame conditions its object over the whole video, propagation runs forward from the
earliest prompted frame, then (direction=both / backward) back from it. Outputs come in frame
order, each frame once: each frame's masks are spooled to disk as RLE (the latest result of a
frame wins: the prompted frame is tracked by both passes) and the outputs that must be in order
(the overlay mp4 always, every output once a backward pass runs) are written at the end by reading
the video once more: memory stays flat whatever the video length. A forward-only run writes its
labels, masks and records as it goes.
Live streams (webcam, RTSP) are read once, in order: a prompt takes effect from its frame on.
"""

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Dict, Iterator, Optional

import numpy as np
from rich.console import Console

from sam2cli.errors import UsageError
from sam2cli.io.coco_rle import mask_to_rle, rle_to_mask
from sam2cli.io.prompt_file import load_prompts, prompts_from_args, validate_prompts
from sam2cli.io.sources import open_frames
from .loader import load_model
from .options import TrackOptions
from .outputs import RunOutputs
from .run import Run
from .session import TrackingSession
from sam2cli.core.results import Results


class MaskSpool:
    """Per-frame masks as RLE in a temporary JSONL file, read back in frame order."""

    def __init__(self, path: Path):
        self.path = path
        self.file = open(path, "w+", encoding="utf-8")
        self.offsets: Dict[int, int] = {}

    def add(self, r: Results) -> None:
        """Keep a frame's result; a later one for the same frame replaces it."""
        self.file.seek(0, os.SEEK_END)
        self.offsets[r.frame] = self.file.tell()
        rec = {"ids": [int(i) for i in r.boxes.id], "conf": [float(c) for c in r.boxes.conf],
               "rles": [mask_to_rle(m) for m in r.masks.data], "path": r.path}
        self.file.write(json.dumps(rec) + "\n")

    def get(self, frame: int, image: np.ndarray) -> Optional[Results]:
        if frame not in self.offsets:
            return None
        self.file.seek(self.offsets[frame])
        rec = json.loads(self.file.readline())
        masks = np.stack([rle_to_mask(r) for r in rec["rles"]]) if rec["rles"] else \
            np.zeros((0, *image.shape[:2]), bool)
        return Results.from_masks(image, masks, np.array(rec["conf"], np.float32), path=rec["path"], frame=frame,
                                  obj_ids=np.array(rec["ids"], int))

    def close(self) -> None:
        self.file.close()
        os.unlink(self.path)


def load_entries(opts: TrackOptions):
    if opts.prompts:
        return load_prompts(opts.prompts)
    p = opts.prompt
    entries = prompts_from_args(p.points, p.labels, p.bboxes, p.frame, p.obj_ids)
    if not entries:
        raise UsageError("sam2 track needs prompts: prompts=prompts.json, or points=/bboxes= with frame= "
                         "(e.g. sam2 track source=video.mp4 points=[[400,370]] labels=[1])")
    return entries


def empty_result(image: np.ndarray, frame: int, path: Optional[str] = None) -> Results:
    """A frame on which no object has a mask."""
    return Results.from_masks(image, np.zeros((0, *image.shape[:2]), bool), np.zeros(0, np.float32), path=path,
                              frame=frame, obj_ids=np.zeros(0, int))


def planned_frames(reader, entries, passes, max_frames: Optional[int]) -> Optional[int]:
    """How many frames the propagation passes will visit (the progress bar's total)."""
    if not reader.seekable:
        return max_frames
    start, cap = min(e.frame for e in entries), max_frames or len(reader)
    return sum(min(start + 1 if start > 0 else 0, cap) if rev else min(len(reader) - start, cap) for rev in passes)


def write_in_order(spool: MaskSpool, reader, outputs: RunOutputs, every_frame: bool, in_order: bool):
    """Write the spooled frames in frame order: the overlay (of every frame of the video when
    every_frame, frames without a result drawn bare), and, unless they were written as tracked
    (in_order), the other outputs. Returns (frames, masks) written here."""
    n_frames = n_masks = 0
    frames = iter(reader) if every_frame else ((i, reader[i]) for i in sorted(spool.offsets))
    for i, image in frames:
        r = spool.get(i, image)
        if in_order or r is None:
            if outputs.opts.save and outputs.dir is not None:
                outputs.video_frame(r or empty_result(image, i), reader.fps)
            continue
        outputs.write(r, reader.fps)
        n_frames, n_masks = n_frames + 1, n_masks + len(r)
    return n_frames, n_masks


def tracked_frames(session, reader, entries, passes, max_frames: Optional[int]) -> Iterator:
    """(frame, image, logits or None) as tracking produces them: the propagation passes on a
    seekable source (max_frames per pass, the prompted frame included), else one read of the
    stream."""
    if not reader.seekable:
        yield from session.stream(entries, max_frames)
        return
    for e in entries:
        session.add_entry(e)
    for reverse in passes:
        for frame, logits in session.propagate(reverse=reverse, max_frames=max_frames):
            yield frame, reader[frame], logits


def run_track(opts: TrackOptions, console: Console) -> int:
    if opts.source is None:
        raise UsageError("source= is required, e.g. sam2 track source=video.mp4 prompts=prompts.json")
    entries = load_entries(opts)
    reader = open_frames(opts.source, opts.vid_stride)
    validate_prompts(entries, len(reader) if reader.seekable else None, reader.height, reader.width)

    video, net = opts.video, opts.net
    model = load_model(net.model, net.device, net.imgsz)[0]
    run = Run("track", opts.run_dir, opts.outputs, console)
    outputs = run.outputs
    outputs.video_name = reader.name
    session = TrackingSession(model, reader=reader, half=net.half, non_overlap=video.non_overlap,
                              fill_hole_area=video.fill_hole_area, tracker=video.tracker)
    direction = opts.direction
    if opts.reverse:
        logging.getLogger("sam2cli").warning("reverse=True is deprecated: it means direction=backward; write that")
        direction = "backward"
    passes = [rev for rev, on in ((False, direction != "backward"), (True, direction != "forward")) if on]
    overlay = run.dir is not None and opts.outputs.save
    in_order = not reader.seekable or passes == [False]  # results arrive in frame order, each frame once
    spool = None
    if reader.seekable and (overlay or not in_order):
        fd, spool_path = tempfile.mkstemp(".jsonl", ".masks.spool", dir=run.dir)
        os.close(fd)
        spool = MaskSpool(Path(spool_path))
    steps = 0  # tracking steps (a frame tracked by both passes counts twice)
    try:
        with run.guard("tracked frame"):
            interrupted = False
            try:
                with run.progress(planned_frames(reader, entries, passes, opts.max_frames), lambda: steps) as advance:
                    for frame, image, logits in tracked_frames(session, reader, entries, passes, opts.max_frames):
                        r = session.results(frame, logits, image) if logits is not None else \
                            empty_result(image, frame, reader.path_of(frame) if reader.seekable else None)
                        if in_order:
                            outputs.write(r, reader.fps, overlay=spool is None)
                            run.count(len(r))
                        if spool is not None:
                            spool.add(r)
                        steps += 1
                        advance()
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM: keep the frames tracked so far
                if not steps:
                    raise
                interrupted = True
            if spool is not None:
                frames, masks = write_in_order(spool, reader, outputs, overlay and not interrupted, in_order)
                run.count(masks, frames)
            if interrupted:
                raise KeyboardInterrupt
    finally:
        if spool is not None:
            spool.close()
        reader.close()
    run.summary(f"{run.done} frame(s), {len(session.objects)} object(s), {run.masks} mask(s), "
                f"{run.rate() or 'nothing tracked'}")
    return 0
