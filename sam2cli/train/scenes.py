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

Coordinates: pixel ``(x, y)`` has its centre at integer ``(x, y)``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import cv2
import numpy as np

__all__ = [
    "KINDS", "FILLS", "make_image", "make_video", "write_yolo_dataset", "write_davis_dataset",
    "item_rng",
]

KINDS = ("circle", "ellipse", "rectangle", "rotated_rectangle", "triangle", "polygon", "star", "ring",
         "blob")
"""Shape kinds; the class id of an object is its index here."""

FILLS = ("flat", "gradient", "stripes", "checker", "noise")

SIZE_RANGE = (0.05, 0.40)  # object extent as a fraction of the image side (images)
_MIN_SIZE = {"ring": 0.12, "star": 0.10, "triangle": 0.07}  # thin parts need some pixels
CONTRAST = 45.0  # minimum RGB distance between an object's colours and its surroundings
_SPLIT_CODE = {"train": 0, "val": 1}

SizeLike = Union[int, Sequence[int]]
Progress = Optional[Callable[[int, int], None]]


def _hw(size: SizeLike) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = (int(v) for v in size)
    return h, w


def _range(n: Union[int, Sequence[int]]) -> tuple[int, int]:
    if isinstance(n, (int, np.integer)):
        return int(n), int(n)
    lo, hi = (int(v) for v in n)
    if lo > hi or lo < 0:
        raise ValueError(f"bad object-count range {n!r}")
    return lo, hi


def item_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator for item ``index`` of a split: independent of how many items are made."""
    return np.random.default_rng([int(seed), _SPLIT_CODE.get(split, 2), int(index)])


# ---------------------------------------------------------------------------- colours and noise


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV (all in [0, 1]) -> (N, 3) float32 RGB in [0, 255]."""
    i = np.floor(h * 6.0).astype(np.int64) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return (np.stack([r, g, b], -1) * 255.0).astype(np.float32)


