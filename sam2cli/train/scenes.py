"""Procedural scenes for the demo model: images and videos with exact visible-mask ground truth.

Everything is drawn from a :class:`numpy.random.Generator`, so a seed gives the same pixels
and masks on every machine.

* :func:`make_image` -- a textured background (gradient, low-frequency noise, stripes, checker,
  blobs, grain) with 2-6 objects of :data:`KINDS` shapes, each with a fill (flat, two-tone
  gradient, stripes, checker, noise texture). Later objects lie on top; the returned masks are
  the **visible** parts (disjoint). A placement that would bury an earlier object below
  ``min_visible`` of the image area is retried, and an object that itself ends up below it is
  left in the picture as unlabelled clutter. Colours are chosen to stand out from what
  surrounds the object. Mild blur and sensor noise finish the image.
* :func:`make_video` -- the same objects moving with smooth random headings and speeds, slight
  rotation and scale change, some crossing the frame (entering or leaving), a fixed depth order
  (so crossings occlude), camera pan/zoom over a larger world background, per-frame noise, and
  optionally a forced full occlusion of one object by a foreground bar (``occlude=``).
* :func:`write_yolo_dataset` / :func:`write_davis_dataset` -- the two training layouts that
  ``sam2 train`` reads (Ultralytics segmentation, DAVIS 2017).

Layout: the drawing (colours, textures, shapes and fills) is in :mod:`~sam2cli.train.scenes_draw`,
the videos in :mod:`~sam2cli.train.scenes_video`; this module has the images, the dataset writers
and the public names.

Coordinates: pixel ``(x, y)`` has its centre at integer ``(x, y)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import cv2
import numpy as np

from .scenes_draw import (
    _MIN_SIZE,
    CONTRAST,  # noqa: F401  (re-exported: it was defined here)
    FILLS,
    KINDS,
    SizeLike,
    _background,
    _fill,
    _finish,
    _hw,
    _new_object,
    _pick_colors,
    _range,
    _raster,
)
from .scenes_video import make_video

__all__ = [
    "KINDS", "FILLS", "make_image", "make_video", "write_yolo_dataset", "write_davis_dataset",
    "item_rng",
]

SIZE_RANGE = (0.05, 0.40)  # object extent as a fraction of the image side (images)
_SPLIT_CODE = {"train": 0, "val": 1}

Progress = Optional[Callable[[int, int], None]]


def item_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator for item ``index`` of a split: independent of how many items are made."""
    return np.random.default_rng([int(seed), _SPLIT_CODE.get(split, 2), int(index)])


# ---------------------------------------------------------------------------- images


