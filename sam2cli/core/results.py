"""Ultralytics-like, numpy-based result containers: :class:`Results`, :class:`Masks`, :class:`Boxes`.

:func:`masks_to_boxes` and :func:`mask_to_polygon` are the project's single
implementations of mask -> box and mask -> polygon.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import cv2
import numpy as np


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight xyxy boxes of ``(N, H, W)`` (or ``(H, W)``) masks as ``(N, 4)`` float32.

    x2/y2 are exclusive (last foreground index + 1); an empty mask gives all zeros.
    """
    masks = np.asarray(masks).astype(bool, copy=False)
    if masks.ndim == 2:
        masks = masks[None]
    n, h, w = masks.shape
    rows = masks.any(axis=2)  # (N, H)
    cols = masks.any(axis=1)  # (N, W)
    boxes = np.stack(
        [
            cols.argmax(axis=1),
            rows.argmax(axis=1),
            w - cols[:, ::-1].argmax(axis=1),
            h - rows[:, ::-1].argmax(axis=1),
        ],
        axis=1,
    ).astype(np.float32)
    boxes[~rows.any(axis=1)] = 0.0
    return boxes.reshape(n, 4)


def mask_to_polygon(mask: np.ndarray) -> np.ndarray:
    """Largest external contour of an ``(H, W)`` mask as a ``(K, 2)`` float32 xy polygon.

    Returns an empty ``(0, 2)`` array for an empty mask.
    """
    m = np.ascontiguousarray(np.asarray(mask).astype(np.uint8, copy=False))
    if not m.any():
        return np.zeros((0, 2), dtype=np.float32)
    contours, _ = cv2.findContours((m > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.zeros((0, 2), dtype=np.float32)
    best = max(contours, key=lambda c: (cv2.contourArea(c), len(c)))
    return best.reshape(-1, 2).astype(np.float32)


class Masks:
    """Binary masks of N objects at the original image resolution."""

    def __init__(self, data: np.ndarray) -> None:
        data = np.asarray(data).astype(bool, copy=False)
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3:
            raise ValueError(f"masks must be (N, H, W), got shape {data.shape}")
        self.data = data
        self._xy: Optional[list[np.ndarray]] = None

    @property
    def shape(self) -> tuple[int, ...]:
        """``(N, H, W)``."""
        return self.data.shape

    @property
    def xy(self) -> list[np.ndarray]:
        """One ``(K, 2)`` float32 polygon in pixels per mask (largest external contour)."""
        if self._xy is None:
            self._xy = [mask_to_polygon(m) for m in self.data]
        return self._xy

    @property
    def xyn(self) -> list[np.ndarray]:
        """Polygons of :attr:`xy` normalised by image width and height to [0, 1]."""
        h, w = self.data.shape[1:]
        scale = np.array([w, h], dtype=np.float32)
        return [p / scale for p in self.xy]

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, idx: Any) -> "Masks":
        return Masks(self.data[idx])

    def __repr__(self) -> str:
        return f"Masks(shape={tuple(self.data.shape)})"


class Boxes:
    """Boxes of N objects: xyxy pixels, confidence, class and optional track id."""

    def __init__(
        self,
        xyxy: np.ndarray,
        conf: np.ndarray,
        cls: Optional[np.ndarray] = None,
        id: Optional[np.ndarray] = None,  # noqa: A002 - Ultralytics name
    ) -> None:
        self.xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(self.xyxy)
        self.conf = np.asarray(conf, dtype=np.float32).reshape(n)
        self.cls = np.zeros(n, dtype=np.int64) if cls is None else np.asarray(cls, dtype=np.int64).reshape(n)
        self.id = None if id is None else np.asarray(id, dtype=np.int64).reshape(n)

    @property
    def xywh(self) -> np.ndarray:
        """``(N, 4)`` boxes as centre x, centre y, width, height (Ultralytics convention)."""
        x1, y1, x2, y2 = self.xyxy.T
        return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=1).astype(np.float32)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, idx: Any) -> "Boxes":
        ids = None if self.id is None else self.id[idx]
        return Boxes(self.xyxy[idx], self.conf[idx], self.cls[idx], ids)

    def __repr__(self) -> str:
        return f"Boxes(n={len(self)})"


class Results:
    """Prediction for one image or video frame."""

    def __init__(
        self,
        orig_img: np.ndarray,
        path: Optional[str] = None,
        masks: Optional[Masks] = None,
        boxes: Optional[Boxes] = None,
        frame: Optional[int] = None,
        speed: Optional[dict[str, float]] = None,
        names: Optional[dict[int, str]] = None,
    ) -> None:
        self.orig_img = orig_img
        self.path = None if path is None else str(path)
        self.masks = masks
        self.boxes = boxes
        self.frame = frame
        self.speed: dict[str, float] = dict(speed or {})
        self.names: dict[int, str] = dict(names or {0: "object"})

    @classmethod
    def from_masks(  # noqa: N804 - ``cls`` is the class-id argument here
        klass,
        orig_img: np.ndarray,
        masks: np.ndarray,
        scores: Sequence[float] | np.ndarray,
        path: Optional[str] = None,
        frame: Optional[int] = None,
        obj_ids: Optional[Sequence[int] | np.ndarray] = None,
        cls: Optional[Sequence[int] | np.ndarray] = None,
        speed: Optional[dict[str, float]] = None,
        names: Optional[dict[int, str]] = None,
    ) -> "Results":
        """Build results from ``(N, H, W)`` bool masks; boxes are the masks' tight bounding boxes."""
        m = Masks(masks)
        h, w = orig_img.shape[:2]
        if m.shape[1:] != (h, w):
            raise ValueError(f"masks are {m.shape[1:]} but the image is {(h, w)}")
        boxes = Boxes(masks_to_boxes(m.data), scores, cls, obj_ids)
        return klass(orig_img, path=path, masks=m, boxes=boxes, frame=frame, speed=speed, names=names)

    @property
    def orig_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the original image."""
        return tuple(self.orig_img.shape[:2])  # type: ignore[return-value]

    def __len__(self) -> int:
        if self.masks is not None:
            return len(self.masks)
        return 0 if self.boxes is None else len(self.boxes)

    def __repr__(self) -> str:
        where = f"path={self.path!r}, " if self.path else ""
        frame = f"frame={self.frame}, " if self.frame is not None else ""
        return f"Results({where}{frame}shape={self.orig_shape}, objects={len(self)})"
