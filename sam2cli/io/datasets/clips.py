"""Training clips of `sam2 train` (``data=dir``), cut from the videos `sam2 val` reads (:mod:`.vos`).

**Layout**: a DAVIS or SA-V folder as :mod:`.vos` reads it (one ``480p`` detection, one void
rule: 0 and 255 are no object, see :mod:`.davis`). A video's frames for training are its
*annotated* frames, in :func:`~sam2cli.io.sources.list_frame_folder` order: frames without a mask
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
is an error of :func:`~sam2cli.io.datasets.check_dataset`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from sam2cli.errors import UsageError

from .common import PathLike, VideoClip, _bad, _every_nth, _load
from .davis import all_videos, listed_videos, png_size
from .vos import VosVideo, check_video, list_video, vos_dirs


def split_videos(root: Path, frames_dir: Path, split: str) -> List[str]:
    """The videos of ``split`` for training (see the module docstring)."""
    names = listed_videos(root, frames_dir, split)
    if names is not None:
        return names
    sets = root / "ImageSets" / "2017"
    if sets.is_dir():
        raise _bad(sets / f"{split}.txt", f"split file for '{split}' not found",
                   f"list the {split} videos in it, one per line, or remove ImageSets/2017")
    if split not in ("train", "val"):
        raise _bad(root, f"unknown split {split!r} without ImageSets/2017/{split}.txt",
                   "use split train or val, or add the split file")
    videos = all_videos(frames_dir)
    return videos if split == "train" else _every_nth(videos)


class VideoDataset:
    """DAVIS / SA-V videos; ``ds[i]`` -> a random :class:`VideoClip` of video ``i % n_videos``."""

    kind = "video"

    def __init__(self, root: PathLike, split: str = "train", *, clip_len: int = 8, max_objects: Optional[int] = 3,
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
        self.jpeg_dir, self.ann_dir = vos_dirs(root)
        self.names = split_videos(root, self.jpeg_dir, split)
        self.videos: List[VosVideo] = [list_video(n, self.jpeg_dir, self.ann_dir) for n in self.names]

    def frame_ids(self, v: int) -> List[Tuple[int, ...]]:
        """Object ids present on each annotated frame of video ``v`` (read once, then cached)."""
        return self.videos[v].ids_on_frames()

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
        """Annotated frames ``start .. start + length - 1`` of video ``v`` with objects ``obj_ids``:
        masks (T, N, H, W) bool."""
        vid = self.videos[v]
        ids = np.asarray(obj_ids, dtype=np.int64)
        files = [vid.frames[t] for t in vid.annotated[start:start + length]]
        frames, masks = [], []
        for k, path in zip(range(start, start + length), files):
            img = _load(path)
            _same_size(vid.sources[k], path, img.shape[:2])
            truth = vid.read_truth(k)
            empty = np.zeros(img.shape[:2], bool)
            frames.append(img)
            masks.append(np.stack([truth.get(int(i), empty) for i in ids]) if len(ids) else
                         np.zeros((0, *img.shape[:2]), bool))
        h, w = frames[0].shape[:2] if frames else (0, 0)
        m = np.stack(masks) if masks else np.zeros((0, len(ids), h, w), dtype=bool)
        return VideoClip(frames=frames, masks=m, obj_ids=ids, video=vid.name, frame_files=[str(p) for p in files])

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
        last = len(vid.annotated) - self.clip_len
        starts = [t for t in range(last + 1) if ids[t]] if last >= 0 else []
        if not starts:
            raise _bad(self.ann_dir / vid.name, f"no clip of {self.clip_len} frames starts on a frame with an object "
                       f"({len(vid.annotated)} annotated frames)", "lower clip_len= or remove the video")
        rng = self._rng(i)
        start = starts[int(rng.integers(len(starts)))]
        present = list(ids[start])
        if self.max_objects is not None and len(present) > self.max_objects:
            present = sorted(int(x) for x in rng.choice(present, size=self.max_objects, replace=False))
        return self._clip(v, start, self.clip_len, present)

    def full_video(self, v: int) -> VideoClip:
        """Every annotated frame of video ``v`` with every object that appears in it (for evaluation)."""
        ids = sorted({x for f in self.frame_ids(v) for x in f})
        return self._clip(v, 0, len(self.videos[v].annotated), ids)

    def check(self) -> None:
        """`sam2 val`'s checks of every video (:func:`~.vos.check_video`), then that a clip fits."""
        if not self.videos:
            raise _bad(self.root, f"the {self.split} split has no videos", "add JPEGImages/<video>/ folders")
        for v, vid in enumerate(self.videos):
            check_video(vid)
            n = len(vid.annotated)
            if n < self.clip_len:
                raise _bad(self.ann_dir / vid.name, f"has {n} annotated frames, fewer than "
                           f"clip_len={self.clip_len}", "lower clip_len= or remove the video")
            if not any(self.frame_ids(v)[: n - self.clip_len + 1]):
                raise _bad(self.ann_dir / vid.name, f"no clip of {self.clip_len} frames starts on a frame with an object",
                           "lower clip_len= or remove the video")

    def __repr__(self) -> str:
        return f"VideoDataset({self.root}, split={self.split!r}, {len(self.videos)} videos, clip_len={self.clip_len})"


def _same_size(source, frame: Path, hw: Tuple[int, int]) -> None:
    """UsageError when a mask PNG of ``source`` is not at its frame's (H, W) ``hw``."""
    for path in (source.values() if isinstance(source, dict) else [source]):
        mh, mw = png_size(path)
        if (mh, mw) != tuple(hw):
            raise _bad(path, f"mask is {mw}x{mh} but its frame {frame.name} is {hw[1]}x{hw[0]}",
                       "save the mask at the frame's size")