def make_image(
    rng: np.random.Generator,
    size: SizeLike = (128, 128),
    n_objects: Union[int, Sequence[int]] = (2, 6),
    min_visible: float = 0.0025,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scene: ``(image (H, W, 3) uint8 RGB, masks (N, H, W) bool, classes (N,) int64)``.

    ``masks`` are the visible parts, in depth order (later on top), pairwise disjoint, each at
    least ``min_visible`` of the image area. ``classes[i]`` indexes :data:`KINDS`. N is within
    ``n_objects`` (inclusive) except in pathological cases where placement keeps failing.
    """
    H, W = _hw(size)
    side = min(H, W)
    lo, hi = _range(n_objects)
    n_target = int(rng.integers(lo, hi + 1))
    min_px = max(8, int(round(min_visible * H * W)))
    canvas = _background(rng, H, W, side)
    label = np.full((H, W), -1, np.int32)
    vis: list[int] = []  # visible pixels of each painted object
    labelled: list[int] = []
    classes: list[int] = []
    attempts, max_attempts = 0, 4 * max(hi, 1) + 10
    ring_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    while len(labelled) < n_target and attempts < max_attempts:
        attempts += 1
        kind_id = int(rng.integers(len(KINDS)))
        kind = KINDS[kind_id]
        frac = rng.uniform(max(SIZE_RANGE[0], _MIN_SIZE.get(kind, 0.0)), SIZE_RANGE[1])
        R = frac * side / 2.0
        obj = _new_object(rng, kind_id, R)
        cx, cy = rng.uniform(0, W - 1), rng.uniform(0, H - 1)
        r = _raster(obj, cx, cy, R, obj["angle"], H, W, pad=3)
        if r is None:
            continue
        (y0, y1, x0, x1), m, u, v = r
        area = int(m.sum())
        if area == 0:
            continue
        lab = label[y0:y1, x0:x1]
        covered = np.bincount(lab[m] + 1, minlength=len(vis) + 1)[1:]
        if any(vis[j] - covered[j] < min_px for j in labelled if covered[j]):
            continue  # would bury a labelled object: try another placement
        keep = area >= min_px
        if not keep and rng.random() < 0.5:
            continue  # small ones become unlabelled clutter half of the time
        crop = canvas[y0:y1, x0:x1]
        ring = cv2.dilate(m.astype(np.uint8), ring_k).astype(bool) & ~m
        _pick_colors(rng, obj, crop[ring])
        tex = _fill(obj, u, v)
        crop[m] = tex[m]
        lab[m] = len(vis)
        for j in range(len(vis)):
            vis[j] -= int(covered[j])
        vis.append(area)
        if keep:
            labelled.append(len(vis) - 1)
            classes.append(kind_id)
    img = _finish(rng, canvas, rng.uniform(0.3, 0.9) if rng.random() < 0.7 else 0.0, rng.uniform(0.5, 6.0))
    masks = np.stack([label == j for j in labelled]) if labelled else np.zeros((0, H, W), bool)
    return img, masks, np.asarray(classes, dtype=np.int64)



# ---------------------------------------------------------------------------- datasets


def _imwrite(path: Path, rgb: np.ndarray, quality: int = 95) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(path.suffix, np.ascontiguousarray(rgb[..., ::-1]), params)
    if not ok:  # pragma: no cover
        raise OSError(f"cannot encode {path}")
    path.write_bytes(buf.tobytes())


def write_yolo_dataset(
    root: Union[str, Path],
    n_train: int,
    n_val: int,
    size: SizeLike = 128,
    seed: int = 0,
    n_objects: Union[int, Sequence[int]] = (2, 6),
    ext: str = ".png",
    progress: Progress = None,
) -> Path:
    """Write an Ultralytics segmentation dataset of :func:`make_image` scenes; returns data.yaml.

    ``root/images/{train,val}/NNNNNN.png``, ``root/labels/{train,val}/NNNNNN.txt`` with one
    ``class x1 y1 x2 y2 ...`` line (normalised) per object: the largest external contour of
    its visible mask (objects whose polygon has < 3 points are skipped), and ``root/data.yaml``
    with ``path`` (absolute), ``train``, ``val`` and ``names`` (:data:`KINDS`). Image ``i`` of
    a split comes from :func:`item_rng` ``(seed, split, i)``.
    """
    import yaml

    from sam2cli.io.yolo_labels import yolo_seg_lines

    root = Path(root)
    total, done = n_train + n_val, 0
    for split, count in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            img, masks, classes = make_image(item_rng(seed, split, i), size, n_objects)
            _imwrite(root / "images" / split / f"{i:06d}{ext}", img)
            lines = yolo_seg_lines(masks, classes)
            (root / "labels" / split / f"{i:06d}.txt").write_text("".join(f"{ln}\n" for ln in lines))
            done += 1
            if progress is not None:
                progress(done, total)
    data = {"path": str(root.resolve()), "train": "images/train", "val": "images/val",
            "names": {i: k for i, k in enumerate(KINDS)}}
    path = root / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_davis_dataset(
    root: Union[str, Path],
    n_videos: int,
    n_frames: int = 24,
    size: SizeLike = 128,
    seed: int = 0,
    n_val: Optional[int] = None,
    n_objects: Union[int, Sequence[int]] = (1, 4),
    p_occlude: float = 0.5,
    progress: Progress = None,
) -> Path:
    """Write videos of :func:`make_video` in the DAVIS 2017 layout; returns ``root``.

    ``JPEGImages/<video>/00000.jpg ...``, ``Annotations/<video>/00000.png ...`` (DAVIS-palette
    PNGs, pixel = object id 1..N, 0 background; objects never visible are dropped and the rest
    renumbered in depth order), ``ImageSets/2017/train.txt`` and ``val.txt``: the last ``n_val``
    videos (default 10%, at least 1 when there are 2 or more) are the validation split. Video
    ``i`` is ``scene{i:05d}`` from :func:`item_rng` ``(seed, split, i)``; about ``p_occlude``
    of them contain a full occlusion.
    """
    from PIL import Image

    from sam2cli.io.mask_pngs import davis_palette

    root = Path(root)
    if n_val is None:
        n_val = int(round(0.1 * n_videos)) if n_videos >= 10 else (1 if n_videos >= 2 else 0)
    n_val = min(n_val, n_videos)
    palette = davis_palette()
    names = {"train": [], "val": []}
    for i in range(n_videos):
        split = "val" if i >= n_videos - n_val else "train"
        name = f"scene{i:05d}"
        frames, masks, _ = make_video(item_rng(seed, split, i), size, n_frames, n_objects, p_occlude=p_occlude)
        present = masks.any(axis=(0, 2, 3))
        masks = masks[:, present]
        jdir, adir = root / "JPEGImages" / name, root / "Annotations" / name
        jdir.mkdir(parents=True, exist_ok=True)
        adir.mkdir(parents=True, exist_ok=True)
        for t, frame in enumerate(frames):
            _imwrite(jdir / f"{t:05d}.jpg", frame, 95)
            lab = np.zeros(frame.shape[:2], np.uint8)
            for j in range(masks.shape[1]):
                lab[masks[t, j]] = j + 1
            im = Image.fromarray(lab, mode="P")
            im.putpalette(palette)
            im.save(adir / f"{t:05d}.png")
        names[split].append(name)
        if progress is not None:
            progress(i + 1, n_videos)
    sets = root / "ImageSets" / "2017"
    sets.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        (sets / f"{split}.txt").write_text("".join(f"{v}\n" for v in names[split]))
    return root
