"""Prompts for ``sam2 track``: a JSON/YAML prompts file, or the ``points=... labels=...`` shorthand.

A prompts file holds a list of entries, one per (frame, object)::

    [{"frame": 0, "obj_id": 1, "points": [[210, 350]], "labels": [1]},
     {"frame": 3, "obj_id": 2, "box": [10, 20, 200, 240]},
     {"frame": 2, "obj_id": 3, "mask": "mask.png"}]

* ``frame`` (default 0) and ``obj_id`` (default 1) are integers >= 0;
* ``points`` are ``[[x, y], ...]`` pixels, ``labels`` one 1 (foreground) or 0
  (background) per point, all 1 when left out;
* ``box`` is ``[x1, y1, x2, y2]`` pixels;
* ``mask`` is an image path, relative to the prompts file's folder; nonzero pixels are
  the object. A mask cannot be combined with points or a box in one entry.

Every problem is a :class:`~sam2cli.errors.UsageError` naming the file and the entry
(numbered from 1), e.g. ``prompts.json entry 2 (frame 3, obj_id 2): unknown key 'bbox'; ...``.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import yaml

from sam2cli.core.prompts import ObjectPrompt, check_inside, normalize_prompts, object_prompt, short_repr
from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.image import load_mask

ALLOWED_KEYS: tuple[str, ...] = ("frame", "obj_id", "points", "labels", "box", "mask")
EXAMPLE = '[{"frame": 0, "obj_id": 1, "points": [[x, y]], "labels": [1]}]'


@dataclass(init=False)
class PromptEntry(ObjectPrompt):
    """An :class:`~sam2cli.core.prompts.ObjectPrompt` (points (P, 2), labels (P,), box (4,),
    mask (H, W) bool, in original-frame pixels) for object ``obj_id`` on video frame ``frame``.

    ``index`` is the entry's position (0-based) in its file or argument list;
    ``source`` is the prompts file's name (empty for command-line prompts).
    """

    frame: int
    obj_id: int
    index: int
    source: str

    def __init__(self, frame: int, obj_id: int, *, points: Optional[np.ndarray] = None,
                 labels: Optional[np.ndarray] = None, box: Optional[np.ndarray] = None,
                 mask: Optional[np.ndarray] = None, index: int = 0, source: str = "") -> None:
        super().__init__(points=points, labels=labels, box=box, mask=mask)
        self.frame, self.obj_id, self.index, self.source = frame, obj_id, index, source

    @classmethod
    def of(cls, prompt: ObjectPrompt, *, frame: int, obj_id: int, index: int = 0, source: str = "") -> PromptEntry:
        """``prompt`` placed on a frame, for an object."""
        return cls(frame, obj_id, points=prompt.points, labels=prompt.labels, box=prompt.box, mask=prompt.mask,
                   index=index, source=source)

    @property
    def where(self) -> str:
        """How error messages name this entry: ``prompts.json entry 2 (frame 3, obj_id 2)``."""
        return f"{_entry_name(self.source, self.index)} (frame {self.frame}, obj_id {self.obj_id})"


def _entry_name(source: str, index: int) -> str:
    return f"{source} entry {index + 1}" if source else f"prompt {index + 1}"


@contextmanager
def _at(head: str) -> Iterator[None]:
    """Prefix a UsageError raised inside with ``head: `` (which file and entry it is about)."""
    try:
        yield
    except UsageError as e:
        raise UsageError(f"{head}: {e}") from None


# ---------------------------------------------------------------------------- loading


def load_prompts(path: Union[str, Path]) -> list[PromptEntry]:
    """Read and check a ``.json`` / ``.yaml`` / ``.yml`` prompts file (see the module docstring).

    Mask paths are resolved relative to the file's folder and loaded. Raises
    :class:`UsageError` naming the file (and entry) for anything malformed.
    """
    path = Path(path).expanduser()
    name = path.name
    if not path.is_file():
        raise UsageError(f"prompts file not found: {path}; pass a .json or .yaml file with a list of prompt entries")
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise UsageError(f"prompts file {name} must be .json, .yaml or .yml, got '{path.suffix or 'no extension'}'")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read prompts file {name}: {getattr(e, 'strerror', None) or e}") from None
    data = _parse(text, name, suffix)
    if isinstance(data, dict):
        got = "a mapping"
    elif not isinstance(data, list):
        got = "nothing" if data is None else f"a {type(data).__name__}"
    else:
        got = ""
    if got:
        raise UsageError(f"{name} must hold a list of prompt entries like {EXAMPLE}, got {got}")
    if not data:
        raise UsageError(f"{name} has no prompt entries; add at least one like {EXAMPLE}")
    entries = [_parse_entry(raw, i, name, path.parent) for i, raw in enumerate(data)]
    _check_duplicates(entries)
    return entries


def _parse(text: str, name: str, suffix: str) -> Any:
    """JSON or YAML text to Python data, with a one-line error naming the file."""
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise UsageError(f"{name} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise UsageError(f"{name} is not valid YAML: {problem}{where}") from None


def _parse_entry(raw: Any, index: int, source: str, base: Path) -> PromptEntry:
    """Check one raw entry and turn it into a :class:`PromptEntry`."""
    head = _entry_name(source, index)
    if not isinstance(raw, dict):
        raise UsageError(f"{head}: an entry must be a mapping like {EXAMPLE[1:-1]}, got {short_repr(raw)}")
    frame = _whole(raw.get("frame", 0), head, "frame")
    obj_id = _whole(raw.get("obj_id", 1), head, "obj_id")
    head = f"{head} (frame {frame}, obj_id {obj_id})"

    for key in raw:
        if key not in ALLOWED_KEYS:
            raise UsageError(f"{head}: unknown key {short_repr(key)}; allowed: {', '.join(ALLOWED_KEYS)}")
    has = {k: raw.get(k) is not None for k in ("points", "labels", "box", "mask")}
    if not (has["points"] or has["box"] or has["mask"]):
        raise UsageError(f"{head}: give points, a box or a mask")
    if has["mask"] and (has["points"] or has["box"] or has["labels"]):
        raise UsageError(f"{head}: a mask cannot be combined with points or a box; put them in separate entries")
    mask = _mask(raw["mask"], base, head) if has["mask"] else None
    with _at(head):
        prompt = object_prompt(raw.get("points"), raw.get("labels"), raw.get("box"), mask)
    return PromptEntry.of(prompt, frame=frame, obj_id=obj_id, index=index, source=source)


def _whole(value: Any, head: str, key: str) -> int:
    """An integer >= 0 (integral floats like 3.0 are accepted); ``head`` prefixes the error."""
    if isinstance(value, np.generic):
        value = value.item()
    ok = not isinstance(value, bool) and (
        isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())
    )
    if not ok or value < 0:
        prefix = f"{head}: " if head else ""
        raise UsageError(f"{prefix}{key} must be a whole number >= 0, got {short_repr(value)}")
    return int(value)


def _mask(value: Any, base: Path, head: str) -> np.ndarray:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{head}: mask must be the path of a mask image, got {short_repr(value)}")
    path = Path(value.strip()).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise UsageError(f"{head}: mask file not found: {path} (mask paths are relative to the prompts file)")
    try:
        mask = load_mask(path)
    except SAM2Error as e:
        raise UsageError(f"{head}: {e}") from None
    if not mask.any():
        raise UsageError(f"{head}: mask {value} is empty (all pixels are 0); nonzero pixels mark the object")
    return mask


def _check_duplicates(entries: Sequence[PromptEntry]) -> None:
    """Two entries for the same object on the same frame would overwrite each other."""
    seen: dict[tuple[int, int], PromptEntry] = {}
    for e in entries:
        key = (e.frame, e.obj_id)
        if key in seen:
            first = _entry_name(seen[key].source, seen[key].index)
            raise UsageError(
                f"{e.where}: the same frame and obj_id as {first}; put all prompts of an object on a frame in one entry"
            )
        seen[key] = e


# ---------------------------------------------------------------------------- checking


def validate_prompts(entries: Sequence[PromptEntry], num_frames: Optional[int], height: int, width: int) -> None:
    """Check prompts against the video: frames that exist, coordinates inside, masks of the frame size.

    ``num_frames`` is ``None`` for live streams (frames are then not checked).
    Raises :class:`UsageError` naming the entry.
    """
    for e in entries:
        if num_frames is not None and e.frame >= num_frames:
            raise UsageError(f"{e.where}: frame {e.frame} is past the end of the video ({num_frames} frames)")
        with _at(e.where):
            check_inside(e, (height, width), video=True)


# ---------------------------------------------------------------------------- command-line shorthand


def prompts_from_args(
    points: Any = None,
    labels: Any = None,
    bboxes: Any = None,
    frame: Any = 0,
    obj_ids: Any = None,
) -> list[PromptEntry]:
    """Prompts from ``points=... labels=... bboxes=... frame=... obj_ids=...`` (one entry per object).

    The nesting rules are those of :func:`sam2cli.core.prompts.normalize_prompts`.
    ``obj_ids`` default to 1..N; ``[]`` is returned when no prompt is given.
    """
    objects = normalize_prompts(points, labels, bboxes)
    frame_idx = _whole(0 if frame is None else frame, "", "frame")
    if not objects:
        if obj_ids is not None:
            raise UsageError("obj_ids were given without prompts; add points=... or bboxes=...")
        return []
    n = len(objects)
    ids = list(range(1, n + 1)) if obj_ids is None else _obj_ids(obj_ids)
    if len(ids) != n:
        raise UsageError(
            f"the prompts describe {n} object{'s' if n != 1 else ''} but {len(ids)} obj_ids were given; "
            "give one obj_id per object or leave obj_ids out"
        )
    return [PromptEntry.of(o, frame=frame_idx, obj_id=oid, index=i) for i, (o, oid) in enumerate(zip(objects, ids))]


def _obj_ids(obj_ids: Any) -> list[int]:
    """A list of distinct whole numbers >= 0 from an int or a sequence of ints."""
    if hasattr(obj_ids, "tolist"):
        obj_ids = obj_ids.tolist()
    values = list(obj_ids) if isinstance(obj_ids, (list, tuple)) else [obj_ids]
    ids = [_whole(v, "", "obj_id") for v in values]
    dup = next((v for i, v in enumerate(ids) if v in ids[:i]), None)
    if dup is not None:
        raise UsageError(f"obj_id {dup} is given twice in obj_ids; every object needs its own obj_id")
    return ids
