"""The prompt record (:class:`ObjectPrompt`) and its one validator.

Every prompt from Python, the command line or a prompts file goes through the checks here, so
one bad value gives the same one-line message wherever it came from (a prompts file only adds
where it is: ``prompts.json entry 2 (frame 3, obj_id 2): ...``).

Nesting of :func:`normalize_prompts` follows Ultralytics' SAM API:

* ``points=[x, y]`` -> one object with one point
* ``points=[[x, y], [x, y]]`` -> two objects with one point each
* ``points=[[[x, y], [x, y]]]`` -> one object with two points
* ``labels`` mirror the nesting of ``points`` (``1``, ``[1, 0]``, ``[[1, 0]]``)
* ``bboxes`` are xyxy pixels, ``[x1, y1, x2, y2]`` or ``[[x1, y1, x2, y2], ...]``
* ``masks`` are ``(H, W)`` or ``(N, H, W)``

:func:`object_prompt` checks the prompts of a single object (a prompts-file entry).
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
OBJECT_POINTS_HINT = "write an object's points as [[x, y], ...] in pixels"
LABELS_HINT = "labels follow the nesting of points: 1, [1, 0] (one per object) or [[1, 0]] (per point of each object)"
PER_POINT = "give one label per point: 1 (foreground) or 0 (background)"
BOXES_HINT = "bboxes must be [x1, y1, x2, y2] or [[x1, y1, x2, y2], ...] in pixels"
BOX_HINT = "write a box as [x1, y1, x2, y2] in pixels (top-left then bottom-right corner)"
MASKS_HINT = "masks must be an (H, W) array or an (N, H, W) stack, one mask per object"


@dataclass
class ObjectPrompt:
    """All prompts for one object, in original-image pixel coordinates."""

    points: Optional[np.ndarray] = None  # (P, 2) float32 xy
    labels: Optional[np.ndarray] = None  # (P,) int32, 1 foreground / 0 background
    box: Optional[np.ndarray] = None  # (4,) float32 xyxy
    mask: Optional[np.ndarray] = None  # (H, W) float32 (normalize_prompts) or bool (prompt files)


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
    _labels_need_points(labels, not _is_empty(points))
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
    objects = [
        ObjectPrompt(
            points=point_groups[i] if point_groups else None,
            labels=label_groups[i] if label_groups else None,
            box=kinds["bboxes"][i] if "bboxes" in kinds else None,
            mask=kinds["masks"][i] if "masks" in kinds else None,
        )
        for i in range(len(kinds[names[0]]))
    ]
    if image_hw is not None:
        for i, obj in enumerate(objects):
            check_inside(obj, image_hw, index=i)
    return objects


def object_prompt(points: Any = None, labels: Any = None, box: Any = None, mask: Any = None) -> ObjectPrompt:
    """Check the prompts of one object: points ``[[x, y], ...]`` (or ``[x, y]``), one label per
    point (all 1 when None), a box ``[x1, y1, x2, y2]``, a mask ``(H, W)`` (its dtype is kept)."""
    _labels_need_points(labels, points is not None)
    prompt = ObjectPrompt()
    if points is not None:
        prompt.points = object_points(points)
        prompt.labels = object_labels(labels, len(prompt.points))
    if box is not None:
        prompt.box = object_box(box)
    if mask is not None:
        prompt.mask = _numeric(mask, "mask", MASKS_HINT)
        if prompt.mask.ndim != 2 or 0 in prompt.mask.shape:
            raise UsageError(f"the mask has shape {tuple(prompt.mask.shape)}; a mask prompt is one (H, W) image")
    return prompt


def object_points(value: Any, index: Optional[int] = None) -> np.ndarray:
    """One object's points, ``[x, y]`` or ``[[x, y], ...]``, as (P, 2) float32; ``index`` names
    the object in messages."""
    arr = _numeric(value, "points", OBJECT_POINTS_HINT).astype(np.float32)
    if arr.shape == (2,):
        return arr.reshape(1, 2)
    if arr.ndim == 2 and arr.shape[1] == 2 and arr.shape[0] > 0:
        return arr
    raise UsageError(f"points{_of_object(index)} have shape {tuple(arr.shape)}; {OBJECT_POINTS_HINT}")


def object_labels(value: Any, count: int, index: Optional[int] = None) -> np.ndarray:
    """One object's labels, one per point (all 1 when ``value`` is None), as (P,) int32."""
    if value is None:
        return np.ones(count, dtype=np.int32)
    arr = _numeric(value, "labels", PER_POINT).reshape(-1)
    if arr.size != count:
        raise UsageError(f"got {count} points but {arr.size} labels{_for_object(index)}; {PER_POINT}")
    bad = arr[(arr != 0) & (arr != 1)]
    if bad.size:
        raise UsageError(f"label {bad[0]:g} is not allowed; labels must be 1 (foreground) or 0 (background)")
    return arr.astype(np.int32)


