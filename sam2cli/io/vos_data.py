"""Video object segmentation ground truth for `sam2 val`: DAVIS and SA-V layouts, read lazily.

**DAVIS** (``data=DAVIS/``): ``JPEGImages[/480p]/<video>/<frame>.jpg`` and
``Annotations[/480p]/<video>/<frame>.png`` palette (or 8-bit grey) PNGs whose pixel value is the
object id. 0 is background, and so is 255 (DAVIS' void label, which its evaluation reads as
background). Videos: the names in ``ImageSets/2017/val.txt`` when that file exists, else every
video folder.

**SA-V** (``JPEGImages_24fps/`` or ``JPEGImages/``, with ``Annotations_6fps/`` or
``Annotations/``): ``Annotations/<video>/<object id>/<frame>.png``, one binary PNG per object and
annotated frame (any non-zero pixel is the object).

Every frame of ``JPEGImages/<video>`` is tracked; the annotated frames are those with a PNG of
the same stem (SA-V annotates every 4th). :func:`open_vos` lists the files and checks every
annotation's header (size against its frame, PNG mode) and content (at least one object per
video), so a bad dataset fails before any tracking, with one line naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
from PIL import Image

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.image import load_image
from sam2cli.io.sources import list_frame_folder

VOID = 255
FRAME_DIRS = ("JPEGImages", "JPEGImages_24fps")
ANN_DIRS = ("Annotations", "Annotations_6fps")


def _bad(where, problem: str, fix: str) -> UsageError:
    return UsageError(" ".join(f"{where}: {problem}; {fix}".split()))


@dataclass
class VosVideo:
    """One video: all its frames, and where its annotations are."""

    name: str
    frames: List[Path]  # every frame, in tracking order
    annotated: List[int]  # indices into frames that have ground truth, ascending
    sources: List[Union[Path, Dict[int, Path]]]  # per annotated frame: palette PNG, or {obj id: binary PNG}
    obj_ids: List[int] = field(default_factory=list)  # every object, ascending
    first_seen: Dict[int, int] = field(default_factory=dict)  # obj id -> frame index of its first annotation
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
                m = _read_png(path) > 0
                if m.any():
                    out[oid] = m
            return out
        lab = _read_png(src)
        return {int(i): lab == i for i in np.unique(lab) if i not in (0, VOID)}


def _read_png(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            if img.mode not in ("P", "L", "1"):
                raise _bad(path, f"mask PNG has mode {img.mode}, not a palette or 8-bit grey image",
                           "save masks with pixel value = object id")
            return np.array(img.convert("L") if img.mode == "1" else img)
    except UsageError:
        raise
    except Exception:
        raise _bad(path, "cannot read the mask PNG", "replace the file") from None


def _header_size(path: Path, what: str, fix: str) -> Tuple[int, int]:
    """(H, W) from an image's header, without decoding it."""
    try:
        with Image.open(path) as img:
            return img.size[1], img.size[0]
    except Exception:
        raise _bad(path, f"cannot read the {what}", fix) from None


def _png_size(path: Path) -> Tuple[int, int]:
    return _header_size(path, "mask PNG", "replace the file")


def _frame_size(path: Path) -> Tuple[int, int]:
    return _header_size(path, "frame", "replace the file or remove the video")


def find_vos_dirs(root: Path) -> Optional[Tuple[Path, Optional[Path]]]:
    """(frames dir, annotations dir or None) of a VOS folder, None when ``root`` is not one."""
    for fd in FRAME_DIRS:
        if (root / fd).is_dir():
            frames = root / fd
            anns = next((root / a for a in ANN_DIRS if (root / a).is_dir()), None)
            if (frames / "480p").is_dir():
                frames = frames / "480p"
                anns = anns / "480p" if anns is not None and (anns / "480p").is_dir() else anns
            return frames, anns
    return None


