"""What `sam2 app` keeps on disk: the run folder, the session file and the masks of every frame.

    runs/app/session.json            objects, classes, prompts, undo/redo, tracking state
    runs/app/session/masks/000042.json  frame 42's masks: {"ids", "gens", "conf", "rles"} (COCO RLE)

Every file is written under a temporary name and renamed (a killed server leaves the old file or
the new one, never half of one); session.json is also flushed to disk before the rename. Masks
live on disk, one small file per frame, so the server's memory does not grow with the video.
A mask whose generation is older than its object's (the object's prompts changed since) is stale:
`visible` leaves it out.
"""

import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from sam2cli.errors import UsageError
from sam2cli.io.atomic import AtomicTarget, write_text_atomic
from sam2cli.io.run_dir import increment_dir

SESSION = "session.json"
FORMAT = 1

Entry = Tuple[int, float, Dict[str, Any]]  # (generation, confidence, COCO RLE)


def open_run(project: str, name: Optional[str], exist_ok: bool, identity: Dict[str, Any]) -> Tuple[Path, bool]:
    """The run folder of this source: the first of project/name, name2, ... whose session is of the
    same source (resumed: True), else a new one. exist_ok: project/name itself, which must then
    be new or of the same source."""
    name = name or "app"
    base = Path(project)
    if exist_ok:
        path = base / name
        old = read_session(path)
        if old is not None and old.get("identity") != identity:
            raise UsageError(f"{path} holds the session of another source ({old['identity'].get('source')}); "
                             "pass another name= or leave exist_ok out")
        path.mkdir(parents=True, exist_ok=True)
        return path, old is not None
    n = 1
    while True:
        path = base / (name if n == 1 else f"{name}{n}")
        if not path.exists():
            return increment_dir(project, name, False), False
        old = read_session(path)
        if old is not None and old.get("identity") == identity:
            return path, True
        n += 1


def read_session(run_dir: Path) -> Optional[Dict[str, Any]]:
    path = Path(run_dir) / SESSION
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


class Store:
    """The session file and the per-frame mask files of one run folder."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        self.masks_dir = self.dir / "session" / "masks"
        self.masks_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ session
    def load(self) -> Optional[Dict[str, Any]]:
        return read_session(self.dir)

    def save(self, identity: Dict[str, Any], document: Dict[str, Any]) -> None:
        text = json.dumps({"format": FORMAT, "identity": identity, "document": document}, separators=(",", ":"))
        write_text_atomic(self.dir / SESSION, text)

    # ------------------------------------------------------------------ masks
    def _path(self, frame: int) -> Path:
        return self.masks_dir / f"{frame:06d}.json"

    def read(self, frame: int) -> Dict[int, Entry]:
        path = self._path(frame)
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):  # never written half (atomic), but a foreign file: ignore it
            return {}
        return {int(i): (int(g), float(c), r) for i, g, c, r in zip(rec["ids"], rec["gens"], rec["conf"], rec["rles"])}

    def write(self, frame: int, updates: Dict[int, Optional[Entry]]) -> None:
        """Set (or, with None, drop) some objects' masks on a frame, keeping the others'."""
        entries = self.read(frame)
        for oid, e in updates.items():
            if e is None:
                entries.pop(oid, None)
            else:
                entries[oid] = e
        ids = sorted(entries)
        if not ids:
            try:
                os.unlink(self._path(frame))
            except FileNotFoundError:
                pass
            return
        rec = {"ids": ids, "gens": [entries[i][0] for i in ids], "conf": [entries[i][1] for i in ids],
               "rles": [entries[i][2] for i in ids]}
        target = AtomicTarget(self._path(frame))  # renamed, not fsynced: a killed process loses nothing
        try:
            with open(target.tmp, "w", encoding="utf-8") as f:
                json.dump(rec, f, separators=(",", ":"))
        except BaseException:
            target.discard()
            raise
        target.commit()

    def visible(self, frame: int, gens: Dict[int, int]) -> List[Tuple[int, float, Dict[str, Any]]]:
        """(obj_id, confidence, RLE) of the objects whose mask on this frame is current."""
        return [(oid, c, r) for oid, (g, c, r) in sorted(self.read(frame).items()) if gens.get(oid) == g]

    def retag(self, frames: Iterable[int], oid: int, old: int, new: int) -> None:
        """Carry an object's masks of generation `old` on these frames over to generation `new`."""
        for f in frames:
            e = self.read(f).get(oid)
            if e is not None and e[0] == old:
                self.write(f, {oid: (new, e[1], e[2])})

    def frames_with_masks(self) -> List[int]:
        return sorted(int(p.stem) for p in self.masks_dir.glob("*.json") if p.stem.isdigit())