def _rand_colors(rng: np.random.Generator, n: int) -> np.ndarray:
    h = rng.random(n)
    s = rng.random(n) ** 0.6
    s = np.where(rng.random(n) < 0.12, s * 0.15, s)  # some greys
    v = rng.uniform(0.08, 1.0, n)
    return _hsv_to_rgb(h, s, v)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Value noise in [0, 1]: a random grid with ``cell``-pixel spacing, cubic-upsampled."""
    cell = max(float(cell), 1.5)
    gh, gw = int(math.ceil(h / cell)) + 3, int(math.ceil(w / cell)) + 3
    grid = rng.random((gh, gw)).astype(np.float32)
    big = cv2.resize(grid, (int(round(gw * cell)), int(round(gh * cell))), interpolation=cv2.INTER_CUBIC)
    oy, ox = int(cell), int(cell)
    out = big[oy:oy + h, ox:ox + w]
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _pattern(rng: np.random.Generator, h: int, w: int, side: int, kind: str) -> np.ndarray:
    """An (h, w) float32 pattern in [0, 1] at a random scale and orientation."""
    period = rng.uniform(0.04, 0.4) * side
    a = rng.uniform(0, math.pi)
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    u = xx * math.cos(a) + yy * math.sin(a)
    if kind == "stripes":
        s = np.sin(u * (2 * math.pi / period) + rng.uniform(0, 2 * math.pi))
        return (s > rng.uniform(-0.5, 0.5)).astype(np.float32) if rng.random() < 0.6 else 0.5 + 0.5 * s
    if kind == "checker":
        v = -xx * math.sin(a) + yy * math.cos(a)
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    if kind == "blobs":
        n = _smooth_noise(rng, h, w, period)
        m = (n > rng.uniform(0.35, 0.65)).astype(np.float32)
        return cv2.GaussianBlur(m, (0, 0), 0.8)
    return _smooth_noise(rng, h, w, period)  # "noise"


def _background(rng: np.random.Generator, h: int, w: int, side: int) -> np.ndarray:
    """(h, w, 3) float32 textured background."""
    c = _rand_colors(rng, 2)
    a = rng.uniform(0, 2 * math.pi)
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    proj = xx * math.cos(a) + yy * math.sin(a)
    t = (proj - proj.min()) / max(float(proj.max() - proj.min()), 1e-6)
    bg = c[0] + t[..., None] * (c[1] - c[0])
    n_layers = int(rng.choice([0, 1, 1, 2, 2, 3]))
    for _ in range(n_layers):
        kind = str(rng.choice(["stripes", "checker", "blobs", "noise"]))
        m = _pattern(rng, h, w, side, kind)
        col = _rand_colors(rng, 1)[0]
        alpha = rng.uniform(0.25, 0.9)
        bg = bg + (alpha * m)[..., None] * (col - bg)
    grain = rng.uniform(0, 10)
    if grain > 1:
        bg = bg + rng.standard_normal((h, w, 1), dtype=np.float32) * grain
    return bg.astype(np.float32)


def _finish(rng: np.random.Generator, img: np.ndarray, blur: float, noise: float) -> np.ndarray:
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    if noise > 0:
        img = img + rng.standard_normal(img.shape, dtype=np.float32) * noise
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------- objects


def _aa(d: np.ndarray, k: float) -> np.ndarray:
    """Anti-aliased coverage from a signed distance ``d`` (unit space, >0 inside), ``k`` px/unit."""
    return np.clip(d * k + 0.5, 0.0, 1.0)


def _template(rng: np.random.Generator, kind: str, S: int) -> tuple[np.ndarray, float]:
    """(S, S) float32 alpha of a shape in unit space [-1, 1]^2, and its default angle."""
    k = S / 2.0
    g = (np.arange(S, dtype=np.float32) + 0.5) / k - 1.0
    u, v = g[None, :], g[:, None]
    angle = rng.uniform(0, 2 * math.pi)
    if kind == "circle":
        return _aa(1.0 - np.sqrt(u * u + v * v), k), angle
    if kind == "ellipse":
        ar = rng.uniform(0.35, 0.8)
        r = np.sqrt(u * u + (v / ar) ** 2)
        return _aa((1.0 - r) * ar, k), angle
    if kind == "ring":
        ar = rng.uniform(0.75, 1.0)
        inner = rng.uniform(0.45, 0.72)
        r = np.sqrt(u * u + (v / ar) ** 2)
        return np.minimum(_aa((1.0 - r) * ar, k), _aa((r - inner) * ar, k)), angle
    if kind in ("rectangle", "rotated_rectangle"):
        ar = rng.uniform(0.3, 1.0) if kind == "rectangle" else rng.uniform(0.25, 0.85)
        d = np.minimum(1.0 - np.abs(u), ar - np.abs(v))
        if kind == "rectangle":
            angle = float(rng.choice([0.0, math.pi / 2]))
        else:
            angle = rng.uniform(math.radians(12), math.radians(78)) + rng.integers(4) * math.pi / 2
        return _aa(d, k), angle
    if kind == "blob":
        n = _smooth_noise(rng, S, S, S / rng.uniform(3.0, 6.0))
        f = 0.55 * n + 0.6 * (1.0 - (u * u + v * v)) - 0.45
        m = (f > 0).astype(np.uint8)
        m[[0, -1], :] = 0
        m[:, [0, -1]] = 0
        cnts, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        out = np.zeros((S, S), np.uint8)
        if cnts:
            best = max(cnts, key=cv2.contourArea)
            cv2.drawContours(out, [best], -1, 255, -1, lineType=cv2.LINE_AA)
        if not cnts or out.sum() < 0.1 * 255 * S * S:  # degenerate: fall back to a disc
            return _aa(1.0 - np.sqrt(u * u + v * v), k), angle
        return cv2.GaussianBlur(out.astype(np.float32) / 255.0, (0, 0), max(0.6, S / 160)), angle
    # polygons
    if kind == "triangle":
        n = 3
        ang = np.arange(n) * (2 * math.pi / n) + rng.uniform(-0.35, 0.35, n)
        rad = rng.uniform(0.75, 1.0, n)
    elif kind == "polygon":
        n = int(rng.integers(5, 9))
        ang = np.arange(n) * (2 * math.pi / n) + rng.uniform(-0.3, 0.3, n) * (2 * math.pi / n)
        rad = rng.uniform(0.65, 1.0, n)
    else:  # star
        n = int(rng.integers(4, 8))
        inner = rng.uniform(0.38, 0.6)
        ang = np.arange(2 * n) * (math.pi / n)
        rad = np.where(np.arange(2 * n) % 2 == 0, 1.0, inner) * rng.uniform(0.9, 1.0, 2 * n)
        n = 2 * n
    pts = np.stack([np.cos(ang) * rad, np.sin(ang) * rad], -1)
    pts = (pts * 0.985 + 1.0) * k - 0.5  # unit -> template pixel coordinates
    img = np.zeros((S, S), np.uint8)
    cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    return img.astype(np.float32) / 255.0, angle


def _new_object(rng: np.random.Generator, kind_id: int, max_radius_px: float) -> dict:
    kind = KINDS[kind_id]
    S = int(np.clip(math.ceil(2.5 * max_radius_px / 2) * 2, 32, 512))
    tpl, angle = _template(rng, kind, S)
    fill = str(rng.choice(FILLS, p=[0.3, 0.2, 0.17, 0.13, 0.2]))
    obj = {"kind": kind, "cls": kind_id, "tpl": tpl, "S": S, "angle": angle, "fill": fill,
           "fa": rng.uniform(0, 2 * math.pi), "freq": rng.uniform(1.2, 4.0), "phase": rng.uniform(0, 2 * math.pi),
           "soft": bool(rng.random() < 0.4)}
    if fill == "noise":
        obj["ntex"] = _smooth_noise(rng, 48, 48, 48 / rng.uniform(2.0, 6.0))
    return obj


def _raster(obj: dict, cx: float, cy: float, R: float, ang: float, H: int, W: int, pad: int = 0):
    """Rasterise an object at centre (cx, cy), radius R px, angle ``ang``.

    Returns ``((y0, y1, x0, x1), mask, u, v)`` with the object's unit-space coordinates of the
    box pixels, or None when the box is off the image.
    """
    ext = R * math.sqrt(2.0) + 1.0 + pad
    x0, x1 = max(int(math.floor(cx - ext)), 0), min(int(math.ceil(cx + ext)) + 1, W)
    y0, y1 = max(int(math.floor(cy - ext)), 0), min(int(math.ceil(cy + ext)) + 1, H)
    if x0 >= x1 or y0 >= y1:
        return None
    dx = (np.arange(x0, x1, dtype=np.float32) - np.float32(cx))[None, :]
    dy = (np.arange(y0, y1, dtype=np.float32) - np.float32(cy))[:, None]
    c, s, inv = np.float32(math.cos(ang)), np.float32(math.sin(ang)), np.float32(1.0 / max(R, 1e-3))
    u = (c * dx + s * dy) * inv
    v = (c * dy - s * dx) * inv
    k = obj["S"] / 2.0
    a = cv2.remap(obj["tpl"], u * np.float32(k) + np.float32(k - 0.5), v * np.float32(k) + np.float32(k - 0.5),
                  cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return (y0, y1, x0, x1), a > 0.5, u, v


def _fill(obj: dict, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(h, w, 3) float32 texture of the object at unit-space coordinates (u, v)."""
    c1, c2 = obj["c1"], obj["c2"]
    f = obj["fill"]
    if f == "flat":
        return np.broadcast_to(c1, u.shape + (3,))
    ca, sa = math.cos(obj["fa"]), math.sin(obj["fa"])
    p = u * np.float32(ca) + v * np.float32(sa)
    if f == "gradient":
        t = np.clip(p * 0.5 + 0.5, 0, 1)
    elif f == "stripes":
        s = np.sin(p * np.float32(obj["freq"] * math.pi) + np.float32(obj["phase"]))
        t = 0.5 + 0.5 * s if obj["soft"] else (s > 0).astype(np.float32)
    elif f == "checker":
        q = v * np.float32(ca) - u * np.float32(sa)
        fr = obj["freq"] * 0.8
        t = ((np.floor(p * fr + obj["phase"]) + np.floor(q * fr)) % 2).astype(np.float32)
    else:  # noise
        n = obj["ntex"]
        t = cv2.remap(n, (u + 1.0) * 24.0 - 0.5, (v + 1.0) * 24.0 - 0.5, cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REFLECT)
    return c1 + t[..., None] * (c2 - c1)


