"""The one place where user prompts (points, labels, boxes, masks) are normalised.

Nesting follows Ultralytics' SAM API:

* ``points=[x, y]`` -> one object with one point
* ``points=[[x, y], [x, y]]`` -> two objects with one point each
* ``points=[[[x, y], [x, y]]]`` -> one object with two points
* ``labels`` mirror the nesting of ``points`` (``1``, ``[1, 0]``, ``[[1, 0]]``)
* ``bboxes`` are xyxy pixels, ``[x1, y1, x2, y2]`` or ``[[x1, y1, x2, y2], ...]``
* ``masks`` are ``(H, W)`` or ``(N, H, W)``

Lists, tuples, numpy arrays and torch tensors are all accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from sam2cli.errors import UsageError

POINTS_HINT = (
    "points must be [x, y] (one point), [[x, y], ...] (one point per object) "
    "or [[[x, y], ...], ...] (several points per object)"
)
LABELS_HINT = "labels follow the nesting of points: 1, [1, 0] (one per object) or [[1, 0]] (per point of each object)"
BOXES_HINT = "bboxes must be [x1, y1, x2, y2] or [[x1, y1, x2, y2], ...] in pixels"
MASKS_HINT = "masks must be an (H, W) array or an (N, H, W) stack, one mask per object"
_PER_POINT = "give one label (1=foreground, 0=background) per point"


@dataclass
class ObjectPrompt:
    """All prompts for one object, in original-image pixel coordinates."""

    points: Optional[np.ndarray] = None  # (P, 2) float32 xy
    labels: Optional[np.ndarray] = None  # (P,) int32, 1 foreground / 0 background
    box: Optional[np.ndarray] = None  # (4,) float32 xyxy
    mask: Optional[np.ndarray] = None  # (H, W) float32


def normalize_prompts(
    points: Any = None,
    labels: Any = None,
    bboxes: Any = None,
    masks: Any = None,
    image_hw: Optional[tuple[int, int]] = None,
) -> list[ObjectPrompt]:
    """Validate the prompts and return one :class:`ObjectPrompt` per object.

    Returns ``[]`` when no prompt is given (the caller then segments everything).
    Raises :class:`UsageError` with a one-line hint for anything malformed.
    """
    if labels is not None and _is_empty(points):
        raise UsageError("labels were given without points; pass points=... as well or drop labels")
    kinds: dict[str, list[np.ndarray]] = {}
    point_groups: list[np.ndarray] = []
    label_groups: list[np.ndarray] = []
    if not _is_empty(points):
        point_groups, one_per_object = _parse_points(points)
        label_groups = _parse_labels(labels, [len(g) for g in point_groups], one_per_object)
        kinds["points"] = point_groups
    if not _is_empty(bboxes):
        kinds["bboxes"] = _parse_boxes(bboxes)
    if not _is_empty(masks):
        kinds["masks"] = _parse_masks(masks)
    if not kinds:
        return []

    names = list(kinds)
    for other in names[1:]:
        if len(kinds[other]) != len(kinds[names[0]]):
            raise UsageError(
                f"{names[0]} describe {len(kinds[names[0]])} objects but {other} describe "
                f"{len(kinds[other])}; give one entry per object"
            )
    if image_hw is not None:
        _check_inside(kinds, image_hw)

    n = len(kinds[names[0]])
    return [
        ObjectPrompt(
            points=point_groups[i] if point_groups else None,
            labels=label_groups[i] if label_groups else None,
            box=kinds["bboxes"][i] if "bboxes" in kinds else None,
            mask=kinds["masks"][i] if "masks" in kinds else None,
        )
        for i in range(n)
    ]


def _is_empty(x: Any) -> bool:
    """True for None and for empty lists / arrays / tensors."""
    if x is None:
        return True
    if isinstance(x, (list, tuple)):
        return len(x) == 0
    size = getattr(x, "size", None)
    if isinstance(size, int):  # numpy
        return size == 0
    numel = getattr(x, "numel", None)  # torch
    return callable(numel) and numel() == 0


def _as_array(x: Any, what: str, hint: str) -> Optional[np.ndarray]:
    """Numeric numpy view of ``x``; None when ``x`` is a ragged nested sequence."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError):
            return None
    if arr.dtype == object:
        return None
    if arr.dtype.kind not in "biuf":
        got = "text" if arr.dtype.kind in "US" else f"{arr.dtype} values"
        raise UsageError(f"{what} must be numbers, got {got}; {hint}")
    return arr


