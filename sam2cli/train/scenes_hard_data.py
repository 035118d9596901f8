"""Clips of the hard tracking cases (:func:`hard_clip`) and their DAVIS writer
(:func:`write_hard_dataset`); the motion paths are :mod:`~sam2cli.train.scenes_hard`'s."""

from __future__ import annotations
import math
from pathlib import Path
from typing import Callable, Optional, Sequence, Union
import numpy as np
from .scenes_draw import SizeLike, _raster

from .scenes_hard import *  # noqa: F401,F403
from .scenes_hard import HARD_CASES  # noqa: F401


def hard_clip(rng: np.random.Generator, case: str, index: int, size: SizeLike = 128, n_frames: int = 48,
              long_frames: int = 160, copies: bool = False):
    """One clip of a hard case: :func:`~sam2cli.train.scenes_video.make_video`'s output.

    lookalike: 1-2 objects, one crossed (even ``index``) or passed (odd) by its look-alike around
    the middle; twin: an occlusion of 5-20 frames of object 0 ending beside its twin; fast: 1-2
    fast objects; same_class: 3 objects of one class; long: ``long_frames`` frames, a look-alike
    crossing in the first half and an occlusion ending beside a twin in the second. ``copies``:
    also the look-alikes' masks, as make_video gives them."""
    from .scenes_video import make_video

    T = int(long_frames if case == "long" else n_frames)
    if case == "lookalike":
        mode = "cross" if index % 2 == 0 else "pass"
        return make_video(rng, size, T, (1, 2), lookalike=mode, copies=copies)
    if case == "fast":
        return make_video(rng, size, T, (1, 2), fast=True, copies=copies)
    if case == "same_class":
        return make_video(rng, size, T, 3, same_class=True, copies=copies)
    if case in ("twin", "long"):
        length = int(rng.integers(5, min(20, T - 14) + 1))
        lo = T // 2 if case == "long" else 4
        start = int(rng.integers(lo, T - length - 8))
        return make_video(rng, size, T, (1, 2), occlude=(0, start, length), twin=True,
                          lookalike="cross" if case == "long" else None, copies=copies)
    raise ValueError(f"unknown hard case {case!r}: expected one of {', '.join(HARD_CASES)}")


def _write_video(root: Path, name: str, frames, masks: np.ndarray) -> None:
    """One clip as DAVIS does it (write_davis_dataset's layout): JPEGs and palette PNGs, pixel =
    object id 1..N in depth order, objects never visible dropped."""
    from PIL import Image

    from sam2cli.io.mask_pngs import davis_palette
    from .scenes import _imwrite

    masks = masks[:, masks.any(axis=(0, 2, 3))]
    jdir, adir = root / "JPEGImages" / name, root / "Annotations" / name
    jdir.mkdir(parents=True, exist_ok=True)
    adir.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        _imwrite(jdir / f"{t:05d}.jpg", frame, 95)
        lab = np.zeros(frame.shape[:2], np.uint8)
        for j in range(masks.shape[1]):
            lab[masks[t, j]] = j + 1
        im = Image.fromarray(lab, mode="P")
        im.putpalette(davis_palette())
        im.save(adir / f"{t:05d}.png")


def write_hard_dataset(root: Union[str, Path], cases: Sequence[str] = HARD_CASES, per_case: int = 2,
                       size: SizeLike = 128, seed: int = 0, n_frames: int = 48, long_frames: int = 160,
                       progress: Optional[Callable[[int, int], None]] = None) -> Path:
    """Write ``per_case`` clips of each case (:func:`hard_clip`) as a DAVIS 2017 folder, every
    video in ``ImageSets/2017/val.txt``: ``<case>NNN`` from the generator
    ``default_rng([seed, 3, case index in HARD_CASES, NNN])``. Returns ``root``."""
    root = Path(root)
    bad = [c for c in cases if c not in HARD_CASES]
    if bad:
        raise ValueError(f"unknown hard case(s) {bad}: expected {', '.join(HARD_CASES)}")
    names, total = [], len(cases) * per_case
    for c in cases:
        for i in range(per_case):
            rng = np.random.default_rng([int(seed), 3, HARD_CASES.index(c), i])
            frames, masks, _ = hard_clip(rng, c, i, size, n_frames, long_frames)
            names.append(f"{c}{i:03d}")
            _write_video(root, names[-1], frames, masks)
            if progress is not None:
                progress(len(names), total)
    sets = root / "ImageSets" / "2017"
    sets.mkdir(parents=True, exist_ok=True)
    (sets / "train.txt").write_text("")
    (sets / "val.txt").write_text("".join(f"{v}\n" for v in names))
    return root
