"""YOLO segmentation label lines from masks, and the label ``.txt`` files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from sam2cli.core.results import mask_to_polygon
from sam2cli.io.atomic import write_text_atomic
from sam2cli.io.writer_args import IdsLike, PathLike, _as_masks


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