def object_box(value: Any, index: Optional[int] = None) -> np.ndarray:
    """One object's box ``[x1, y1, x2, y2]`` as (4,) float32 (top-left then bottom-right)."""
    arr = _as_array(value, "box", BOX_HINT)
    if arr is None or arr.shape != (4,):
        raise UsageError(f"box must be 4 numbers, got {short_repr(value)}; {BOX_HINT}")
    box = _numeric(arr, "box", BOX_HINT).astype(np.float32)
    x1, y1, x2, y2 = box
    if x2 < x1 or y2 < y1:
        raise UsageError(
            f"box{_space(index)} [{x1:g}, {y1:g}, {x2:g}, {y2:g}] has x2 < x1 or y2 < y1; "
            "boxes are xyxy: top-left corner then bottom-right corner"
        )
    return box


def check_inside(prompt: ObjectPrompt, image_hw: Sequence[int], *, index: Optional[int] = None,
                 video: bool = False) -> None:
    """Reject coordinates outside the (H, W) image and a mask of another size; ``video`` says
    "frame" / "video" in messages instead of "image"."""
    h, w = int(image_hw[0]), int(image_hw[1])
    frame, whole = ("frame", "video") if video else ("image", "image")
    where = f"the {w}x{h} (WxH) {frame}; x must be in [0, {w}] and y in [0, {h}]"
    for x, y in [] if prompt.points is None else prompt.points:
        if not (0 <= x <= w and 0 <= y <= h):
            raise UsageError(f"point ({x:g}, {y:g}){_of_object(index)} is outside {where}")
    if prompt.box is not None:
        x1, y1, x2, y2 = prompt.box
        if not (0 <= x1 <= w and 0 <= x2 <= w and 0 <= y1 <= h and 0 <= y2 <= h):
            raise UsageError(f"box{_space(index)} [{x1:g}, {y1:g}, {x2:g}, {y2:g}] is outside {where}")
    if prompt.mask is not None and prompt.mask.shape[:2] != (h, w):
        mh, mw = prompt.mask.shape[:2]
        name = "the mask" if index is None else f"mask {index}"
        raise UsageError(
            f"{name} is {mw}x{mh} (WxH) but the {whole} is {w}x{h}; give masks at the {whole}'s resolution"
        )


def short_repr(value: Any) -> str:
    """A repr of a value cut to 40 characters, for error messages."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _of_object(index: Optional[int]) -> str:
    return "" if index is None else f" of object {index}"


def _for_object(index: Optional[int]) -> str:
    return "" if index is None else f" for object {index}"


def _space(index: Optional[int]) -> str:
    return "" if index is None else f" {index}"


def _labels_need_points(labels: Any, has_points: bool) -> None:
    if labels is not None and not has_points:
        raise UsageError("labels were given without points; add points or drop labels")


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


def _flat(x: Any) -> list:
    """The leaves of nested lists / tuples."""
    return [leaf for item in x for leaf in _flat(item)] if isinstance(x, (list, tuple)) else [x]


def _as_array(x: Any, what: str, hint: str) -> Optional[np.ndarray]:
    """Numeric numpy view of ``x``; None when ``x`` is a ragged nested sequence.

    Text, None, and True / False inside lists are not numbers (numpy would read True as 1)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    if isinstance(x, (list, tuple)):
        odd = [v for v in _flat(x) if v is None or isinstance(v, (bool, np.bool_))]
        if odd:
            raise UsageError(f"{what} must be numbers, got {odd[0]}; {hint}")
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
        raise UsageError(f"{what} are not a regular list of numbers; {hint}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise UsageError(f"{what} contain NaN or infinite values; {hint}")
    return arr


def _parse_points(points: Any) -> tuple[list[np.ndarray], bool]:
    """Per-object (P, 2) float32 point arrays, and whether the form was one point per object."""
    arr = _as_array(points, "points", POINTS_HINT)
    if arr is None:  # ragged: objects with different numbers of points
        if not isinstance(points, (list, tuple)) or not all(hasattr(p, "__len__") for p in points):
            raise UsageError(f"cannot read points; {POINTS_HINT}")
        return [object_points(p, i) for i, p in enumerate(points)], False
    arr = _numeric(arr, "points", POINTS_HINT).astype(np.float32)
    if arr.ndim == 1 and arr.shape == (2,):
        return [arr.reshape(1, 2)], True
    if arr.ndim == 2 and arr.shape[1] == 2:
        return [row.reshape(1, 2) for row in arr], True
    if arr.ndim == 3 and arr.shape[2] == 2 and arr.shape[1] > 0:
        return list(arr), False
    raise UsageError(f"points have shape {tuple(arr.shape)}; {POINTS_HINT}")


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
        groups = list(labels)
    else:
        arr = _numeric(arr, "labels", LABELS_HINT)
        if one_per_object:
            if arr.ndim > 2 or (arr.ndim == 2 and arr.shape[1] != 1):
                raise UsageError(f"labels have shape {tuple(arr.shape)}; {LABELS_HINT}")
            if arr.size != n:
                raise UsageError(f"got {n} points but {arr.size} labels; {PER_POINT}")
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
    return [object_labels(g, c, i) for i, (g, c) in enumerate(zip(groups, counts))]


def _parse_boxes(bboxes: Any) -> list[np.ndarray]:
    """Per-object (4,) float32 xyxy boxes."""
    arr = _numeric(bboxes, "bboxes", BOXES_HINT).astype(np.float32)
    if arr.shape == (4,):
        arr = arr.reshape(1, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise UsageError(f"bboxes have shape {tuple(arr.shape)}; {BOXES_HINT}")
    return [object_box(row, i) for i, row in enumerate(arr)]


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
