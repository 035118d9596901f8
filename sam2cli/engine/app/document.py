"""The annotation document of `sam2 app`: objects, their prompts per frame, undo/redo. Plain data.

A prompt state is what one object has on one frame (or image), in original-frame pixels:

    {"points": [[x, y], ...], "labels": [1, 0, ...], "box": [x1, y1, x2, y2] or None,
     "mask": COCO RLE or None}

A mask (a kept "segment everything" seed) is never combined with clicks or a box: the first click
or box on a seeded frame turns the seed into its bounding box plus that click. The mask of an
object on a frame is a function of its prompt state alone (every click re-decodes all the clicks
of the frame, as `sam2 predict` and a `prompts.json` replay do), so undo restores the previous
mask exactly. History is kept per (object, frame), HISTORY states deep.
"""

import math
from typing import Any, Dict, List, Optional, Tuple

from sam2cli.errors import UsageError

MAX_POINTS = 64           # clicks of one object on one frame
MAX_OBJECTS = 255         # DAVIS palette PNGs hold ids 1-255
MAX_NAME = 80             # characters of an object's name or class
HISTORY = 50              # undo states per (object, frame)

State = Dict[str, Any]


def empty_state() -> State:
    return {"points": [], "labels": [], "box": None, "mask": None}


def is_empty(state: Optional[State]) -> bool:
    return state is None or (not state["points"] and state["box"] is None and state["mask"] is None)


def _key(obj_id: int, frame: int) -> str:
    return f"{obj_id}:{frame}"


def clean_text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{what} must be a text, got {type(value).__name__}")
    text = " ".join(value.split())
    if not text or len(text) > MAX_NAME or not text.isprintable():
        raise UsageError(f"{what} must be 1 to {MAX_NAME} printable characters")
    return text


def number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{what} must be a finite number, got {str(value)[:40]!r}")
    return float(value)