def _pick_colors(rng: np.random.Generator, obj: dict, ref: np.ndarray, others: Sequence[np.ndarray] = (),
                 q: float = 20.0, K: int = 12) -> bool:
    """Choose the object's two tones: far from the reference pixels ``ref`` and from ``others``.

    Takes the first of K candidates for which at most ``q`` percent of ``ref`` lie within
    :data:`CONTRAST` (RGB distance) of either tone and both tones are that far from every colour
    in ``others``; else the least bad. Returns whether the constraint was met.
    """
    c1 = _rand_colors(rng, K)
    d = rng.standard_normal((K, 3)).astype(np.float32)
    d *= (rng.uniform(25, 75, K) / np.maximum(np.linalg.norm(d, axis=1), 1e-6)).astype(np.float32)[:, None]
    c2 = c1 if obj["fill"] == "flat" else np.clip(c1 + d, 0, 255)
    bad = np.zeros(K, np.float32)  # fraction of reference pixels too close to a tone
    far = np.full(K, 1e9, np.float32)  # distance to the nearest other object's tone
    if len(ref):
        if len(ref) > 256:
            ref = ref[:: int(math.ceil(len(ref) / 256))]
        for c in (c1, c2):
            d2 = ((ref[None, :, :] - c[:, None, :]) ** 2).sum(axis=2)
            bad = np.maximum(bad, (d2 < CONTRAST ** 2).mean(axis=1))
    for o in others:
        for c in (c1, c2):
            far = np.minimum(far, np.sqrt(((c - o[None]) ** 2).sum(axis=1)))
    ok = (bad <= q / 100.0) & (far >= CONTRAST)
    good = np.nonzero(ok)[0]
    i = int(good[0]) if len(good) else int(np.argmin(bad - np.minimum(far, CONTRAST) / CONTRAST))
    obj["c1"], obj["c2"] = c1[i].astype(np.float32), c2[i].astype(np.float32)
    return bool(ok[i])


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


