"""Videos with object masks, DAVIS or SA-V layout, read lazily: what `sam2 val` tracks and scores,
and what `sam2 train`'s clips (:mod:`.clips`) are cut from.

**DAVIS** (``data=DAVIS/``): ``JPEGImages[/480p]/<video>/<frame>.jpg`` and
``Annotations[/480p]/<video>/<frame>.png`` palette (or 8-bit grey) PNGs whose pixel value is the
object id; 0 and 255 (void) are no object (see :mod:`.davis`).

**SA-V** (``JPEGImages_24fps/`` or ``JPEGImages/``, with ``Annotations_6fps/`` or
``Annotations/``): ``Annotations/<video>/<object id>/<frame>.png``, one binary PNG per object and
annotated frame (any non-zero pixel is the object).

A video's frames are every frame of ``JPEGImages/<video>`` (:func:`~sam2cli.io.sources.list_frame_folder`
order); the annotated frames are those with a PNG of the same stem (SA-V annotates every 4th).
:func:`list_video` lists the files (a mask without its frame fails there); :func:`check_video`
checks every annotation's header (size against its frame) and content (PNG mode, at least one
object), so a bad dataset fails before any tracking, with one line naming the file.
:func:`open_vos` does both for `sam2 val`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np

from sam2cli.errors import SAM2Error
from sam2cli.io.image import load_image
from sam2cli.io.sources import list_frame_folder

from .common import PathLike, _bad, _image_size
from .davis import all_videos, find_vos_dirs, label_objects, listed_videos, mask_pngs, png_size, read_label

Source = Union[Path, Dict[int, Path]]  # one palette PNG, or {obj id: binary PNG}


@dataclass
class VosVideo:
    """One video: all its frames, and where its annotations are."""

    name: str
    frames: List[Path]  # every frame, in tracking order
    annotated: List[int]  # indices into frames that have ground truth, ascending
    sources: List[Source]  # per annotated frame: palette PNG, or {obj id: binary PNG}
    obj_ids: List[int] = field(default_factory=list)  # every object, ascending (set by check_video)
    first_seen: Dict[int, int] = field(default_factory=dict)  # obj id -> frame index of its first annotation
    frame_ids: List[Tuple[int, ...]] = field(default_factory=list)  # per annotated frame: ids on it (lazy)
    size: Tuple[int, int] = (0, 0)  # (H, W) of the frames

    @property
    def layout(self) -> str:
        return "sav" if self.sources and isinstance(self.sources[0], dict) else "davis"

    def read_frame(self, t: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB of frame ``t``."""
        try:
            return load_image(self.frames[t])
        except SAM2Error as e:
            raise SAM2Error(f"{self.frames[t]}: cannot read the frame ({e})") from None

    def read_truth(self, k: int) -> Dict[int, np.ndarray]:
        """Ground truth of annotated frame number ``k``: {obj id: (H, W) bool} for the objects on it."""
        src = self.sources[k]
        if isinstance(src, dict):
            out = {}
            for oid, path in src.items():
                m = read_label(path) > 0
                if m.any():
                    out[oid] = m
            return out
        return label_objects(read_label(src))

    def ids_on_frames(self) -> List[Tuple[int, ...]]:
        """The object ids on each annotated frame (read once, then kept in ``frame_ids``)."""
        if len(self.frame_ids) != len(self.sources):
            self.frame_ids = [tuple(self.read_truth(k)) for k in range(len(self.sources))]
        return self.frame_ids


def vos_dirs(root: Path) -> Tuple[Path, Path]:
    """(frames dir, annotations dir) of a DAVIS / SA-V folder; UsageError when either is missing."""
    dirs = find_vos_dirs(root)
    if dirs is None:
        raise _bad(root, "is not a video dataset (no JPEGImages/ folder)",
                   "give a DAVIS or SA-V folder: JPEGImages/<video>/ and Annotations/<video>/")
    frames_dir, ann_dir = dirs
    if ann_dir is None:
        raise _bad(root, "has no Annotations/ folder", "add Annotations/<video>/<frame>.png masks (DAVIS palette "
                   "PNGs, or one folder of binary PNGs per object as in SA-V)")
    return frames_dir, ann_dir


