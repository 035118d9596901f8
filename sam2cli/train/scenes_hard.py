"""Hard cases of the procedural videos (:func:`~sam2cli.train.scenes_video.make_video`'s switches)
and a writer of clips of each case (:func:`write_hard_dataset`), to measure tracker policies.

* a look-alike: an unlabelled copy of an object (same template, colours, size and rotation)
  whose path, relative to the object, is a straight line that crosses it or passes just beside
  it (:func:`lookalike_path`);
* a twin at re-appearance: a copy that arrives beside an occluded object while it is hidden
  behind the bar and stays there, so the object re-appears next to its twin (:func:`twin_path`);
* fast motion: straight runs of 1.2-1.8 radii per frame (more than half the object's extent),
  bouncing off the frame's borders (:func:`bounce_path`);
* one class: every labelled object of the first one's kind and fill, its colours jittered
  (:func:`same_class_look`).

Coordinates are image pixels, as in :mod:`~sam2cli.train.scenes_video`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from .scenes_draw import SizeLike, _raster

HARD_CASES = ("lookalike", "twin", "fast", "same_class", "long")
"""The cases :func:`write_hard_dataset` writes (video ``<case>NNN``); ``long`` is a look-alike
crossing and an occlusion ending beside a twin in one clip of ``long_frames`` frames."""


def _unit(a: float) -> np.ndarray:
    return np.array([math.cos(a), math.sin(a)])


def lookalike_path(rng: np.random.Generator, cen: np.ndarray, R: np.ndarray, mode: str,
                   window: tuple[int, int]) -> np.ndarray:
    """Centres (T, 2) of a look-alike of an object at ``cen`` (T, 2) with radii ``R`` (T,): it moves
    along a straight line relative to the object at 0.5-1.0 radius per frame and is closest on a
    frame of ``window`` (inclusive): on top of it (``cross``, within 0.3 radius of its centre) or
    2.2-2.8 radii beside it (``pass``)."""
    T = len(cen)
    tc = int(rng.integers(window[0], window[1] + 1))
    r = float(R[tc])
    heading = rng.uniform(-math.pi, math.pi)
    along, perp = _unit(heading), _unit(heading + math.pi / 2)
    speed = rng.uniform(0.5, 1.0) * r
    miss = rng.uniform(-0.3, 0.3) * r if mode == "cross" else rng.choice([-1, 1]) * rng.uniform(2.2, 2.8) * r
    t = np.arange(T, dtype=np.float64)[:, None]
    return cen + perp * miss + along * speed * (t - tc)


def twin_path(rng: np.random.Generator, obj: dict, cen: np.ndarray, R: np.ndarray, ang: np.ndarray,
              occ_at: Callable, start: int, length: int, H: int, W: int) -> Optional[np.ndarray]:
    """Centres (T, 2) of a twin of the object hidden on frames [start, start + length) by the bar
    ``occ_at`` (scenes_video's occluder plan): on the bar's near side (where the bar came from),
    clear of the bar on every hidden frame, 0.4-0.9 radius per frame farther away for each frame
    before the re-appearance and beside the object from then on. None when the object is not in
    the frame on the re-appearance frame."""
    T = len(cen)
    s1 = start + length
    if s1 >= T:
        return None
    du = np.asarray(occ_at(start)[1], np.float64)
    # the bar's edge on the near side, relative to the object's centre, over the hidden frames
    edge = min(float(np.dot(np.asarray(occ_at(t)[0]) - cen[t], du)) - float(occ_at(t)[3])
               for t in range(start, s1))
    r = _raster(obj, cen[s1, 0], cen[s1, 1], R[s1], ang[s1], H, W)
    if r is None or not r[1].any():
        return None
    (y0, _, x0, _), m, _, _ = r
    ys, xs = np.nonzero(m)
    reach = float(((xs + x0 - cen[s1, 0]) * du[0] + (ys + y0 - cen[s1, 1]) * du[1]).max())  # its far side
    gap = reach * 1.1 + 1.5 - edge
    speed = rng.uniform(0.4, 0.9) * float(R[s1])
    before = np.maximum(0, s1 - np.arange(T, dtype=np.float64))[:, None]
    return cen - du * (gap + speed * before)


def bounce_path(rng: np.random.Generator, T: int, H: int, W: int, radius: float) -> np.ndarray:
    """Centres (T, 2) moving 1.2-1.8 ``radius`` per frame in straight runs (a little heading
    noise), reflected at ``radius`` * 0.6 inside the frame's borders."""
    m = max(0.6 * radius, 1.0)
    lo, hi = np.array([m, m]), np.array([W - 1 - m, H - 1 - m])
    p = rng.uniform(lo, np.maximum(hi, lo + 1))
    heading = rng.uniform(-math.pi, math.pi)
    speed = rng.uniform(1.2, 1.8) * radius
    out = np.zeros((T, 2))
    for t in range(T):
        out[t] = p
        v = speed * _unit(heading)
        p = p + v
        for k in range(2):  # reflect at the borders
            if p[k] < lo[k] or p[k] > hi[k]:
                p[k] = 2 * (lo[k] if p[k] < lo[k] else hi[k]) - p[k]
                v[k] = -v[k]
        p = np.clip(p, lo, np.maximum(hi, lo))
        heading = math.atan2(v[1], v[0]) + rng.normal(0, 0.1)
    return out


def same_class_look(rng: np.random.Generator, objs: Sequence[dict]) -> None:
    """Give every object the first one's fill and colours, each tone jittered by ~8 RGB levels."""
    first = objs[0]
    for o in objs[1:]:
        for k in ("fill", "fa", "freq", "phase", "soft"):
            o[k] = first[k]
        if "ntex" in first:
            o["ntex"] = first["ntex"]
        for k in ("c1", "c2"):
            o[k] = np.clip(first[k] + rng.normal(0, 8, 3), 0, 255).astype(np.float32)


# ---------------------------------------------------------------------------- dataset
