"""Prediction records (one per object, mask as COCO RLE) and their JSON array / JSON Lines writers.

The JSON array file is written atomically through :mod:`sam2cli.io.atomic`.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any, Iterable, Optional, TextIO

import numpy as np

from sam2cli.core.results import Results, masks_to_boxes
from sam2cli.io.atomic import AtomicTarget, _CommitOnExit
from sam2cli.io.coco_rle import mask_to_rle
from sam2cli.io.writer_args import PathLike, candidate_index


def prediction_records(results: Results, file: str, frame: Optional[int] = None) -> list[dict[str, Any]]:
    """One JSON-ready record per object of ``results``.

    Keys: ``file``, ``frame`` (``None`` for images), ``obj_id`` (``boxes.id`` when set,
    else 1..N), ``score`` (``boxes.conf``), ``bbox`` ``[x, y, w, h]`` from ``boxes.xyxy``,
    ``area`` (mask pixel count) and ``segmentation`` (:func:`mask_to_rle`); and ``candidate``
    (0, 1, 2) when an object has several masks (``multimask_output=True``).
    """
    if results.masks is None or len(results.masks) == 0:
        return []
    masks = results.masks.data
    n = len(masks)
    boxes = results.boxes
    xyxy = boxes.xyxy if boxes is not None else masks_to_boxes(masks)
    conf = boxes.conf if boxes is not None else np.ones(n, dtype=np.float32)
    ids = boxes.id if boxes is not None and boxes.id is not None else np.arange(1, n + 1)
    cand = candidate_index(ids, n)
    records = []
    for i in range(n):
        x1, y1, x2, y2 = (float(v) for v in xyxy[i])
        records.append(
            {
                "file": str(file),
                "frame": None if frame is None else int(frame),
                "obj_id": int(ids[i]),
                "score": round(float(conf[i]), 6),
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": int(np.count_nonzero(masks[i])),
                "segmentation": mask_to_rle(masks[i]),
            }
        )
        if cand is not None:
            records[-1]["candidate"] = int(cand[i])
    return records


def _json_default(obj: Any) -> Any:
    """Make numpy scalars/arrays, bytes and paths JSON-serialisable."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(record: Any) -> str:
    """``json.dumps`` that also accepts numpy values."""
    return json.dumps(record, default=_json_default)


class JsonArrayWriter(_CommitOnExit):
    """Stream records into a JSON array file without holding them in memory.

    The array is written to a temp file (``[``, records separated by commas) and
    renamed onto ``path`` by :meth:`close` after the closing ``]``; on an exception in
    a ``with`` block (or :meth:`abort`) the temp is deleted.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self.count = 0
        self._target = AtomicTarget(self.path)
        self._file: Optional[io.TextIOWrapper] = open(self._target.tmp, "w", encoding="utf-8")
        self._file.write("[")

    def write(self, record: dict[str, Any]) -> None:
        """Append one record."""
        if self._file is None:
            raise ValueError(f"JSON writer for {self.path} is closed")
        self._file.write(("\n" if self.count == 0 else ",\n") + dumps(record))
        self.count += 1

    def write_all(self, records: Iterable[dict[str, Any]]) -> None:
        """Append every record of ``records``."""
        for record in records:
            self.write(record)

    def close(self) -> Path:
        """Finish the array and rename the file onto ``path``."""
        if self._file is not None:
            f, self._file = self._file, None
            try:
                f.write("\n]\n" if self.count else "]\n")
                f.close()
            except BaseException:
                self._target.discard()
                raise
            self._target.commit()
        return self.path

    def abort(self) -> None:
        """Stop and delete the temp file; ``path`` is left untouched."""
        if self._file is not None:
            f, self._file = self._file, None
            try:
                f.close()
            finally:
                self._target.discard()

    def __del__(self) -> None:
        try:
            self.abort()
        except Exception:
            pass


class JsonlWriter:
    """Write one JSON record per line to a text stream (default ``sys.stdout``), flushing each line."""

    def __init__(self, stream: Optional[TextIO] = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        """Write ``record`` as one line."""
        self.stream.write(dumps(record) + "\n")
        self.stream.flush()
        self.count += 1

    def write_all(self, records: Iterable[dict[str, Any]]) -> None:
        """Write every record of ``records``."""
        for record in records:
            self.write(record)

    def close(self) -> None:
        """Flush the stream (it is not closed: it usually is stdout)."""
        self.stream.flush()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
