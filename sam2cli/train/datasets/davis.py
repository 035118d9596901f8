"""DAVIS video reader of `sam2 train` (``data=dir``) and the clips it draws.

**Layout**: ``JPEGImages/<video>/<frame>.jpg`` and ``Annotations/<video>/<frame>.png`` palette (or
8-bit grey) masks whose pixel value is the object id (0 background; every other value is an
object, 255 included). When ``JPEGImages/480p`` exists (DAVIS 2017's own layout),
``JPEGImages/480p`` and ``Annotations/480p`` are used. A video's frames are its frames that have
a mask PNG of the same stem, in :func:`list_frame_folder` order (numeric); frames without a mask
are skipped (sparse annotation such as SA-V's becomes a lower frame rate). Splits: the video
names in ``ImageSets/2017/<split>.txt`` when ``ImageSets/2017`` exists, else every video for
``train`` and a deterministic 20% for ``val``: every 5th video in sorted name order, starting at
the first (at least one).

**Clips** (:class:`VideoDataset`): ``ds[i]`` is ``clip_len`` consecutive (annotated) frames of
video ``i % n_videos`` whose first frame holds at least one object (starts whose first frame is
empty are never drawn: "resampled"), with up to ``max_objects`` of the objects of that first frame
(a random subset when there are more, then sorted by id). An object absent from a later frame
has an empty mask there. ``len(ds)`` is the number of videos, or ``samples`` when given.
The randomness of ``ds[i]`` comes from ``numpy.random.default_rng((seed, epoch, i))``: the same
``seed``, :meth:`VideoDataset.set_epoch` and ``i`` give the same clip in any process or worker
(``seed=None``: fresh entropy each call). A video with fewer annotated frames than ``clip_len``
is an error of :func:`~sam2cli.train.datasets.check_dataset`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.sources import list_frame_folder
from sam2cli.io.mask_pngs import read_palette_png

from .common import PathLike, VideoClip, _bad, _every_nth, _image_size, _load


@dataclass
class _Video:
    name: str
    frames: list  # frame paths that have a mask
    masks: list  # their mask PNG paths
    orphans: list  # mask PNGs without a frame


class VideoDataset:
    """DAVIS-layout videos; ``ds[i]`` -> a random :class:`VideoClip` of video ``i % n_videos``."""

    kind = "video"

    def __init__(self, root: PathLike, split: str = "train", clip_len: int = 8, max_objects: Optional[int] = 3,
                 seed: Optional[int] = 0, samples: Optional[int] = None) -> None:
        root = Path(root).expanduser()
        if clip_len < 1:
            raise UsageError(f"clip_len={clip_len} must be at least 1")
        if max_objects is not None and max_objects < 1:
            raise UsageError(f"max_objects={max_objects} must be at least 1")
        self.root, self.split = root, split
        self.clip_len, self.max_objects, self.seed = int(clip_len), max_objects, seed
        self.samples = samples
        self.epoch = 0
        jpeg, ann = root / "JPEGImages", root / "Annotations"
        if not jpeg.is_dir():
            raise _bad(root, "has no JPEGImages/ folder", "give a DAVIS folder: JPEGImages/<video>/<frame>.jpg")
        if (jpeg / "480p").is_dir():
            jpeg, ann = jpeg / "480p", ann / "480p"
        if not ann.is_dir():
            raise _bad(root, f"has no {ann.relative_to(root)}/ folder",
                       "add Annotations/<video>/<frame>.png palette masks")
        self.jpeg_dir, self.ann_dir = jpeg, ann
        self.names = self._split_videos(root, jpeg, split)
        self.videos = [self._list_video(v) for v in self.names]
        self._ids: dict[int, list[tuple[int, ...]]] = {}  # video index -> object ids per frame

    @staticmethod
    def _split_videos(root: Path, jpeg: Path, split: str) -> list[str]:
        sets = root / "ImageSets" / "2017"
        if sets.is_dir():
            txt = sets / f"{split}.txt"
            if not txt.is_file():
                raise _bad(txt, f"split file for '{split}' not found",
                           f"list the {split} videos in it, one per line, or remove ImageSets/2017")
            names = []
            for lineno, line in enumerate(txt.read_text(encoding="utf-8").splitlines(), 1):
                name = line.strip()
                if not name:
                    continue
                if not (jpeg / name).is_dir():
                    raise _bad(f"{txt}:{lineno}", f"video {name!r} has no folder {jpeg / name}",
                               "fix the name or add its frames")
                names.append(name)
            return names
        if split not in ("train", "val"):
            raise _bad(root, f"unknown split {split!r} without ImageSets/2017/{split}.txt",
                       "use split train or val, or add the split file")
        videos = sorted(p.name for p in jpeg.iterdir() if p.is_dir() and not p.name.startswith("."))
        return videos if split == "train" else _every_nth(videos)

    def _list_video(self, name: str) -> _Video:
        adir = self.ann_dir / name
        if not adir.is_dir():
            raise _bad(self.jpeg_dir / name, f"video {name!r} has no mask folder {adir}",
                       "add its mask PNGs or remove the video")
        try:
            frames = list_frame_folder(self.jpeg_dir / name)
        except SAM2Error:
            raise _bad(self.jpeg_dir / name, "has no JPEG/PNG frames", "add frames like 00000.jpg or remove the video") from None
        pngs = {p.stem: p for p in adir.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".")}
        keep_f, keep_m = [], []
        for f in frames:
            if f.stem in pngs:
                keep_f.append(f)
                keep_m.append(pngs.pop(f.stem))
        return _Video(name, keep_f, keep_m, sorted(pngs.values()))

    # -- masks

    def _read_mask(self, path: Path) -> np.ndarray:
        try:
            return read_palette_png(path)
        except FileNotFoundError:
            raise _bad(path, "mask PNG not found", "restore it") from None
        except SAM2Error:
            raise _bad(path, "is not a palette (or 8-bit grey) mask PNG", "save masks with pixel value = object id") from None
        except Exception:
            raise _bad(path, "cannot read the mask PNG", "replace the file") from None

    def frame_ids(self, v: int) -> list[tuple[int, ...]]:
        """Object ids present on each (annotated) frame of video ``v`` (read once, then cached)."""
        if v not in self._ids:
            self._ids[v] = [tuple(int(x) for x in np.unique(self._read_mask(p)) if x != 0) for p in self.videos[v].masks]
        return self._ids[v]

    def set_epoch(self, epoch: int) -> None:
        """Change the clips drawn (with a seed, ``ds[i]`` depends on seed, epoch and i only)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.videos) if self.samples is None else int(self.samples)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def _rng(self, i: int) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng((int(self.seed) & 0xFFFFFFFF, self.epoch, int(i)))

    def _clip(self, v: int, start: int, length: int, obj_ids: Sequence[int]) -> VideoClip:
        vid = self.videos[v]
        frames, masks = [], []
        ids = np.asarray(obj_ids, dtype=np.int64)
        for t in range(start, start + length):
            img = _load(vid.frames[t])
            lab = self._read_mask(vid.masks[t])
            if lab.shape != img.shape[:2]:
                raise _bad(vid.masks[t], f"mask is {lab.shape[1]}x{lab.shape[0]} but its frame {vid.frames[t].name} "
                           f"is {img.shape[1]}x{img.shape[0]}", "save the mask at the frame's size")
            frames.append(img)
            masks.append(lab[None] == ids[:, None, None])
        h, w = frames[0].shape[:2]
        m = np.stack(masks) if masks else np.zeros((0, len(ids), h, w), dtype=bool)
        return VideoClip(frames=frames, masks=m, obj_ids=ids, video=vid.name,
                         frame_files=[str(p) for p in vid.frames[start:start + length]])

    def __getitem__(self, i: int) -> VideoClip:
        if not self.videos:
            raise IndexError("the dataset has no videos")
        if i < 0:  # any i >= 0 is a sample (video i % n_videos), for samplers that draw past len(ds)
            i += len(self)
            if i < 0:
                raise IndexError(f"sample {i - len(self)} out of range for {len(self)} samples")
        v = i % len(self.videos)
        vid = self.videos[v]
        ids = self.frame_ids(v)
        last = len(vid.frames) - self.clip_len
        starts = [t for t in range(last + 1) if ids[t]] if last >= 0 else []
        if not starts:
            raise _bad(self.ann_dir / vid.name, f"no clip of {self.clip_len} frames starts on a frame with an object "
                       f"({len(vid.frames)} annotated frames)", "lower clip_len= or remove the video")
        rng = self._rng(i)
        start = starts[int(rng.integers(len(starts)))]
        present = list(ids[start])
        if self.max_objects is not None and len(present) > self.max_objects:
            present = sorted(int(x) for x in rng.choice(present, size=self.max_objects, replace=False))
        return self._clip(v, start, self.clip_len, present)

    def full_video(self, v: int) -> VideoClip:
        """Every annotated frame of video ``v`` with every object that appears in it (for evaluation)."""
        ids = sorted({x for f in self.frame_ids(v) for x in f})
        return self._clip(v, 0, len(self.videos[v].frames), ids)

    def check(self) -> None:
        if not self.videos:
            raise _bad(self.root, f"the {self.split} split has no videos", "add JPEGImages/<video>/ folders")
        n_obj = 0
        for v, vid in enumerate(self.videos):
            if vid.orphans:
                p = vid.orphans[0]
                raise _bad(p, f"mask has no frame {p.stem}.* in {self.jpeg_dir / vid.name}",
                           "add the frame or remove the mask")
            if not vid.frames:
                raise _bad(self.ann_dir / vid.name, "no frame has a mask PNG of the same name",
                           "name masks like their frames (00000.jpg -> 00000.png)")
            for f, m in zip(vid.frames, vid.masks):
                fh, fw = _image_size(f)
                with _open_png(m) as img:
                    mw, mh = img.size
                    if img.mode not in ("P", "L"):
                        raise _bad(m, f"mask PNG has mode {img.mode}, not a palette or 8-bit grey image",
                                   "save masks with pixel value = object id")
                if (mh, mw) != (fh, fw):
                    raise _bad(m, f"mask is {mw}x{mh} but its frame {f.name} is {fw}x{fh}",
                               "save the mask at the frame's size")
            ids = self.frame_ids(v)
            n_obj += sum(1 for f in ids if f)
            if len(vid.frames) < self.clip_len:
                raise _bad(self.ann_dir / vid.name, f"has {len(vid.frames)} annotated frames, fewer than "
                           f"clip_len={self.clip_len}", "lower clip_len= or remove the video")
            if not any(ids[: len(vid.frames) - self.clip_len + 1]):
                raise _bad(self.ann_dir / vid.name, f"no clip of {self.clip_len} frames starts on a frame with an object",
                           "lower clip_len= or remove the video")
        if n_obj == 0:  # pragma: no cover - caught per video above
            raise _bad(self.root, f"no labelled object in the {self.split} split", "add object masks")

    def __repr__(self) -> str:
        return f"VideoDataset({self.root}, split={self.split!r}, {len(self.videos)} videos, clip_len={self.clip_len})"


def _open_png(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise _bad(path, "mask PNG not found", "restore it") from None
    except Exception:
        raise _bad(path, "cannot read the mask PNG", "replace the file") from None
