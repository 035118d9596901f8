"""Drawing for the procedural scenes of :mod:`sam2cli.train.scenes`: colours, textures, shapes.

* colours and noise -- random HSV colours, value noise, stripe/checker/blob/noise patterns, the
  textured background (gradient, low-frequency noise, stripes, checker, blobs, grain) and the
  finish (mild blur and sensor noise);
* objects -- a shape of :data:`KINDS` as an anti-aliased template, rasterised at a centre, radius
  and angle, with a fill of :data:`FILLS` (flat, two-tone gradient, stripes, checker, noise
  texture) whose colours are chosen to stand out (:data:`CONTRAST`) from what surrounds it.

Everything is drawn from a :class:`numpy.random.Generator`. Coordinates: pixel ``(x, y)`` has its
centre at integer ``(x, y)``.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import cv2
import numpy as np

KINDS = ("circle", "ellipse", "rectangle", "rotated_rectangle", "triangle", "polygon", "star", "ring",
         "blob")
"""Shape kinds; the class id of an object is its index here."""

FILLS = ("flat", "gradient", "stripes", "checker", "noise")

_MIN_SIZE = {"ring": 0.12, "star": 0.10, "triangle": 0.07}  # thin parts need some pixels
CONTRAST = 45.0  # minimum RGB distance between an object's colours and its surroundings

SizeLike = Union[int, Sequence[int]]


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