class Document:
    """Objects (id -> {"id", "name", "class"}), prompts (frame -> obj_id -> state), history.

    Tracking bookkeeping lives here too, so one file holds it all: `gens` (obj_id -> generation of
    its masks: a stored mask of an older generation is stale and never shown or exported),
    `dirty` (objects whose tracking is out of date) and `tracked` (the start frame and direction
    of the last complete Track)."""

    def __init__(self, num_frames: int):
        self.num_frames = int(num_frames)
        self.objects: Dict[int, Dict[str, Any]] = {}
        self.prompts: Dict[int, Dict[int, State]] = {}
        self.undo: Dict[str, List[State]] = {}
        self.redo: Dict[str, List[State]] = {}
        self.next_id = 1
        self.gens: Dict[int, int] = {}
        self.dirty: set = set()
        self.tracked: Optional[Dict[str, Any]] = None
        self.backward = False

    # ------------------------------------------------------------------ checks
    def frame(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"frame must be a whole number, got {str(value)[:40]!r}")
        if not 0 <= value < self.num_frames:
            raise UsageError(f"frame {value} is out of range 0..{self.num_frames - 1}")
        return value

    def obj(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value not in self.objects:
            raise UsageError(f"unknown object {str(value)[:40]!r}; the objects are {sorted(self.objects)}")
        return value

    # ------------------------------------------------------------------ objects
    def add_object(self, name: Optional[str] = None, cls: Optional[str] = None) -> int:
        if len(self.objects) >= MAX_OBJECTS or self.next_id > MAX_OBJECTS:
            raise UsageError(f"at most {MAX_OBJECTS} objects (ids 1-{MAX_OBJECTS}) per session")
        oid = self.next_id
        self.next_id += 1
        self.objects[oid] = {"id": oid, "name": clean_text(name, "name") if name is not None else f"object {oid}",
                             "class": clean_text(cls, "class") if cls is not None else "object"}
        self.gens[oid] = 0
        return oid

    def update_object(self, oid: int, name: Any = None, cls: Any = None) -> None:
        o = self.objects[self.obj(oid)]
        if name is not None:
            o["name"] = clean_text(name, "name")
        if cls is not None:
            o["class"] = clean_text(cls, "class")

    def delete_object(self, oid: int) -> List[int]:
        """Remove an object, its prompts and history; returns the frames it had prompts on."""
        oid = self.obj(oid)
        frames = self.frames_of(oid)
        for f in frames:
            del self.prompts[f][oid]
            if not self.prompts[f]:
                del self.prompts[f]
        for store in (self.undo, self.redo):
            for k in [k for k in store if k.startswith(f"{oid}:")]:
                del store[k]
        del self.objects[oid]
        self.gens.pop(oid, None)
        self.dirty.discard(oid)
        return frames

    def classes(self) -> List[str]:
        """Class names in order of first use (object id order): YOLO class index = position."""
        out: List[str] = []
        for oid in sorted(self.objects):
            if self.objects[oid]["class"] not in out:
                out.append(self.objects[oid]["class"])
        return out

    def class_index(self, oid: int) -> int:
        return self.classes().index(self.objects[oid]["class"])

    # ------------------------------------------------------------------ prompts
    def state(self, frame: int, oid: int) -> Optional[State]:
        return self.prompts.get(frame, {}).get(oid)

    def frames_of(self, oid: int) -> List[int]:
        return sorted(f for f, objs in self.prompts.items() if oid in objs)

    def prompted_frames(self) -> List[int]:
        return sorted(self.prompts)

    def start(self) -> Optional[int]:
        """The earliest prompted frame: where propagation starts (the reference's rule)."""
        return min(self.prompts) if self.prompts else None

    def _set(self, frame: int, oid: int, state: Optional[State]) -> None:
        if is_empty(state):
            self.prompts.get(frame, {}).pop(oid, None)
            if frame in self.prompts and not self.prompts[frame]:
                del self.prompts[frame]
        else:
            self.prompts.setdefault(frame, {})[oid] = state

    def change(self, frame: int, oid: int, state: Optional[State]) -> None:
        """Replace an object's prompt state on a frame, remembering the old one for undo."""
        old = self.state(frame, oid) or empty_state()
        k = _key(oid, frame)
        self.undo.setdefault(k, []).append(old)
        del self.undo[k][:-HISTORY]
        self.redo.pop(k, None)
        self._set(frame, oid, state)

    def add_point(self, frame: int, oid: int, x: float, y: float, label: int, hw: Tuple[int, int]) -> None:
        s = self._editable(frame, oid)
        if len(s["points"]) >= MAX_POINTS:
            raise UsageError(f"at most {MAX_POINTS} clicks per object on a frame; press Esc to start over")
        x, y = self._inside(number(x, "x"), number(y, "y"), hw)
        if label not in (0, 1) or isinstance(label, bool):
            raise UsageError(f"label must be 1 (foreground) or 0 (background), got {str(label)[:20]!r}")
        s["points"].append([x, y])
        s["labels"].append(int(label))
        self.change(frame, oid, s)

    def set_box(self, frame: int, oid: int, box: Any, hw: Tuple[int, int]) -> None:
        if not isinstance(box, (list, tuple)) or len(box) != 4:
            raise UsageError("box must be [x1, y1, x2, y2] in pixels")
        x1, y1 = self._inside(number(box[0], "x1"), number(box[1], "y1"), hw)
        x2, y2 = self._inside(number(box[2], "x2"), number(box[3], "y2"), hw)
        if x2 <= x1 or y2 <= y1:
            raise UsageError(f"box [{x1:g}, {y1:g}, {x2:g}, {y2:g}] has no area: x2 must exceed x1 and y2 exceed y1")
        s = self._editable(frame, oid)
        s["box"] = [x1, y1, x2, y2]
        self.change(frame, oid, s)

    def set_mask(self, frame: int, oid: int, rle: Dict[str, Any], score: float = 1.0) -> None:
        """A kept proposal: its mask (and the predicted IoU it came with)."""
        self.change(frame, oid, {**empty_state(), "mask": rle, "score": float(score)})

    def clear(self, frame: int, oid: int) -> bool:
        if is_empty(self.state(frame, oid)):
            return False
        self.change(frame, oid, None)
        return True

    def step_history(self, frame: int, oid: int, redo: bool = False) -> bool:
        """Undo (or redo) the last change of an object's prompts on a frame; False: nothing to do."""
        k = _key(oid, frame)
        src, dst = (self.redo, self.undo) if redo else (self.undo, self.redo)
        if not src.get(k):
            return False
        dst.setdefault(k, []).append(self.state(frame, oid) or empty_state())
        self._set(frame, oid, src[k].pop())
        return True

    def history_sizes(self, frame: int, oid: int) -> Tuple[int, int]:
        k = _key(oid, frame)
        return len(self.undo.get(k, [])), len(self.redo.get(k, []))

    def _editable(self, frame: int, oid: int) -> State:
        """A copy of the state to add a click or a box to; a seed mask becomes its box."""
        s = self.state(frame, oid)
        if s is None:
            return empty_state()
        s = {"points": [list(p) for p in s["points"]], "labels": list(s["labels"]), "box": s["box"], "mask": s["mask"]}
        if s["mask"] is not None:
            from sam2cli.io.coco_rle import rle_to_mask
            from sam2cli.core.results import masks_to_boxes
            s["box"] = [float(v) for v in masks_to_boxes(rle_to_mask(s["mask"]))[0]]
            s["mask"] = None
        return s

    @staticmethod
    def _inside(x: float, y: float, hw: Tuple[int, int]) -> Tuple[float, float]:
        h, w = hw
        if not (0 <= x <= w and 0 <= y <= h):
            raise UsageError(f"point ({x:g}, {y:g}) is outside the {w}x{h} (WxH) frame")
        return x, y

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> Dict[str, Any]:
        return {"objects": [self.objects[k] for k in sorted(self.objects)], "next_id": self.next_id,
                "prompts": [{"frame": f, "obj_id": o, **s} for f in sorted(self.prompts)
                            for o, s in sorted(self.prompts[f].items())],
                "undo": self.undo, "redo": self.redo, "gens": {str(k): v for k, v in self.gens.items()},
                "dirty": sorted(self.dirty), "tracked": self.tracked, "backward": self.backward}

    @classmethod
    def from_json(cls, data: Dict[str, Any], num_frames: int) -> "Document":
        d = cls(num_frames)
        d.objects = {int(o["id"]): {"id": int(o["id"]), "name": o["name"], "class": o["class"]}
                     for o in data["objects"]}
        d.next_id = int(data["next_id"])
        for p in data["prompts"]:
            d.prompts.setdefault(int(p["frame"]), {})[int(p["obj_id"])] = {
                k: v for k, v in p.items() if k not in ("frame", "obj_id")}
        d.undo, d.redo = dict(data.get("undo", {})), dict(data.get("redo", {}))
        d.gens = {int(k): int(v) for k, v in data.get("gens", {}).items()}
        d.dirty = {int(i) for i in data.get("dirty", [])}
        d.tracked, d.backward = data.get("tracked"), bool(data.get("backward", False))
        return d
