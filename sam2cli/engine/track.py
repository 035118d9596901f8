"""`sam2 track`: prompted objects through a video with SAM 2's memory, written as it goes.

Seekable sources (files, frame folders, image sequences) follow the reference semantics: every
prompted frame conditions its object over the whole video, propagation runs forward from the
earliest prompted frame, then (direction=both / backward) back from it. The overlay video must be
in frame order, so each frame's masks are spooled to disk as RLE and the mp4 is composed at the end
by reading the video once more: memory stays flat whatever the video length.
Live streams (webcam, RTSP) are read once, in order: a prompt takes effect from its frame on.
"""

import json
import os
import time
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
from rich.console import Console

from sam2cli.errors import UsageError
from sam2cli.io.coco_rle import mask_to_rle, rle_to_mask
from sam2cli.io.prompt_file import load_prompts, prompts_from_args, validate_prompts
from sam2cli.io.run_dir import increment_dir
from sam2cli.io.video_reader import open_frames
from .outputs import RunOutputs
from .progress import progress_bar
from .results import Results


class MaskSpool:
    """Per-frame masks as RLE in a temporary JSONL file, read back in frame order."""

    def __init__(self, path: Path):
        self.path = path
        self.file = open(path, "w+", encoding="utf-8")
        self.offsets: Dict[int, int] = {}

    def add(self, r: Results) -> None:
        self.offsets[r.frame] = self.file.tell()
        rec = {"ids": [int(i) for i in r.boxes.id], "conf": [float(c) for c in r.boxes.conf],
               "rles": [mask_to_rle(m) for m in r.masks.data]}
        self.file.write(json.dumps(rec) + "\n")

    def get(self, frame: int, image: np.ndarray) -> Optional[Results]:
        if frame not in self.offsets:
            return None
        self.file.seek(self.offsets[frame])
        rec = json.loads(self.file.readline())
        masks = np.stack([rle_to_mask(r) for r in rec["rles"]]) if rec["rles"] else \
            np.zeros((0, *image.shape[:2]), bool)
        return Results.from_masks(image, masks, np.array(rec["conf"], np.float32), frame=frame,
                                  obj_ids=np.array(rec["ids"], int))

    def close(self) -> None:
        self.file.close()
        os.unlink(self.path)


def load_entries(args: Dict[str, Any]):
    if args["prompts"]:
        return load_prompts(args["prompts"])
    entries = prompts_from_args(args["points"], args["labels"], args["bboxes"], args["frame"], args["obj_ids"])
    if not entries:
        raise UsageError("sam2 track needs prompts: prompts=prompts.json, or points=/bboxes= with frame= "
                         "(e.g. sam2 track source=video.mp4 points=[[400,370]] labels=[1])")
    return entries


def run_track(args: Dict[str, Any], console: Console) -> int:
    if args["source"] is None:
        raise UsageError("source= is required, e.g. sam2 track source=video.mp4 prompts=prompts.json")
    entries = load_entries(args)
    reader = open_frames(args["source"], args["vid_stride"])
    validate_prompts(entries, len(reader) if reader.seekable else None, reader.height, reader.width)

    from .video_predictor import SAM2VideoPredictor
    predictor = SAM2VideoPredictor(overrides=dict(model=args["model"], device=args["device"] or None,
                                                  half=args["half"], imgsz=args["imgsz"],
                                                  non_overlap=args["non_overlap"]))
    saving = any(args[k] for k in ("save", "save_txt", "save_json", "save_masks"))
    run_dir = increment_dir(args["project"], args["name"] or "track", args["exist_ok"]) if saving else None
    outputs = RunOutputs(run_dir, args)
    outputs.video_name = reader.name
    state = predictor.init_state(reader)
    t0, n_frames, n_masks = time.perf_counter(), 0, 0
    spool = MaskSpool(run_dir / ".masks.spool.jsonl") if (run_dir and args["save"] and reader.seekable) else None
    try:
        with progress_bar(console) as bar:
            task = bar.add_task("track", total=reader.length, rate="")

            def emit(frame, image, logits):
                nonlocal n_frames, n_masks
                r = predictor.frame_results(state, frame, logits, image) if logits is not None else \
                    Results.from_masks(image, np.zeros((0, *image.shape[:2]), bool), np.zeros(0, np.float32),
                                       path=reader.path_of(frame) if reader.seekable else None, frame=frame,
                                       obj_ids=np.zeros(0, int))
                outputs.write(r, reader.fps, overlay=spool is None)
                if spool is not None:
                    spool.add(r)
                n_frames, n_masks = n_frames + 1, n_masks + len(r)
                bar.update(task, advance=1, rate=f"{n_frames / (time.perf_counter() - t0):.2f} fps")

            if reader.seekable:
                for e in entries:
                    predictor.add_prompt(state, e)
                passes = []
                if args["direction"] in ("forward", "both") and not args["reverse"]:
                    passes.append(False)
                if args["direction"] in ("backward", "both") or args["reverse"]:
                    passes.append(True)
                for reverse in passes:
                    for frame, _, logits in predictor.propagate_in_video(state, reverse=reverse,
                                                                         max_frame_num_to_track=args["max_frames"]):
                        emit(frame, reader[frame], logits)
            else:
                for frame, image, logits in predictor.stream(state, entries, args["max_frames"]):
                    emit(frame, image, logits)
            if spool is not None:  # the overlay video, in frame order
                for i, image in reader:
                    r = spool.get(i, image) or Results.from_masks(image, np.zeros((0, *image.shape[:2]), bool),
                                                                  np.zeros(0, np.float32), frame=i)
                    outputs.video_frame(r, reader.fps)
    except BaseException:
        outputs.abort()
        raise
    finally:
        if spool is not None:
            spool.close()
        reader.close()
    outputs.close()
    dt = time.perf_counter() - t0
    where = f", saved to {run_dir}" if run_dir else ""
    console.print(f"{n_frames} frame(s), {len(state.objects)} object(s), {n_masks} mask(s), "
                  f"{dt / max(n_frames, 1) * 1e3:.0f} ms/frame{where}")
    return 0