# ---------------------------------------------------------------------------- videos


def _walk(rng: np.random.Generator, T: int, dims: int, sigma: float, damp: float = 0.85) -> np.ndarray:
    """A smooth random walk (T, dims): position of a damped random-velocity process, from 0."""
    vel = np.zeros(dims)
    pos = np.zeros((T, dims))
    for t in range(1, T):
        vel = damp * vel + rng.normal(0, sigma, dims)
        pos[t] = pos[t - 1] + vel
    return pos


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def _simulate(rng, T, H, W, n, p_cross, cam, zoom, stay_idx):
    """Object tracks in world coordinates: centres (T, n, 2), and per-object flags."""
    side = min(H, W)
    ctr = np.array([W / 2.0, H / 2.0])
    margin = 0.15 * side
    if n == 0:
        return np.zeros((T, 0, 2)), np.zeros(0, bool)
    cross = rng.random(n) < p_cross
    if stay_idx is not None:
        cross[stay_idx] = False
    anchor = int(stay_idx) if stay_idx is not None else int(rng.integers(n))
    start_inside = (rng.random(n) < 0.5) | ~cross
    start_inside[anchor] = True
    speed = np.where(cross, rng.uniform(0.02, 0.05, n), rng.uniform(0.004, 0.025, n)) * side
    heading = rng.uniform(-np.pi, np.pi, n)
    img0 = np.stack([rng.uniform(margin, W - margin, n), rng.uniform(margin, H - margin, n)], -1)
    for i in np.nonzero(~start_inside)[0]:  # enter from an edge, heading inwards
        e = int(rng.integers(4))
        off = rng.uniform(0.02, 0.12) * side + 0.5 * rng.uniform(0.06, 0.3) * side
        t = rng.uniform(0.15, 0.85)
        img0[i] = [(t * W, -off), (W + off, t * H), (t * W, H + off), (-off, t * H)][e]
        inward = [np.pi / 2, np.pi, -np.pi / 2, 0.0][e]
        heading[i] = inward + rng.uniform(-0.6, 0.6)
    for i in np.nonzero(cross & start_inside)[0]:  # leave: cross most of the frame first
        to_c = ctr - img0[i]
        heading[i] = math.atan2(to_c[1], to_c[0]) + rng.uniform(-0.8, 0.8)
    pos = cam[0] + (img0 - ctr) / zoom[0]
    out = np.zeros((T, n, 2))
    turn = np.where(cross, 0.02, 0.1)
    for t in range(T):
        out[t] = pos
        img = zoom[t] * (pos - cam[t]) + ctr
        outside = (img[:, 0] < margin) | (img[:, 0] > W - margin) | (img[:, 1] < margin) | (img[:, 1] > H - margin)
        steer = ~cross & outside
        if steer.any():
            to_c = ctr - img
            want = np.arctan2(to_c[:, 1], to_c[:, 0])
            heading = np.where(steer, heading + np.clip(_wrap(want - heading), -0.35, 0.35), heading)
        heading = heading + rng.normal(0, 1, n) * turn
        speed = speed * np.exp(rng.normal(0, 0.05, n))
        pos = pos + (speed / zoom[t])[:, None] * np.stack([np.cos(heading), np.sin(heading)], -1)
    return out, cross