def _video_names(root: Path, frames_dir: Path) -> List[str]:
    listing = root / "ImageSets" / "2017" / "val.txt"
    if listing.is_file():
        names = []
        for lineno, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), 1):
            name = line.strip()
            if name and not (frames_dir / name).is_dir():
                raise _bad(f"{listing}:{lineno}", f"video {name!r} has no folder in {frames_dir}",
                           "fix the name or add its frames")
            if name:
                names.append(name)
        return names
    return sorted(p.name for p in frames_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _scan(name: str, frames_dir: Path, ann_dir: Path) -> VosVideo:
    vdir, adir = frames_dir / name, ann_dir / name
    if not adir.is_dir():
        raise _bad(adir, f"video {name!r} has no annotation folder", "add its mask PNGs or remove the video")
    try:
        frames = list_frame_folder(vdir)
    except SAM2Error:
        raise _bad(vdir, "has no JPEG/PNG frames", "add frames like 00000.jpg or remove the video") from None
    index = {p.stem: t for t, p in enumerate(frames)}
    obj_dirs = sorted((p for p in adir.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    by_frame: Dict[int, Union[Path, Dict[int, Path]]] = {}
    if obj_dirs:  # SA-V: one folder of binary PNGs per object
        for od in obj_dirs:
            if not od.name.isdigit():
                raise _bad(od, "object folder name is not a number", "name object folders 000, 001, ...")
            for png in sorted(od.glob("*.png")):
                if png.stem not in index:
                    raise _bad(png, f"mask has no frame {png.stem}.* in {vdir}", "add the frame or remove the mask")
                by_frame.setdefault(index[png.stem], {})[int(od.name)] = png  # type: ignore[index]
    else:
        for png in sorted(adir.glob("*.png")):
            if png.stem not in index:
                raise _bad(png, f"mask has no frame {png.stem}.* in {vdir}", "add the frame or remove the mask")
            by_frame[index[png.stem]] = png
    if not by_frame:
        raise _bad(adir, "has no mask PNGs", "name masks like their frames (00000.jpg -> 00000.png)")
    annotated = sorted(by_frame)
    return VosVideo(name, frames, annotated, [by_frame[t] for t in annotated])


def _check(video: VosVideo) -> None:
    """Sizes against the first frame (headers), then which objects appear where (contents)."""
    h, w = _frame_size(video.frames[0])
    video.size = (h, w)
    for t, src in zip(video.annotated, video.sources):
        for path in (src.values() if isinstance(src, dict) else [src]):
            mh, mw = _png_size(path)
            if (mh, mw) != (h, w):
                fh, fw = _frame_size(video.frames[t])
                if (mh, mw) != (fh, fw):
                    raise _bad(path, f"mask is {mw}x{mh} but its frame {video.frames[t].name} is {fw}x{fh}",
                               "save the mask at the frame's size")
                raise _bad(video.frames[t], f"frame is {fw}x{fh} but the video's first frame is {w}x{h}",
                           "give every frame of a video the same size")
    for k, t in enumerate(video.annotated):
        for oid in video.read_truth(k):
            video.first_seen.setdefault(oid, t)
    if not video.first_seen:
        raise _bad(video.sources[0] if not isinstance(video.sources[0], dict) else video.frames[0].parent,
                   f"video {video.name!r} has no annotated object on any frame",
                   "annotate at least one object or remove the video")
    video.obj_ids = sorted(video.first_seen)


def open_vos(data: Union[str, Path]) -> List[VosVideo]:
    """The checked videos of a DAVIS or SA-V folder (see the module docstring)."""
    root = Path(data).expanduser()
    dirs = find_vos_dirs(root)
    if dirs is None:
        raise _bad(root, "is not a video dataset (no JPEGImages/ folder)",
                   "give a DAVIS or SA-V folder: JPEGImages/<video>/ and Annotations/<video>/")
    frames_dir, ann_dir = dirs
    if ann_dir is None:
        raise _bad(root, "has no Annotations/ folder", "add Annotations/<video>/<frame>.png masks (DAVIS palette "
                   "PNGs, or one folder of binary PNGs per object as in SA-V)")
    names = _video_names(root, frames_dir)
    if not names:
        raise _bad(frames_dir, "has no video folders", "add JPEGImages/<video>/<frame>.jpg")
    videos = [_scan(n, frames_dir, ann_dir) for n in names]
    for v in videos:
        _check(v)
    return videos