def _numeric(x: Any, what: str, hint: str) -> np.ndarray:
    """Like :func:`_as_array` but ragged input is an error and values must be finite."""
    arr = _as_array(x, what, hint)
    if arr is None:
        raise UsageError(f"{what} are not a regular array of numbers; {hint}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise UsageError(f"{what} contain NaN or infinite values; {hint}")
    return arr


def _parse_points(points: Any) -> tuple[list[np.ndarray], bool]:
    """Per-object (P, 2) float32 point arrays, and whether the form was one point per object."""
    arr = _as_array(points, "points", POINTS_HINT)
    if arr is None:  # ragged: objects with different numbers of points
        if not isinstance(points, (list, tuple)) or not all(hasattr(p, "__len__") for p in points):
            raise UsageError(f"cannot read points; {POINTS_HINT}")
        return [_point_group(p, i) for i, p in enumerate(points)], False
    arr = _numeric(arr, "points", POINTS_HINT).astype(np.float32)
    if arr.ndim == 1 and arr.shape == (2,):
        return [arr.reshape(1, 2)], True
    if arr.ndim == 2 and arr.shape[1] == 2:
        return [row.reshape(1, 2) for row in arr], True
    if arr.ndim == 3 and arr.shape[2] == 2 and arr.shape[1] > 0:
        return list(arr), False
    raise UsageError(f"points have shape {tuple(arr.shape)}; {POINTS_HINT}")


def _point_group(group: Any, index: int) -> np.ndarray:
    """The (P, 2) points of one object inside a ragged list."""
    arr = _numeric(group, "points", POINTS_HINT).astype(np.float32)
    if arr.shape == (2,):
        return arr.reshape(1, 2)
    if arr.ndim == 2 and arr.shape[1] == 2 and arr.shape[0] > 0:
        return arr
    raise UsageError(f"points of object {index} have shape {tuple(arr.shape)}; {POINTS_HINT}")


def _parse_labels(labels: Any, counts: Sequence[int], one_per_object: bool) -> list[np.ndarray]:
    """Per-object (P,) int32 labels matching the point counts; all 1 when labels is None."""
    if labels is None:
        return [np.ones(c, dtype=np.int32) for c in counts]
    n = len(counts)
    arr = _as_array(labels, "labels", LABELS_HINT)
    if arr is None:  # ragged per-object lists
        if one_per_object or not isinstance(labels, (list, tuple)):
            raise UsageError(f"cannot read labels; {LABELS_HINT}")
        if len(labels) != n:
            raise UsageError(f"points describe {n} objects but labels describe {len(labels)}; {LABELS_HINT}")
        groups = [_numeric(g, "labels", LABELS_HINT).reshape(-1) for g in labels]
    else:
        arr = _numeric(arr, "labels", LABELS_HINT)
        if one_per_object:
            if arr.ndim > 2 or (arr.ndim == 2 and arr.shape[1] != 1):
                raise UsageError(f"labels have shape {tuple(arr.shape)}; {LABELS_HINT}")
            if arr.size != n:
                raise UsageError(f"got {n} points but {arr.size} labels; {_PER_POINT}")
            groups = list(arr.reshape(n, 1))
        elif arr.ndim == 2 and arr.shape[0] == n:
            groups = list(arr)
        elif arr.ndim <= 1 and n == 1:
            groups = [arr.reshape(-1)]
        elif arr.ndim == 1 and arr.size == n and all(c == 1 for c in counts):
            groups = list(arr.reshape(n, 1))
        else:
            raise UsageError(
                f"points describe {n} objects but labels have shape {tuple(arr.shape)}; {LABELS_HINT}"
            )
    for i, (g, c) in enumerate(zip(groups, counts)):
        if g.size != c:
            raise UsageError(f"got {c} points but {g.size} labels for object {i}; {_PER_POINT}")
        bad = g[(g != 0) & (g != 1)]
        if bad.size:
            raise UsageError(f"label {bad[0]:g} is not allowed; labels must be 1 (foreground) or 0 (background)")
    return [g.astype(np.int32) for g in groups]


def _parse_boxes(bboxes: Any) -> list[np.ndarray]:
    """Per-object (4,) float32 xyxy boxes."""
    arr = _numeric(bboxes, "bboxes", BOXES_HINT).astype(np.float32)
    if arr.shape == (4,):
        arr = arr.reshape(1, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise UsageError(f"bboxes have shape {tuple(arr.shape)}; {BOXES_HINT}")
    for i, (x1, y1, x2, y2) in enumerate(arr):
        if x2 < x1 or y2 < y1:
            raise UsageError(
                f"box {i} [{x1:g}, {y1:g}, {x2:g}, {y2:g}] has x2 < x1 or y2 < y1; "
                "boxes are xyxy: top-left corner then bottom-right corner"
            )
    return list(arr)


def _parse_masks(masks: Any) -> list[np.ndarray]:
    """Per-object (H, W) float32 masks (bool becomes 0/1)."""
    arr = _numeric(masks, "masks", MASKS_HINT)
    if arr.ndim == 4 and arr.shape[1] == 1:  # (N, 1, H, W)
        arr = arr[:, 0]
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise UsageError(f"masks have shape {tuple(arr.shape)}; {MASKS_HINT}")
    return list(arr.astype(np.float32))


def _check_inside(kinds: dict[str, list[np.ndarray]], image_hw: tuple[int, int]) -> None:
    """Reject coordinates outside the image and masks of another size."""
    h, w = int(image_hw[0]), int(image_hw[1])
    where = f"the {w}x{h} (WxH) image; x must be in [0, {w}] and y in [0, {h}]"
    for i, pts in enumerate(kinds.get("points", [])):
        for x, y in pts:
            if not (0 <= x <= w and 0 <= y <= h):
                raise UsageError(f"point ({x:g}, {y:g}) of object {i} is outside {where}")
    for i, box in enumerate(kinds.get("bboxes", [])):
        x1, y1, x2, y2 = box
        if not (0 <= x1 <= w and 0 <= x2 <= w and 0 <= y1 <= h and 0 <= y2 <= h):
            raise UsageError(f"box {i} [{x1:g}, {y1:g}, {x2:g}, {y2:g}] is outside {where}")
    for i, mask in enumerate(kinds.get("masks", [])):
        if mask.shape != (h, w):
            raise UsageError(
                f"mask {i} is {mask.shape[1]}x{mask.shape[0]} (WxH) but the image is {w}x{h}; "
                "give masks at the image's resolution"
            )
