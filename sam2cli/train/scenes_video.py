"""Procedural videos for the demo model (:func:`make_video`), re-exported by :mod:`sam2cli.train.scenes`.

The objects of :mod:`~sam2cli.train.scenes_draw` moving with smooth random headings and speeds,
slight rotation and scale change, some crossing the frame (entering or leaving), a fixed depth
order (so crossings occlude), camera pan/zoom over a larger world background, per-frame noise,
and optionally a forced full occlusion of one object by a foreground bar (``occlude=``).

Hard cases for the tracker policies (``tracker=samurai|dam4sam``), each its own switch of
:func:`make_video`: a look-alike (an unlabelled copy of an object: same shape, colours and size)
that crosses or passes it (``lookalike=``); a look-alike that arrives beside an occluded object
while it is hidden, so it re-appears next to its twin (``twin=True`` with ``occlude=``); fast
motion, more than half an object's size per frame (``fast=True``); several objects of one class
(``same_class=True``). Long clips are ``n_frames=150`` or more. :func:`write_hard_dataset` writes
clips of each case as a DAVIS folder.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence, Union

import cv2
import numpy as np

from .scenes_draw import (
    _MIN_SIZE,
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
    _smooth_noise,
)
from .scenes_hard import bounce_path, lookalike_path, same_class_look, twin_path


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
    *,
    lookalike: Optional[str] = None,
    twin: bool = False,
    fast: bool = False,
    same_class: bool = False,
    copies: bool = False,
) -> tuple:
    """A clip: ``(frames [T x (H, W, 3) uint8 RGB], masks (T, N, H, W) bool, obj_ids (N,) = 1..N)``.

    Masks are visible parts (disjoint per frame); an object out of frame or hidden has an empty
    mask. Depth order is the object order (later on top). ``p_cross``: probability that an
    object crosses the frame (enters from an edge or leaves) instead of wandering inside it.
    ``occlude=(i, start, length)`` hides object ``i`` completely, behind a foreground bar, on
    frames ``start .. start+length-1`` and on no other frame (object ``i`` then wanders inside the
    frame and is visible on every other frame); ``p_occlude`` draws such an occlusion at random.
    ``camera=False`` keeps the view still.

    Hard cases (:mod:`~sam2cli.train.scenes_hard`), none by default; a look-alike or twin is an
    unlabelled copy of an object (same shape, colours, size and rotation), not in ``masks``:
    ``lookalike="cross"`` / ``"pass"``: a look-alike of one object (``occlude``'s, else one drawn
    at random, which then wanders inside the frame) crosses over or under it, or passes just
    beside it, around the middle of the clip (before the occlusion, with ``occlude``);
    ``twin=True`` (needs ``occlude``): a twin of the occluded object arrives while it is hidden
    and is beside it when it re-appears; ``fast=True``: every object moves 1.2-1.8 radii per
    frame (more than half its size), bouncing off the borders; ``same_class=True``: every object
    has the first one's kind and fill, similar size and jittered colours. ``copies=True`` also
    returns the look-alikes' visible masks (T, K, H, W) bool (look-alike first, then twin).
    """
    H, W = _hw(size)
    T = int(n_frames)
    if T < 1:
        raise ValueError("n_frames must be >= 1")
    side = min(H, W)
    if lookalike not in (None, "cross", "pass"):
        raise ValueError(f"lookalike must be None, 'cross' or 'pass', got {lookalike!r}")
    if twin and occlude is None:
        raise ValueError("twin=True needs occlude=(i, start, length)")
    hard = _Hard(lookalike, bool(twin), bool(fast), bool(same_class))
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
        out = _video_once(rng, H, W, T, n, side, occlude, p_cross, camera, hard)
        if out is not None:
            return out if copies else out[:3]
    raise RuntimeError(f"could not generate a video with occlude={occlude}")  # pragma: no cover


class _Hard(NamedTuple):
    lookalike: Optional[str]
    twin: bool
    fast: bool
    same_class: bool


def _video_once(rng, H, W, T, n, side, occlude, p_cross, camera, hard):
    ctr = np.array([W / 2.0, H / 2.0])
    if camera:
        cam = ctr + _walk(rng, T, 2, rng.uniform(0.0, 0.004) * side)
        zoom = np.exp(np.clip(_walk(rng, T, 1, rng.uniform(0.0, 0.006))[:, 0], -0.2, 0.2))
    else:
        cam, zoom = np.tile(ctr, (T, 1)), np.ones(T)
    target = occlude[0] if occlude is not None else None
    if hard.lookalike and target is None:
        target = int(rng.integers(n))
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
        if hard.same_class and i:
            kind_id, R0[i] = objs[0]["cls"], R0[0] * rng.uniform(0.85, 1.15)
        R0[i] = max(R0[i], _MIN_SIZE.get(KINDS[kind_id], 0.0) * side / 2.0)
        objs.append(_new_object(rng, kind_id, R0[i] * 1.35 * 1.25))
    ref = bgw.reshape(-1, 3)[rng.integers(0, bgw.shape[0] * bgw.shape[1], 800)]
    for o in objs:
        _pick_colors(rng, o, ref, [c for p in objs if "c1" in p for c in (p["c1"], p["c2"])], q=10.0)
    if hard.same_class:
        same_class_look(rng, objs)
    omega = rng.uniform(-0.05, 0.05, n) * (rng.random(n) < 0.7)
    omega[[o["kind"] == "rectangle" for o in objs]] = 0.0  # keeps axis-aligned rectangles aligned
    tt = np.arange(T)[:, None]
    scale = np.exp(rng.uniform(0, 0.12, n) * np.sin(2 * np.pi * tt / rng.uniform(15, 60, n) + rng.uniform(0, 6.3, n)))
    ang = np.array([o["angle"] for o in objs])[None, :] + omega[None, :] * tt
    cen = zoom[:, None, None] * (cen_w - cam[:, None, :]) + ctr  # image coordinates
    R = zoom[:, None] * R0[None, :] * scale
    if hard.fast:
        for i in range(n):
            cen[:, i] = bounce_path(rng, T, H, W, float(R0[i]))

    occ_at = None
    if occlude is not None:
        _, start, length = occlude
        occ_at = _occluder_plan(rng, objs[target], cen, R, ang, target, start, length, H, W, T)
        if occ_at is None:
            return None
        bar = {"fill": str(rng.choice(["flat", "stripes", "noise", "gradient"])), "fa": 0.0, "freq": rng.uniform(2, 6),
               "phase": rng.uniform(0, 6.3), "soft": False, "ntex": _smooth_noise(rng, 48, 48, 10)}
        _pick_colors(rng, bar, ref, [objs[target]["c1"], objs[target]["c2"]], q=10.0)
    # what is drawn, bottom to top: (object, centres (T, 2), radii (T,), angles (T,), label);
    # look-alikes are labelled -3, -4, ... and drawn just under their object or over all of them
    layers = [(o, cen[:, i], R[:, i], ang[:, i], i) for i, o in enumerate(objs)]
    copies = []
    if hard.lookalike:
        window = (int(0.3 * T), max(int(0.6 * T), int(0.3 * T))) if occlude is None else \
            (max(1, int(0.1 * T)), max(1, int(0.1 * T), occlude[1] - 8))
        copies.append(lookalike_path(rng, cen[:, target], R[:, target], hard.lookalike, window))
    if hard.twin:
        path = twin_path(rng, objs[target], cen[:, target], R[:, target], ang[:, target], occ_at,
                         occlude[1], occlude[2], H, W)
        if path is None:
            return None
        copies.append(path)
    for k, path in enumerate(copies):
        layer = (objs[target], path, R[:, target], ang[:, target], -3 - k)
        layers.insert(target if rng.random() < 0.5 else len(layers), layer)
    blur = rng.uniform(0.3, 0.8) if rng.random() < 0.6 else 0.0
    noise = rng.uniform(0.5, 5.0)
    yy = np.arange(H, dtype=np.float32)[:, None]
    xx = np.arange(W, dtype=np.float32)[None, :]
    frames, masks = [], np.zeros((T, n, H, W), bool)
    copy_masks = np.zeros((T, len(copies), H, W), bool)
    for t in range(T):
        z = zoom[t]
        M = np.array([[z, 0, z * (wmin[0] - cam[t, 0]) + ctr[0]], [0, z, z * (wmin[1] - cam[t, 1]) + ctr[1]]])
        canvas = cv2.warpAffine(bgw, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        label = np.full((H, W), -1, np.int32)
        for o, c_, R_, a_, lab in layers:
            r = _raster(o, c_[t, 0], c_[t, 1], R_[t], a_[t], H, W)
            if r is None:
                continue
            (y0, y1, x0, x1), m, u, v = r
            if not m.any():
                continue
            tex = _fill(o, u, v)
            canvas[y0:y1, x0:x1][m] = tex[m]
            label[y0:y1, x0:x1][m] = lab
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
        for k in range(len(copies)):
            copy_masks[t, k] = label == -3 - k
        flick = rng.normal(1.0, 0.015)
        frames.append(_finish(rng, canvas * np.float32(flick), blur, noise))
    if occlude is not None:
        _, start, length = occlude
        on = masks[:, target].any(axis=(1, 2))
        hidden = np.zeros(T, bool)
        hidden[start:start + length] = True
        if on[hidden].any() or not on[~hidden].all():
            return None
        twin_px = copy_masks[start + length - 1:start + length + 1, -1].sum(axis=(1, 2)) if hard.twin else None
        if hard.twin and twin_px.min() < 0.5 * masks[start + length, target].sum():
            return None  # the twin must be in sight on the last hidden frame and when the object re-appears
    return frames, masks, np.arange(1, n + 1, dtype=np.int64), copy_masks

