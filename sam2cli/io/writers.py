"""Output writers: overlays, videos, YOLO labels, COCO RLE JSON, mask PNGs and run folders.

Every file is written atomically through :mod:`sam2cli.io.atomic`: an interrupted run
never leaves a half-written output behind.
"""

from __future__ import annotations

import colorsys
import io
import json
import logging
import math
import sys
import warnings
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, Iterable, Optional, Sequence, TextIO, Union

import av
import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from sam2cli.engine.results import Results, mask_to_polygon, masks_to_boxes
from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.atomic import AtomicTarget, atomic_path, write_bytes_atomic, write_text_atomic

LOGGER = logging.getLogger("sam2cli")

PathLike = Union[str, Path]
IdsLike = Optional[Union[Sequence[int], np.ndarray]]


# ---------------------------------------------------------------------------- helpers


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


def _encode_image(path: Path, rgb: np.ndarray) -> bytes:
    """Encode an RGB or gray uint8 image in the format given by ``path``'s extension."""
    ext = path.suffix.lower() or ".png"
    arr = rgb[..., ::-1] if rgb.ndim == 3 else rgb  # OpenCV wants BGR
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else []
    try:
        ok, buf = cv2.imencode(ext, np.ascontiguousarray(arr), params)
    except cv2.error:
        ok = False
    if not ok:
        raise SAM2Error(f"cannot write image {path}: unsupported extension {ext!r}; use .png or .jpg")
    return buf.tobytes()


# ---------------------------------------------------------------------------- overlays


@lru_cache(maxsize=1024)
def object_color(obj_id: int) -> tuple[int, int, int]:
    """A fixed, bright RGB colour for an object id (same id -> same colour on every frame).

    Hues step by the golden ratio, so consecutive ids get clearly different colours.
    """
    hue = (abs(int(obj_id)) * 0.618033988749895 + 0.05) % 1.0
    sat = 0.85 if obj_id % 2 else 0.7
    r, g, b = colorsys.hsv_to_rgb(hue, sat, 1.0)
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