def _occluder_plan(rng, obj, cen, R, ang, target, start, length, H, W, T):
    """Relative path of a bar that hides the target exactly on frames [start, start + length).

    Works along a random direction ``du``: the bar covers the target's projection on every hidden
    frame, and only part of it (<= 30% of its extent) on the frames just before and after.
    Returns a function ``t -> (centre (x, y), du, a, b)`` or None when the target is off-frame on
    a boundary frame.
    """
    side = min(H, W)
    th = rng.uniform(0, math.pi)
    du = np.array([math.cos(th), math.sin(th)])
    dp = np.array([-du[1], du[0]])
    if rng.random() < 0.5:
        du = -du
    ext = {}
    for t in range(max(start - 1, 0), min(start + length + 1, T)):
        r = _raster(obj, cen[t, target, 0], cen[t, target, 1], R[t, target], ang[t, target], H, W)
        if r is None or not r[1].any():
            if start <= t < start + length:
                ext[t] = None
                continue
            return None
        (y0, y1, x0, x1), m, _, _ = r
        ys, xs = np.nonzero(m)
        px, py = xs + x0 - cen[t, target, 0], ys + y0 - cen[t, target, 1]
        pu, pp = px * du[0] + py * du[1], px * dp[0] + py * dp[1]
        ext[t] = (pu.min(), pu.max(), pp.min(), pp.max())
    hid = [ext[t] for t in range(start, start + length) if ext.get(t) is not None]
    if not hid:
        return None
    Llo, Lhi = min(e[0] for e in hid), max(e[1] for e in hid)
    Plo, Phi = min(e[2] for e in hid), max(e[3] for e in hid)
    slack = rng.uniform(1.5, 1.5 + 0.25 * (Lhi - Llo))
    a = (Lhi - Llo) / 2.0 + slack
    c = (Llo + Lhi) / 2.0
    b = max((Phi - Plo) / 2.0 + 1.5 + rng.uniform(0, 0.3) * (Phi - Plo), rng.uniform(0.25, 0.6) * side)
    cp = (Plo + Phi) / 2.0
    rel = {}
    for k, t in enumerate(range(start, start + length)):  # slow drift while hiding
        f = 0.5 if length == 1 else k / (length - 1)
        rel[t] = c - (slack - 0.6) + 2 * (slack - 0.6) * f
    s0, s1 = start - 1, start + length
    if s0 >= 0:  # leading edge just inside the target's near side
        lo_, hi_ = ext[s0][0], ext[s0][1]
        rel[s0] = lo_ + rng.uniform(0.0, 0.3) * (hi_ - lo_) - a
    if s1 < T:  # trailing edge just inside the target's far side
        lo_, hi_ = ext[s1][0], ext[s1][1]
        rel[s1] = hi_ - rng.uniform(0.0, 0.3) * (hi_ - lo_) + a
    v_in = rel[start] - rel[s0] if s0 >= 0 else max(2 * a, 0.05 * side)
    v_out = rel[s1] - rel[start + length - 1] if s1 < T else max(2 * a, 0.05 * side)
    v_in, v_out = max(v_in, 1.0), max(v_out, 1.0)

    def at(t: int):
        if t in rel:
            r_ = rel[t]
        elif t < start:  # before the frame just before: approaching at v_in
            r_ = rel[s0] - v_in * (s0 - t)
        else:  # after the frame just after: leaving at v_out
            r_ = rel[s1] + v_out * (t - s1)
        centre = cen[t, target] + r_ * du + cp * dp
        return centre, du, dp, a + 0.5, b

    return at


