"""RunOutputs: sends each Results to the writers the user asked for (shared by predict and track).

Layout of a run directory:
    <stem>.jpg / <stem>.mp4     overlays (save=True)
    labels/<stem>[_<frame>].txt YOLO segmentation labels (save_txt=True)
    masks/<stem>[_<frame>]...   mask PNGs (save_masks=True; binary or palette; _c<k>: candidate k
                                with multimask_output=True)
    predictions.json            one record per object per image or frame (save_json=True)
Every file is written under a temporary name and renamed when complete.
"""

import sys
from pathlib import Path
from typing import Dict, Optional

import cv2
import numpy as np

from sam2cli.io.mask_pngs import save_mask_pngs
from sam2cli.io.overlay import overlay, save_image
from sam2cli.io.prediction_json import JsonArrayWriter, JsonlWriter, prediction_records
from sam2cli.io.video_writer import VideoWriter
from sam2cli.io.writer_args import candidate_index
from sam2cli.io.yolo_labels import write_yolo_txt, yolo_seg_lines
from sam2cli.core.results import Results
from .options import OutputOptions


class RunOutputs:
    def __init__(self, run_dir: Optional[Path], opts: OutputOptions):
        self.dir = run_dir
        self.opts = opts
        self.json = JsonArrayWriter(run_dir / "predictions.json") if run_dir and opts.save_json else None
        self.jsonl = JsonlWriter(sys.stdout) if opts.jsonl else None
        self.videos: Dict[str, VideoWriter] = {}
        self.video_name: Optional[str] = None  # name of the video being written (track)

    def _stem(self, r: Results) -> str:
        if r.frame is not None and self.video_name:
            return self.video_name
        return Path(r.path).stem if r.path else "image"

    def draw(self, r: Results) -> np.ndarray:
        ids = r.boxes.id if r.boxes is not None else None
        if ids is not None and candidate_index(ids, len(ids)) is not None:
            ids = np.arange(1, len(ids) + 1)  # candidates of one object: a colour each
        img = overlay(r.orig_img, r.masks.data, obj_ids=ids, line_width=self.opts.line_width)
        if self.opts.show_boxes and r.boxes is not None:
            for x1, y1, x2, y2 in r.boxes.xyxy.astype(int):
                cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), (255, 255, 255), self.opts.line_width)
        return img

    def write(self, r: Results, fps: Optional[float] = None, overlay: bool = True) -> None:
        """Write one image's or one video frame's results (r.frame is None for images).
        overlay=False leaves the overlay out (written later, in frame order, by the caller)."""
        a, stem = self.opts, self._stem(r)
        tag = stem if r.frame is None else f"{stem}_{r.frame:06d}"
        ids = r.boxes.id if r.boxes is not None and r.boxes.id is not None else np.arange(1, len(r) + 1)
        if self.dir is not None:
            if a.save and overlay:
                if r.frame is None:
                    suffix = Path(r.path).suffix.lower() if r.path else ".jpg"
                    save_image(self.dir / (stem + (suffix if suffix in (".png", ".jpg", ".jpeg") else ".jpg")),
                               self.draw(r))
                else:
                    self.video_frame(r, fps)
            if a.save_txt:
                lines = yolo_seg_lines(r.masks.data, r.boxes.cls if r.boxes is not None else None,
                                       r.boxes.conf if r.boxes is not None else None, a.save_conf)
                write_yolo_txt(self.dir / "labels" / f"{tag}.txt", lines)
            if a.save_masks:
                scores = r.boxes.conf if r.boxes is not None else None
                save_mask_pngs(self.dir / "masks", tag, r.masks.data, ids, a.mask_format, scores)
        if self.json is not None:
            self.json.write_all(prediction_records(r, r.path or "", r.frame))
        if self.jsonl is not None:
            self.jsonl.write({"file": r.path, "frame": r.frame, "objects": [
                {k: v for k, v in rec.items() if k not in ("file", "frame")}
                for rec in prediction_records(r, r.path or "", r.frame)]})

    def video_frame(self, r: Results, fps: Optional[float]) -> None:
        """Append a frame's overlay to its video's mp4 (frames must come in order)."""
        stem = self._stem(r)
        if stem not in self.videos:
            h, w = r.orig_img.shape[:2]
            self.videos[stem] = VideoWriter(self.dir / f"{stem}.mp4", fps, w, h)
        self.videos[stem].write(self.draw(r))

    def close(self) -> None:
        for v in self.videos.values():
            v.close()
        if self.json is not None:
            self.json.close()

    def abort(self) -> None:
        for v in self.videos.values():
            v.abort()
        if self.json is not None:
            self.json.abort()