def overlay(
    image: np.ndarray,
    masks: np.ndarray,
    obj_ids: IdsLike = None,
    line_width: int = 2,
    alpha: float = 0.5,
) -> np.ndarray:
    """Draw masks on an ``(H, W, 3)`` uint8 RGB image: translucent fill plus an outline.

    Each object is coloured by :func:`object_color` of its id (``obj_ids``, default 1..N).
    ``line_width=0`` draws no outline. Pixels outside every mask (and its outline) are
    left unchanged. Returns a new array.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {img.shape} {img.dtype}")
    m = _as_masks(masks)
    if m.shape[1:] != img.shape[:2]:
        raise ValueError(f"masks are {m.shape[1:]} but the image is {img.shape[:2]}")
    ids = _obj_ids(obj_ids, len(m))
    out = img.copy()
    alpha = float(np.clip(alpha, 0.0, 1.0))
    for mask, oid in zip(m, ids):
        if mask.any() and alpha > 0:
            color = np.array(object_color(oid), dtype=np.float32)
            px = out[mask].astype(np.float32)
            out[mask] = np.clip(np.rint(px * (1.0 - alpha) + color * alpha), 0, 255).astype(np.uint8)
    if line_width > 0:
        for mask, oid in zip(m, ids):
            if not mask.any():
                continue
            # Outline of every connected piece (drawing only; polygons for export use mask_to_polygon).
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(out, contours, -1, object_color(oid), int(line_width))
    return out


def save_overlay_image(
    path: PathLike,
    image: np.ndarray,
    masks: np.ndarray,
    obj_ids: IdsLike = None,
    line_width: int = 2,
    alpha: float = 0.5,
) -> Path:
    """Write :func:`overlay` of ``image`` and ``masks`` to ``path`` (format from the extension)."""
    return save_image(path, overlay(image, masks, obj_ids=obj_ids, line_width=line_width, alpha=alpha))


def save_image(path: PathLike, rgb: np.ndarray) -> Path:
    """Write an RGB (or gray) uint8 image atomically, format from the extension."""
    path = Path(path)
    return write_bytes_atomic(path, _encode_image(path, rgb))


# ---------------------------------------------------------------------------- video


class _CommitOnExit:
    """Context manager for writers with close() (commit) and abort() (discard the temp file)."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class VideoWriter(_CommitOnExit):
    """Encode RGB frames into a video file with PyAV: H.264 (libx264, yuv420p), else MPEG-4 Part 2.

    Frames are written to a temp file that is renamed onto ``path`` by :meth:`close`;
    on an exception (``with`` block) or :meth:`abort` the temp is deleted. Odd sizes are
    padded to even by repeating the last row/column (yuv420p needs even sizes). A writer
    closed without any frame writes no file.
    """

    def __init__(self, path: PathLike, fps: Optional[float], width: int, height: int) -> None:
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"video size must be positive, got {self.width}x{self.height}")
        if fps is None or not math.isfinite(fps) or fps <= 0:
            fps = 30.0
        self.fps = float(fps)
        self.frames = 0
        self.codec = ""
        self._closed = False
        self._result: Optional[Path] = None
        self._target = AtomicTarget(self.path)
        try:
            self._container = av.open(str(self._target.tmp), mode="w")
        except Exception as e:
            self._target.discard()
            self._closed = True
            reason = getattr(e, "strerror", None) or str(e)
            raise SAM2Error(f"cannot write video {self.path}: {reason}; use a .mp4, .mkv, .mov or .avi path") from None
        try:
            self._stream = self._add_stream()
        except BaseException:
            self.abort()
            raise

    def _add_stream(self) -> Any:
        rate = Fraction(self.fps).limit_denominator(1001)
        w, h = self.width + self.width % 2, self.height + self.height % 2
        errors = []
        for codec in ("libx264", "mpeg4"):
            if codec not in av.codecs_available:
                continue
            try:
                stream = self._container.add_stream(codec, rate=rate)
            except Exception as e:  # encoder present in the list but unusable
                errors.append(f"{codec}: {e}")
                continue
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            if codec == "libx264":
                stream.options = {"crf": "20", "preset": "veryfast"}
            else:  # mpeg4's default bit rate is tiny: ask for a decent one
                stream.bit_rate = max(2_000_000, int(w * h * self.fps * 0.3))
            self.codec = codec
            return stream
        raise SAM2Error(
            f"cannot write video {self.path}: no H.264 (libx264) or MPEG-4 encoder in this PyAV build"
            + (f" ({'; '.join(errors)})" if errors else "")
        )

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(height, width, 3)`` uint8 RGB frame."""
        if self._closed:
            raise ValueError(f"video writer for {self.path} is closed")
        arr = np.asarray(frame)
        if arr.shape != (self.height, self.width, 3):
            raise ValueError(f"frame is {arr.shape}, expected {(self.height, self.width, 3)}")
        if arr.dtype != np.uint8:
            raise ValueError(f"frame dtype must be uint8, got {arr.dtype}")
        pad_h, pad_w = self.height % 2, self.width % 2
        if pad_h or pad_w:
            arr = np.pad(arr, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
        try:
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
        except Exception as e:
            self.abort()
            raise SAM2Error(f"cannot write video {self.path}: {getattr(e, 'strerror', None) or e}") from None
        self.frames += 1

    def close(self) -> Optional[Path]:
        """Flush, finish the file and rename it onto ``path``; returns it (``None`` if no frame was written)."""
        if self._closed:
            return self._result
        if self.frames == 0:
            LOGGER.warning("no frames written, %s not created", self.path)
            self.abort()
            return None
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        except Exception as e:
            self.abort()
            raise SAM2Error(f"cannot write video {self.path}: {getattr(e, 'strerror', None) or e}") from None
        self._closed = True
        self._result = self._target.commit()
        return self._result

    def abort(self) -> None:
        """Stop writing and delete the temp file; ``path`` is left untouched."""
        if self._closed:
            return
        self._closed = True
        try:
            self._container.close()
        except Exception:
            pass
        self._target.discard()

    def __del__(self) -> None:  # a writer dropped without close(): do not leave the temp file
        try:
            if not self._closed:
                self.abort()
        except Exception:
            pass


# ---------------------------------------------------------------------------- YOLO labels


def yolo_seg_lines(
    masks: np.ndarray,
    cls: IdsLike = None,
    conf: Optional[Union[Sequence[float], np.ndarray]] = None,
    save_conf: bool = False,
) -> list[str]:
    """YOLO segmentation label lines ``class x1 y1 x2 y2 ...`` (coordinates in [0, 1], 6 decimals).

    One line per mask from its :func:`mask_to_polygon`; masks whose polygon has fewer
    than 3 points are skipped. ``cls`` defaults to 0. With ``save_conf`` the score is
    appended at the end of the line (``conf`` is then required).
    """
    m = _as_masks(masks)
    n, h, w = m.shape
    classes = [0] * n if cls is None else [int(c) for c in np.asarray(cls).reshape(-1)]
    if len(classes) != n:
        raise ValueError(f"got {len(classes)} classes for {n} masks")
    if save_conf and conf is None:
        raise ValueError("save_conf=True needs conf scores")
    scores = None if conf is None else [float(c) for c in np.asarray(conf).reshape(-1)]
    lines = []
    for i in range(n):
        poly = mask_to_polygon(m[i])
        if len(poly) < 3:
            continue
        xy = np.clip(poly / np.array([w, h], dtype=np.float64), 0.0, 1.0)
        line = f"{classes[i]} " + " ".join(f"{v:.6f}" for v in xy.reshape(-1))
        if save_conf and scores is not None:
            line += f" {scores[i]:.6f}"
        lines.append(line)
    return lines


def write_yolo_txt(path: PathLike, lines: Sequence[str]) -> Path:
    """Write YOLO label lines (an empty list writes an empty file, meaning 'no objects')."""
    return write_text_atomic(path, "".join(f"{line}\n" for line in lines))


# ---------------------------------------------------------------------------- COCO RLE / JSON


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE ``{"size": [h, w], "counts": str}`` of an ``(H, W)`` mask."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {m.shape}")
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    counts = rle["counts"]
    return {"size": [int(s) for s in rle["size"]], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """Decode a COCO RLE (compressed str/bytes counts or uncompressed list counts) to an ``(H, W)`` bool mask."""
    h, w = (int(s) for s in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        coded = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    else:
        coded = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    with warnings.catch_warnings():  # pycocotools' decoder trips a numpy 2 copy= DeprecationWarning
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(coded).astype(bool)


def prediction_records(results: Results, file: str, frame: Optional[int] = None) -> list[dict[str, Any]]:
    """One JSON-ready record per object of ``results``.

    Keys: ``file``, ``frame`` (``None`` for images), ``obj_id`` (``boxes.id`` when set,
    else 1..N), ``score`` (``boxes.conf``), ``bbox`` ``[x, y, w, h]`` from ``boxes.xyxy``,
    ``area`` (mask pixel count) and ``segmentation`` (:func:`mask_to_rle`).
    """
    if results.masks is None or len(results.masks) == 0:
        return []
    masks = results.masks.data
    n = len(masks)
    boxes = results.boxes
    xyxy = boxes.xyxy if boxes is not None else masks_to_boxes(masks)
    conf = boxes.conf if boxes is not None else np.ones(n, dtype=np.float32)
    ids = boxes.id if boxes is not None and boxes.id is not None else np.arange(1, n + 1)
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


# ---------------------------------------------------------------------------- mask PNGs


@lru_cache(maxsize=1)
def davis_palette() -> bytes:
    """The 256-colour DAVIS / PASCAL VOC palette (768 bytes RGB): 0 black, 1 dark red, 2 dark green, ...

    Colour ``i`` takes bit ``3k + c`` of ``i`` as bit ``7 - k`` of channel ``c``.
    """
    pal = bytearray()
    for i in range(256):
        rgb = [0, 0, 0]
        c = i
        for k in range(8):
            for ch in range(3):
                rgb[ch] |= ((c >> ch) & 1) << (7 - k)
            c >>= 3
        pal.extend(rgb)
    return bytes(pal)


def save_mask_pngs(
    dir: PathLike,  # noqa: A002 - public name from the spec
    stem: str,
    masks: np.ndarray,
    obj_ids: IdsLike = None,
    mode: str = "binary",
    scores: Optional[Union[Sequence[float], np.ndarray]] = None,
) -> list[Path]:
    """Write masks as PNGs into ``dir``; returns the written paths.

    * ``mode='binary'``: one 0/255 grayscale PNG per object, ``<stem>_<objid>.png``.
    * ``mode='palette'``: one DAVIS-palette PNG ``<stem>.png`` whose pixel value is the
      object id (0 = background; ids must be 1-255). Where objects overlap the pixel
      goes to the **later** object in ``masks`` order, or, when ``scores`` is given, to
      the **higher-scoring** object.
    """
    out_dir = Path(dir)
    m = _as_masks(masks)
    ids = _obj_ids(obj_ids, len(m))
    if mode == "binary":
        written = []
        for mask, oid in zip(m, ids):
            path = out_dir / f"{stem}_{oid}.png"
            write_bytes_atomic(path, _encode_image(path, mask.astype(np.uint8) * 255))
            written.append(path)
        return written
    if mode != "palette":
        raise UsageError(f"unknown mask mode {mode!r}; use 'binary' or 'palette'")
    bad = [i for i in ids if not 1 <= i <= 255]
    if bad:
        raise UsageError(f"palette PNGs hold object ids 1-255, got {bad[0]}; use binary mask PNGs instead")
    order: Iterable[int] = range(len(m))
    if scores is not None:
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(s) != len(m):
            raise ValueError(f"got {len(s)} scores for {len(m)} masks")
        order = np.argsort(s, kind="stable")  # paint low -> high: the highest score ends on top
    label = np.zeros(m.shape[1:], dtype=np.uint8)
    for i in order:
        label[m[i]] = ids[i]
    img = Image.fromarray(label)
    img.putpalette(davis_palette())
    path = out_dir / f"{stem}.png"
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return [path]


def read_palette_png(path: PathLike) -> np.ndarray:
    """Object-id map ``(H, W)`` uint8 of a palette PNG written by :func:`save_mask_pngs`."""
    with Image.open(path) as img:
        if img.mode not in ("P", "L"):
            raise SAM2Error(f"{path} is not a palette mask PNG (mode {img.mode}); save it with mode 'palette'")
        return np.array(img)


# ---------------------------------------------------------------------------- run folders


def increment_dir(project: PathLike, name: str = "predict", exist_ok: bool = False) -> Path:
    """Create and return ``project/name``, or ``name2``, ``name3``, ... when it already exists.

    With ``exist_ok=True`` the existing ``project/name`` is reused.
    """
    base = Path(project)
    if exist_ok:
        path = base / name
        path.mkdir(parents=True, exist_ok=True)
        return path
    base.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        path = base / (name if n == 1 else f"{name}{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