def make_video(
    rng: np.random.Generator,
    size: SizeLike = (128, 128),
    n_frames: int = 30,
    n_objects: Union[int, Sequence[int]] = (1, 4),
    occlude: Optional[tuple[int, int, int]] = None,
    p_cross: float = 0.35,
    p_occlude: float = 0.0,
    camera: bool = True,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """A clip: ``(frames [T x (H, W, 3) uint8 RGB], masks (T, N, H, W) bool, obj_ids (N,) = 1..N)``.

    Masks are visible parts (disjoint per frame); an object out of frame or hidden has an empty
    mask. Depth order is the object order (later on top). ``p_cross``: probability that an
    object crosses the frame (enters from an edge or leaves) instead of wandering inside it.
    ``occlude=(i, start, length)`` hides object ``i`` completely, behind a foreground bar, on
    frames ``start .. start+length-1`` and on no other frame (object ``i`` then wanders inside the
    frame and is visible on every other frame); ``p_occlude`` draws such an occlusion at random.
    ``camera=False`` keeps the view still.
    """
    H, W = _hw(size)
    T = int(n_frames)
    if T < 1:
        raise ValueError("n_frames must be >= 1")
    side = min(H, W)
    lo, hi = _range(n_objects)
    n = int(rng.integers(lo, hi + 1))
    random_occ = occlude is None and p_occlude > 0 and T >= 6 and n >= 1
    if occlude is None and p_occlude > 0 and T >= 6 and n >= 1 and rng.random() < p_occlude:
        length = int(rng.integers(2, max(3, T // 5) + 1))
        occlude = (int(rng.integers(n)), int(rng.integers(1, T - length)), length)
    if occlude is not None:
        target, start, length = (int(v) for v in occlude)
        if not 0 <= target < max(n, hi):
            raise ValueError(f"occlude: object index {target} is outside 0..{hi - 1}")
        n = max(n, target + 1)
        if length < 1 or start < 0 or start + length > T:
            raise ValueError(f"occlude: frames {start}..{start + length - 1} are outside 0..{T - 1}")
    for attempt in range(40):
        if random_occ and attempt == 10:
            occlude = None  # a drawn occlusion that keeps failing: give up on it
        out = _video_once(rng, H, W, T, n, side, occlude, p_cross, camera)
        if out is not None:
            return out
    raise RuntimeError(f"could not generate a video with occlude={occlude}")  # pragma: no cover


def _video_once(rng, H, W, T, n, side, occlude, p_cross, camera):
    ctr = np.array([W / 2.0, H / 2.0])
    if camera:
        cam = ctr + _walk(rng, T, 2, rng.uniform(0.0, 0.004) * side)
        zoom = np.exp(np.clip(_walk(rng, T, 1, rng.uniform(0.0, 0.006))[:, 0], -0.2, 0.2))
    else:
        cam, zoom = np.tile(ctr, (T, 1)), np.ones(T)
    target = occlude[0] if occlude is not None else None
    cen_w, _cross = _simulate(rng, T, H, W, n, p_cross, cam, zoom, target)
    # world background covering every view (with a margin for the interpolation)
    half = np.stack([W / 2.0 / zoom, H / 2.0 / zoom], -1)
    wmin = np.floor((cam - half).min(0)) - 2
    wmax = np.ceil((cam + half).max(0)) + 2
    bgw = _background(rng, int(wmax[1] - wmin[1]), int(wmax[0] - wmin[0]), side)
    # objects
    objs, R0 = [], rng.uniform(0.06, 0.32, n) * side / 2.0
    for i in range(n):
        kind_id = int(rng.integers(len(KINDS)))
        R0[i] = max(R0[i], _MIN_SIZE.get(KINDS[kind_id], 0.0) * side / 2.0)
        objs.append(_new_object(rng, kind_id, R0[i] * 1.35 * 1.25))
    ref = bgw.reshape(-1, 3)[rng.integers(0, bgw.shape[0] * bgw.shape[1], 800)]
    for o in objs:
        _pick_colors(rng, o, ref, [c for p in objs if "c1" in p for c in (p["c1"], p["c2"])], q=10.0)
    omega = rng.uniform(-0.05, 0.05, n) * (rng.random(n) < 0.7)
    omega[[o["kind"] == "rectangle" for o in objs]] = 0.0  # keeps axis-aligned rectangles aligned
    tt = np.arange(T)[:, None]
    scale = np.exp(rng.uniform(0, 0.12, n) * np.sin(2 * np.pi * tt / rng.uniform(15, 60, n) + rng.uniform(0, 6.3, n)))
    ang = np.array([o["angle"] for o in objs])[None, :] + omega[None, :] * tt
    cen = zoom[:, None, None] * (cen_w - cam[:, None, :]) + ctr  # image coordinates
    R = zoom[:, None] * R0[None, :] * scale

    occ_at = None
    if occlude is not None:
        _, start, length = occlude
        occ_at = _occluder_plan(rng, objs[target], cen, R, ang, target, start, length, H, W, T)
        if occ_at is None:
            return None
        bar = {"fill": str(rng.choice(["flat", "stripes", "noise", "gradient"])), "fa": 0.0, "freq": rng.uniform(2, 6),
               "phase": rng.uniform(0, 6.3), "soft": False, "ntex": _smooth_noise(rng, 48, 48, 10)}
        _pick_colors(rng, bar, ref, [objs[target]["c1"], objs[target]["c2"]], q=10.0)
    blur = rng.uniform(0.3, 0.8) if rng.random() < 0.6 else 0.0
    noise = rng.uniform(0.5, 5.0)
    yy = np.arange(H, dtype=np.float32)[:, None]
    xx = np.arange(W, dtype=np.float32)[None, :]
    frames, masks = [], np.zeros((T, n, H, W), bool)
    for t in range(T):
        z = zoom[t]
        M = np.array([[z, 0, z * (wmin[0] - cam[t, 0]) + ctr[0]], [0, z, z * (wmin[1] - cam[t, 1]) + ctr[1]]])
        canvas = cv2.warpAffine(bgw, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        label = np.full((H, W), -1, np.int32)
        for i, o in enumerate(objs):
            r = _raster(o, cen[t, i, 0], cen[t, i, 1], R[t, i], ang[t, i], H, W)
            if r is None:
                continue
            (y0, y1, x0, x1), m, u, v = r
            if not m.any():
                continue
            tex = _fill(o, u, v)
            canvas[y0:y1, x0:x1][m] = tex[m]
            label[y0:y1, x0:x1][m] = i
        if occ_at is not None:
            c, du, dp, a, b = occ_at(t)
            c, du, dp = (np.asarray(q, np.float32) for q in (c, du, dp))
            a, b = np.float32(a), np.float32(b)
            pu = (xx - c[0]) * du[0] + (yy - c[1]) * du[1]
            pp = (xx - c[0]) * dp[0] + (yy - c[1]) * dp[1]
            m = (np.abs(pu) <= a) & (np.abs(pp) <= b)
            if m.any():
                tex = _fill(bar, pu / a, pp / b)
                canvas[m] = tex[m]
                label[m] = -2
        for i in range(n):
            masks[t, i] = label == i
        flick = rng.normal(1.0, 0.015)
        frames.append(_finish(rng, canvas * np.float32(flick), blur, noise))
    if occlude is not None:
        _, start, length = occlude
        on = masks[:, target].any(axis=(1, 2))
        hidden = np.zeros(T, bool)
        hidden[start:start + length] = True
        if on[hidden].any() or not on[~hidden].all():
            return None
    return frames, masks, np.arange(1, n + 1, dtype=np.int64)


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

    from sam2cli.io.writers import yolo_seg_lines

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

    from sam2cli.io.writers import davis_palette

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