def list_video(name: str, frames_dir: Path, ann_dir: Path) -> VosVideo:
    """The frames and mask files of video ``name`` (files only; see :func:`check_video`)."""
    vdir, adir = frames_dir / name, ann_dir / name
    if not adir.is_dir():
        raise _bad(vdir, f"video {name!r} has no mask folder {adir}", "add its mask PNGs or remove the video")
    try:
        frames = list_frame_folder(vdir)
    except SAM2Error:
        raise _bad(vdir, "has no JPEG/PNG frames", "add frames like 00000.jpg or remove the video") from None
    index = {p.stem: t for t, p in enumerate(frames)}
    obj_dirs = sorted((p for p in adir.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    by_frame: Dict[int, Source] = {}
    if obj_dirs:  # SA-V: one folder of binary PNGs per object
        for od in obj_dirs:
            if not od.name.isdigit():
                raise _bad(od, "object folder name is not a number", "name object folders 000, 001, ...")
            for stem, png in mask_pngs(od).items():
                by_frame.setdefault(_frame_of(png, stem, index, vdir), {})[int(od.name)] = png  # type: ignore[index]
    else:
        for stem, png in mask_pngs(adir).items():
            by_frame[_frame_of(png, stem, index, vdir)] = png
    if not by_frame:
        raise _bad(adir, "has no mask PNGs", "name masks like their frames (00000.jpg -> 00000.png)")
    annotated = sorted(by_frame)
    return VosVideo(name, frames, annotated, [by_frame[t] for t in annotated])


def _frame_of(png: Path, stem: str, index: Dict[str, int], vdir: Path) -> int:
    if stem not in index:
        raise _bad(png, f"mask has no frame {stem}.* in {vdir}", "add the frame or remove the mask")
    return index[stem]


def check_video(video: VosVideo) -> None:
    """Sizes against the first frame (headers), then which objects appear where (contents);
    fills ``size``, ``frame_ids``, ``first_seen`` and ``obj_ids``.

    The PNG mode is checked where a mask is read (:func:`~.davis.read_label`)."""
    h, w = _image_size(video.frames[0])
    video.size = (h, w)
    for t, src in zip(video.annotated, video.sources):
        for path in (src.values() if isinstance(src, dict) else [src]):
            mh, mw = png_size(path)
            if (mh, mw) != (h, w):
                fh, fw = _image_size(video.frames[t])
                if (mh, mw) != (fh, fw):
                    raise _bad(path, f"mask is {mw}x{mh} but its frame {video.frames[t].name} is {fw}x{fh}",
                               "save the mask at the frame's size")
                raise _bad(video.frames[t], f"frame is {fw}x{fh} but the video's first frame is {w}x{h}",
                           "give every frame of a video the same size")
    video.first_seen = {}
    for t, ids in zip(video.annotated, video.ids_on_frames()):
        for oid in ids:
            video.first_seen.setdefault(oid, t)
    if not video.first_seen:
        src = video.sources[0]
        raise _bad(src if not isinstance(src, dict) else video.frames[0].parent,
                   f"video {video.name!r} has no annotated object on any frame",
                   "annotate at least one object or remove the video")
    video.obj_ids = sorted(video.first_seen)


def open_vos(data: PathLike) -> List[VosVideo]:
    """The checked videos of a DAVIS or SA-V folder (those of ``ImageSets/2017/val.txt`` when it
    exists, else every video): `sam2 val`'s video data."""
    root = Path(data).expanduser()
    frames_dir, ann_dir = vos_dirs(root)
    names = listed_videos(root, frames_dir, "val")
    names = all_videos(frames_dir) if names is None else names
    if not names:
        raise _bad(frames_dir, "has no video folders", "add JPEGImages/<video>/<frame>.jpg")
    videos = [list_video(n, frames_dir, ann_dir) for n in names]
    for v in videos:
        check_video(v)
    return videos
