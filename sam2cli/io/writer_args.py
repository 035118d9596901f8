"""Argument types and checks shared by the output writers: paths, object ids and ``(N, H, W)`` masks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

PathLike = Union[str, Path]
IdsLike = Optional[Union[Sequence[int], np.ndarray]]


def _as_masks(masks: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` bool view of ``(N, H, W)`` or ``(H, W)`` masks."""
    m = np.asarray(masks).astype(bool, copy=False)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"masks must be (N, H, W) or (H, W), got shape {m.shape}")
    return m


def _obj_ids(obj_ids: IdsLike, n: int) -> list[int]:
    """Object ids as ints; ``None`` means 1..N."""
    if obj_ids is None:
        return list(range(1, n + 1))
    ids = [int(i) for i in np.asarray(obj_ids).reshape(-1)]
    if len(ids) != n:
        raise ValueError(f"got {len(ids)} object ids for {n} masks")
    return ids


def candidate_index(obj_ids: IdsLike, n: int) -> Optional[np.ndarray]:
    """Which candidate of its object each mask is, when an object has several masks
    (``multimask_output=True`` gives 3 per object, in the decoder's order): ``(N,)`` int, the
    k-th mask of an id being candidate k. ``None`` when every id appears once."""
    ids = _obj_ids(obj_ids, n)
    if len(set(ids)) == len(ids):
        return None
    seen: dict[int, int] = {}
    out = np.zeros(len(ids), dtype=np.int64)
    for i, oid in enumerate(ids):
        out[i] = seen.get(oid, 0)
        seen[oid] = out[i] + 1
    return out
